"""Clades and splits as bitsets, for any number of taxa.

A set of taxa is ``W = ceil(n / 64)`` unsigned 64-bit words; taxon ``i`` is bit ``i % 64`` of
word ``i // 64``.  Arrays of bitsets have the words in their last axis, so a row of ``W``
words compares, sorts and hashes as one key (see :func:`as_keys`).
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K


def n_words(n_taxa: int) -> int:
    return (n_taxa + 63) // 64


def clades(parents: np.ndarray, n_taxa: int) -> np.ndarray:
    """``(T, N, W)`` clade bitsets of ``(T, N)`` canonical parent arrays."""
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    return K.clade_bitsets(parents, n_taxa, n_words(n_taxa))


def full(n_taxa: int) -> np.ndarray:
    """The bitset of all ``n_taxa`` taxa."""
    w = n_words(n_taxa)
    out = np.full(w, np.uint64(0xFFFFFFFFFFFFFFFF), np.uint64)
    rem = n_taxa - 64 * (w - 1)
    if rem < 64:
        out[-1] = np.uint64((1 << rem) - 1)
    return out


def normalise_splits(bits: np.ndarray, n_taxa: int) -> np.ndarray:
    """Replace each set containing taxon 0 by its complement (the split's canonical side)."""
    bits = np.array(bits, dtype=np.uint64, copy=True)
    has0 = (bits[..., 0] & np.uint64(1)) != 0
    bits[has0] = full(n_taxa) ^ bits[has0]
    return bits


def popcount(bits: np.ndarray) -> np.ndarray:
    """Number of taxa in each bitset (over the last axis)."""
    b = np.ascontiguousarray(bits, dtype=np.uint64)
    as_bytes = b.view(np.uint8).reshape(b.shape + (8,))
    return np.unpackbits(as_bytes, axis=-1).reshape(b.shape[:-1] + (-1,)).sum(axis=-1)


def as_keys(bits: np.ndarray) -> np.ndarray:
    """View ``(..., W)`` bitsets as one opaque key each (for ``np.unique`` and sorting)."""
    b = np.ascontiguousarray(bits, dtype=np.uint64)
    w = b.shape[-1]
    return b.view(np.dtype((np.void, 8 * w))).reshape(b.shape[:-1])


def from_indices(indices, n_taxa: int) -> np.ndarray:
    """Bitset of the given taxon indices."""
    out = np.zeros(n_words(n_taxa), np.uint64)
    for i in indices:
        out[i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    return out


def to_indices(bits: np.ndarray) -> list[int]:
    """Taxon indices in a single bitset."""
    out = []
    for w, word in enumerate(np.asarray(bits, dtype=np.uint64)):
        x = int(word)
        while x:
            low = x & -x
            out.append(64 * w + low.bit_length() - 1)
            x ^= low
    return out


def to_string(bits: np.ndarray, n_taxa: int, on: str = "*", off: str = ".") -> str:
    """MrBayes-style picture of a set: ``.**..`` with taxon 0 first."""
    chars = [off] * n_taxa
    for i in to_indices(bits):
        chars[i] = on
    return "".join(chars)
