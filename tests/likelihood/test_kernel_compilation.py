"""Memory for the kernels' buffers: large ones lie on aligned huge pages."""

from __future__ import annotations

import mmap

import numpy as np

from phylo.likelihood._buffers import HUGE_PAGE_BYTES, HUGE_PAGE_MIN_BYTES, zeros


def test_large_buffers_are_zeroed_and_on_aligned_huge_pages():
    small = zeros((3, 5))
    assert small.shape == (3, 5) and small.dtype == np.float64 and not small.any()
    shape = (64, HUGE_PAGE_MIN_BYTES // (8 * 64) + 101)
    big = zeros(shape)
    assert big.shape == shape and big.dtype == np.float64 and big.flags.c_contiguous
    assert not big.any()
    big[-1, -1] = 1.0  # writable to the last element
    assert big.sum() == 1.0
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert big.ctypes.data % HUGE_PAGE_BYTES == 0
