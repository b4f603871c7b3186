"""numba kernel: decimal numbers in a byte array to doubles, correctly rounded.

:func:`parse_floats` reads ``[+-]digits[.digits][(e|E)[+-]digits]``, the significant digits
as an integer ``w`` (at most 19 of them) and a decimal exponent ``q``, value ``w * 10^q``:

* **Clinger's fast path**: when ``w <= 2^53`` and ``|q| <= 22``, both ``w`` and ``10^|q|``
  are exact doubles and the one product or quotient is the correctly rounded value.
* **Eisel and Lemire's algorithm** (Lemire 2021, "Number parsing at a gigabyte per
  second", as fast_float implements it) for the rest, such as the 17 significant digits
  BEAST prints: ``w`` is shifted so that its top bit is set and multiplied by a 128-bit
  truncation of ``5^q`` (tabulated for ``-342 <= q <= 308``); the top 55 bits of the
  product, corrected by a second 64-bit product when its low bits are all ones, give the
  53-bit significand rounded to nearest, ties to even; the binary exponent is
  ``floor(q log2 10) + 63 - leading zeros + bias``.  Mushtak and Lemire (2023) prove that
  the 128-bit product always suffices for doubles.

Either way the result is the double ``float(text)`` gives.  Anything else (more than 19
significant digits, results that would be subnormal or infinite, ``inf``, ``nan``, malformed
text) is flagged for the caller to convert with Python, which also reports errors.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_POW10 = np.array([10.0**k for k in range(23)])
_MAX_EXACT = 1 << 53
_SMALLEST_Q = -342
_LARGEST_Q = 308


def _powers_of_five() -> tuple[np.ndarray, np.ndarray]:
    """128-bit truncations of ``5^q`` for ``q = -342 .. 308``, normalised so that the top
    bit is set (negative ``q``: ``2^b / 5^-q`` rounded up), as high and low words."""
    hi, lo = [], []
    mask = (1 << 64) - 1
    for q in range(_SMALLEST_Q, _LARGEST_Q + 1):
        if q < 0:
            p = 5**-q
            z = p.bit_length()
            if (1 << (z - 1)) == p:  # p is never a power of two for q < 0; kept general
                z -= 1
            b = z + 127 if q >= -27 else 2 * z + 128
            c = (1 << b) // p + 1
            while c >= 1 << 128:
                c >>= 1
        else:
            c = 5**q
            c <<= max(0, 128 - c.bit_length())
            c >>= max(0, c.bit_length() - 128)
        hi.append(c >> 64)
        lo.append(c & mask)
    return np.array(hi, np.uint64), np.array(lo, np.uint64)


_POW5_HI, _POW5_LO = _powers_of_five()


@nb.njit(cache=True, inline="always")
def _mul128(a, b):
    """The 128-bit product of two 64-bit words, as ``(high, low)``."""
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    a_lo = a & m32
    a_hi = a >> s32
    b_lo = b & m32
    b_hi = b >> s32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> s32) + (p1 & m32) + (p2 & m32)
    lo = (mid << s32) | (p0 & m32)
    hi = p3 + (p1 >> s32) + (p2 >> s32) + (mid >> s32)
    return hi, lo


@nb.njit(cache=True, inline="always")
def _eisel_lemire(w, q, pow5_hi, pow5_lo):
    """The bits of the double nearest to ``w * 10^q`` (``w > 0``), and whether they were
    found (not for subnormal or infinite results, or ``q`` out of the table)."""
    if q < _SMALLEST_Q or q > _LARGEST_Q:
        return np.uint64(0), False
    top = np.uint64(1) << np.uint64(63)
    lz = 0
    x = w
    while (x & top) == 0:
        x = x << np.uint64(1)
        lz += 1
    idx = q - _SMALLEST_Q
    hi, lo = _mul128(x, pow5_hi[idx])
    low9 = np.uint64(0x1FF)
    if (hi & low9) == low9:
        hi2, lo2 = _mul128(x, pow5_lo[idx])
        lo = lo + hi2
        if hi2 > lo:
            hi = hi + np.uint64(1)
    upper = np.int64(hi >> np.uint64(63))
    shift = np.uint64(upper + 9)
    mant = hi >> shift
    power2 = ((217706 * q) >> 16) + 63 + upper - lz + 1023
    if power2 <= 0:
        return np.uint64(0), False
    one = np.uint64(1)
    if lo <= one and q >= -4 and q <= 23 and (mant & np.uint64(3)) == one:
        if (mant << shift) == hi:
            mant = mant & ~one
    mant = mant + (mant & one)
    mant = mant >> one
    if mant >= (np.uint64(2) << np.uint64(52)):
        mant = one << np.uint64(52)
        power2 += 1
    mant = mant & ~(one << np.uint64(52))
    if power2 >= 0x7FF:
        return np.uint64(0), False
    return mant | (np.uint64(power2) << np.uint64(52)), True


@nb.njit(cache=True)
def parse_floats(arr, starts, ends, pow10, pow5_hi, pow5_lo, out, out_bits, ok):
    """``out[i]`` = the number in ``arr[starts[i]:ends[i]]``; ``ok[i]`` False where the text
    is not converted here (then ``out[i]`` is undefined).  Entries with ``starts[i] < 0``
    are skipped (``ok`` True, ``out`` NaN).  ``out_bits`` is ``out`` viewed as ``uint64``."""
    ten = np.uint64(10)
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
        m = np.uint64(0)
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
                    if digits >= 19:
                        bad = True
                        break
                    m = m * ten + np.uint64(c - 48)
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
        if m == 0:
            out[i] = -0.0 if neg else 0.0
            ok[i] = True
            continue
        if m <= _MAX_EXACT and -22 <= exp10 <= 22:
            x = float(m)
            if exp10 < 0:
                x = x / pow10[-exp10]
            elif exp10 > 0:
                x = x * pow10[exp10]
            out[i] = -x if neg else x
            ok[i] = True
            continue
        bits, found = _eisel_lemire(m, exp10, pow5_hi, pow5_lo)
        if not found:
            continue
        if neg:
            bits = bits | (np.uint64(1) << np.uint64(63))
        out_bits[i] = bits
        ok[i] = True


def parse(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, ok)`` of the numbers at the given byte spans (see :func:`parse_floats`)."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    out = np.empty(starts.shape[0])
    ok = np.empty(starts.shape[0], np.bool_)
    parse_floats(arr, starts, ends, _POW10, _POW5_HI, _POW5_LO, out, out.view(np.uint64), ok)
    return out, ok
