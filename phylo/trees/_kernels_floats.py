"""numba kernel: decimal numbers in a byte array to doubles, correctly rounded.

:func:`parse_floats` reads ``[+-]digits[.digits][(e|E)[+-]digits]`` with Clinger's fast
path: when the significant digits form an integer ``m <= 2^53`` and the decimal exponent
``e`` has ``|e| <= 22``, both ``m`` and ``10^|e|`` are exact doubles and the one product or
quotient ``m * 10^e`` is the correctly rounded value, the same double ``float(text)`` gives.
Anything else (more digits, larger exponents, ``inf``, ``nan``, malformed text) is flagged for
the caller to convert with Python, which also reports errors.  MrBayes prints branch lengths
with 7 significant digits and BEAST with up to 17, so nearly all of them take the fast path.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_POW10 = np.array([10.0**k for k in range(23)])
_MAX_EXACT = 1 << 53


@nb.njit(cache=True)
def parse_floats(arr, starts, ends, pow10, out, ok):
    """``out[i]`` = the number in ``arr[starts[i]:ends[i]]``; ``ok[i]`` False where the text
    is not on the fast path (then ``out[i]`` is undefined).  Entries with ``starts[i] < 0``
    are skipped (``ok`` True, ``out`` NaN)."""
    for i in range(starts.shape[0]):
        a = starts[i]
        b = ends[i]
        if a < 0:
            out[i] = np.nan
            ok[i] = True
            continue
        ok[i] = False
        if b <= a:
            continue
        neg = False
        c = arr[a]
        if c == 45 or c == 43:  # '-' '+'
            neg = c == 45
            a += 1
        m = np.int64(0)
        digits = 0  # significant digits in m
        seen = False
        exp10 = 0
        bad = False
        point = False
        while a < b:
            c = arr[a]
            if 48 <= c <= 57:
                seen = True
                if m == 0 and c == 48:
                    if point:
                        exp10 -= 1
                else:
                    if digits >= 18:
                        bad = True
                        break
                    m = m * 10 + (c - 48)
                    digits += 1
                    if point:
                        exp10 -= 1
            elif c == 46 and not point:  # '.'
                point = True
            else:
                break
            a += 1
        if bad or not seen:
            continue
        if a < b:
            c = arr[a]
            if c != 101 and c != 69:  # 'e' 'E'
                continue
            a += 1
            eneg = False
            if a < b and (arr[a] == 45 or arr[a] == 43):
                eneg = arr[a] == 45
                a += 1
            if a >= b:
                continue
            e = 0
            while a < b and 48 <= arr[a] <= 57:
                if e < 100000:
                    e = e * 10 + (arr[a] - 48)
                a += 1
            if a != b:
                continue
            exp10 += -e if eneg else e
        if m > _MAX_EXACT:
            continue
        x = float(m)
        if m == 0:
            x = 0.0
        elif exp10 < 0:
            if -exp10 > 22:
                continue
            x = x / pow10[-exp10]
        elif exp10 > 0:
            if exp10 > 22:
                continue
            x = x * pow10[exp10]
        out[i] = -x if neg else x
        ok[i] = True


def parse(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, ok)`` of the numbers at the given byte spans (see :func:`parse_floats`)."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    out = np.empty(starts.shape[0])
    ok = np.empty(starts.shape[0], np.bool_)
    parse_floats(arr, starts, ends, _POW10, out, ok)
    return out, ok
