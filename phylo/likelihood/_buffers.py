"""The kernels' work buffers: how many rows they need, and zeroed memory on huge pages.

The layout of a buffer (work rows, then slots of partials) is described in
:mod:`phylo.likelihood._kernels`; the functions here only size and allocate it.
"""

from __future__ import annotations

import mmap

import numpy as np

from ._kernels import ROW_TIP

#: Size of a transparent huge page (x86-64); buffers of at least this size use them.
HUGE_PAGE_BYTES = 1 << 21
#: Buffers of at least this size are placed on huge pages (the rest of the last page is
#: unused).
HUGE_PAGE_MIN_BYTES = 1 << 20


def buffer_rows(n_slots: int, n_pre_slots: int, n_categories: int) -> int:
    """Rows of the buffer the traversal needs: work rows (``ROW_TIP + 24 K``), ``4 K``
    per slot of partials and of pre-order partials and (with pre-order partials) one row
    per node for the factors of its rescaling."""
    return (
        ROW_TIP
        + 24 * n_categories
        + 4 * n_categories * (n_slots + n_pre_slots)
        + (n_slots if n_pre_slots else 0)
    )


def new_buffer(rows: int, n_patterns: int, n_categories: int) -> np.ndarray:
    """A zeroed ``(rows, n_patterns)`` buffer with its rows of ones (``ROW_TIP + 16 K``
    to ``ROW_TIP + 20 K``) set."""
    buf = zeros((rows, n_patterns))
    ones = ROW_TIP + 16 * n_categories
    buf[ones : ones + 4 * n_categories] = 1.0
    return buf


def zeros(shape) -> np.ndarray:
    """``np.zeros(shape)``; an array of a huge page or more is given its own anonymous
    mapping aligned to 2 MiB and advised to use transparent huge pages (Linux).

    Each row of a buffer is a page or more apart from the next, and one traversal touches
    every row: with 4 KiB pages the gradient's buffer (all edge partials) needs more
    translations than the TLB holds, and the page walks cost about a tenth of the
    gradient; and a likelihood buffer about the size of the L2 cache runs 15-20 % slower
    in some processes than in others, depending on where its 4 KiB pages happen to lie
    (cache set conflicts), which contiguous 2 MiB pages avoid.  Where huge pages are not
    available this is an ordinary zeroed array.
    """
    n = int(np.prod(shape)) * 8
    if n < HUGE_PAGE_MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros(shape)
    try:
        # whole huge pages, and one more to align the start
        size = -(-n // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES + HUGE_PAGE_BYTES
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):
        return np.zeros(shape)
    raw = np.frombuffer(m, dtype=np.uint8)  # anonymous mappings are zero-filled
    off = -raw.ctypes.data % HUGE_PAGE_BYTES
    return raw[off : off + n].view(np.float64).reshape(shape)
