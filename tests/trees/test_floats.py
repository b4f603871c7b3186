"""Branch lengths converted in the kernel are the doubles Python's float() gives, bit for
bit: Clinger's fast path and Eisel and Lemire's algorithm (BEAST's 17 significant digits)."""

from __future__ import annotations

import random
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phylo.trees._kernels_floats import parse

HARD = [
    "9007199254740993",  # 2^53 + 1: a tie, rounds to even
    "9007199254740995",
    "9007199254740992.5",
    "1.00000000000000011102230246251565404236316680908203125",  # > 19 digits: Python
    "0.1",
    "1e23",
    "8.98846567431158e307",
    "1.7976931348623157e308",
    "2.2250738585072014e-308",
    "2.2250738585072011e-308",  # subnormal: Python
    "4.9406564584124654e-324",
    "7.8459735791271921e+65",
    "3.0540412816691293e-06",
    "0.013215697698813064",  # as BEAST prints
    "1.51E-4",
    "-0.0",
    "+12.5",
    "00000.00001",
    "1e-400",
    "1e400",
]


def convert(texts):
    data = " ".join(texts).encode()
    starts, ends, pos = [], [], 0
    for t in texts:
        starts.append(pos)
        ends.append(pos + len(t.encode()))
        pos += len(t.encode()) + 1
    return parse(np.frombuffer(data, np.uint8), np.array(starts), np.array(ends))


def same_bits(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


def check(texts):
    values, ok = convert(texts)
    for t, v, done in zip(texts, values, ok):
        if done:
            assert same_bits(v, float(t)), t


def test_hard_cases_and_what_is_left_to_python():
    check(HARD)
    values, ok = convert(HARD)
    left = {t for t, done in zip(HARD, ok) if not done}
    # more than 19 digits, subnormal and infinite results are converted by Python
    assert left == {HARD[3], HARD[9], HARD[10], "1e-400", "1e400"}


def test_many_random_numbers_as_programs_print_them():
    rng = random.Random(7)
    texts = []
    for _ in range(20000):
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(63)))[0]
        if x == x and x != float("inf"):
            texts.append(repr(x))
        texts.append(f"{rng.uniform(0, 50):.17g}")  # BEAST
        texts.append(f"{rng.expovariate(10):e}")  # MrBayes
        texts.append(f"{rng.expovariate(0.1):.6f}")  # RevBayes
        texts.append(f"{rng.randint(1, 10**19 - 1)}e{rng.randint(-340, 300)}")
    check(texts)
    assert convert(texts)[1].mean() > 0.99  # nearly all take the kernel's paths


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(1, 17))
def test_any_double_printed_with_any_precision(x, digits):
    check([repr(x), f"{x:.{digits}e}", f"{x:.{digits}g}"])
