"""Split frequencies and the average standard deviation of split frequencies (ASDSF).

Definitions follow MrBayes ``sumt``: the frequency of a split in a run is the fraction of the
run's kept trees that contain it; the ASDSF averages, over the informative splits (at least
two taxa on each side) whose frequency reaches ``min_freq`` (0.1) in at least one run, the
standard deviation of the split's frequencies across runs (with the ``R - 1`` denominator).
For rooted samples, clades take the place of splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bitsets

MIN_FREQ = 0.1


@dataclass
class SplitTable:
    """Splits (or clades, for rooted samples) with their frequencies per run.

    Attributes
    ----------
    bits : ndarray, uint64, shape (S, W)
        Unrooted: the side of each split without taxon 0.  Rooted: the clade.
    freq : ndarray, shape (S, R)
        Frequency of each split in each run.
    pooled : ndarray, shape (S,)
        Frequency in the pooled sample.
    n_taxa : int
    """

    bits: np.ndarray
    freq: np.ndarray
    pooled: np.ndarray
    n_taxa: int

    def __len__(self) -> int:
        return self.bits.shape[0]

    def sd(self) -> np.ndarray:
        """Standard deviation of each split's frequency across runs (``ddof=1``)."""
        if self.freq.shape[1] < 2:
            return np.full(len(self), np.nan)
        return self.freq.std(axis=1, ddof=1)

    def sizes(self) -> np.ndarray:
        return bitsets.popcount(self.bits)

    def strings(self) -> list[str]:
        """MrBayes-style pictures (``..**.``) of the splits."""
        return [bitsets.to_string(b, self.n_taxa) for b in self.bits]


def split_table(sample, min_freq: float = 0.0, include_trivial: bool = False) -> SplitTable:
    """Frequencies of the splits (clades if rooted) of a :class:`TreeSample` per run.

    Splits are sorted by decreasing pooled frequency; only those whose frequency reaches
    ``min_freq`` in at least one run are kept.
    """
    n = sample.n_taxa
    N = sample.parents.shape[1]
    clades = sample.clades()
    first = 0 if include_trivial else n
    nodes = np.arange(first, N - 1)
    b = clades[:, nodes, :]
    if not sample.rooted:
        b = bitsets.normalise_splits(b, n)
    T = sample.n_topologies
    keys = bitsets.as_keys(b).reshape(-1)
    _, first_idx, inv = np.unique(keys, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    flat_bits = b.reshape(-1, b.shape[-1])[first_idx]
    F = sample.run_frequencies()
    owner = np.repeat(np.arange(T), nodes.shape[0])
    S = first_idx.shape[0]
    freq = np.empty((S, sample.n_runs))
    for r in range(sample.n_runs):
        freq[:, r] = np.bincount(inv, weights=F[owner, r], minlength=S)
    pooled = np.bincount(inv, weights=sample.frequencies()[owner], minlength=S)
    keep = freq.max(axis=1) >= min_freq if min_freq > 0 else np.ones(S, bool)
    # rounding can leave 1 + 1e-16; clip to the valid range
    freq = np.clip(freq, 0.0, 1.0)
    pooled = np.clip(pooled, 0.0, 1.0)
    idx = np.nonzero(keep)[0]
    order = idx[np.lexsort((idx, -pooled[idx]))]
    return SplitTable(flat_bits[order], freq[order], pooled[order], n)


def asdsf(sample, min_freq: float = MIN_FREQ) -> float:
    """Average standard deviation of split frequencies between the runs of ``sample``.

    ``nan`` for a single run.  Matches MrBayes ``sumt`` ("Summary statistics for partitions
    with frequency >= 0.10 in at least one run").
    """
    if sample.n_runs < 2:
        return float("nan")
    table = split_table(sample, min_freq=min_freq)
    if len(table) == 0:
        return float("nan")
    return float(table.sd().mean())
