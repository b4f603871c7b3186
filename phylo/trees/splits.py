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

from . import _kernels_values as _values_kernels
from . import bitsets
from .clade_values import ACCURACY, EXACT_LIMIT, CladeValues, ValueStats

MIN_FREQ = 0.1


@dataclass
class SplitIndex:
    """Every split (clade, for rooted samples) of a sample's unique topologies, with an id.

    Attributes
    ----------
    bits : ndarray, uint64, shape (S, W)
        Unrooted: the side of each split without taxon 0.  Rooted: the clade.  Sorted by
        their bytes (the order of :func:`phylo.trees.bitsets.as_keys`), so that
        :meth:`lookup` is a binary search.
    node_ids : ndarray, int32, shape (T, N)
        ``node_ids[t, v]``: id of the split of the branch above node ``v`` of topology ``t``
        (unrooted: the root, which has no branch, gets -1; rooted: the root gets the id of
        the clade of all taxa, so that root heights have an id too).  Leaves are included.
    rooted : bool
    n_taxa : int
    """

    bits: np.ndarray
    node_ids: np.ndarray
    rooted: bool
    n_taxa: int

    def __len__(self) -> int:
        return self.bits.shape[0]

    def lookup(self, bits: np.ndarray) -> np.ndarray:
        """Ids of the given splits or clades ``(m, W)`` (unrooted: either side), -1 where
        absent."""
        b = np.asarray(bits, dtype=np.uint64).reshape(-1, self.bits.shape[1])
        if not self.rooted:
            b = bitsets.normalise_splits(b, self.n_taxa)
        keys = bitsets.as_keys(b)
        mine = bitsets.as_keys(self.bits)
        pos = np.searchsorted(mine, keys)
        pos = np.minimum(pos, len(self) - 1)
        hit = mine[pos] == keys
        return np.where(hit, pos, -1).astype(np.int64)


def split_index(sample) -> SplitIndex:
    """The :class:`SplitIndex` of a :class:`~phylo.trees.TreeSample` (trivial splits and,
    for rooted samples, the root clade included)."""
    n = sample.n_taxa
    N = sample.parents.shape[1]
    clades = sample.clades()
    if sample.rooted:
        b = clades
    else:
        b = bitsets.normalise_splits(clades[:, : N - 1, :], n)
    keys = bitsets.as_keys(b).reshape(-1)
    _, first_idx, inv = np.unique(keys, return_index=True, return_inverse=True)
    flat_bits = b.reshape(-1, b.shape[-1])[first_idx]
    ids = inv.reshape(b.shape[0], b.shape[1]).astype(np.int32)
    if not sample.rooted:
        ids = np.concatenate([ids, np.full((ids.shape[0], 1), -1, np.int32)], axis=1)
    return SplitIndex(np.ascontiguousarray(flat_bits), ids, sample.rooted, n)


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
    counts : ndarray, shape (S, R), optional
        Trees containing each split in each run (summed weights for weighted runs).
    ids : ndarray, int64, shape (S,), optional
        Each row's id in the sample's :class:`SplitIndex`.
    lengths : ValueStats, optional
        Summaries of the length of the split's branch over the trees that contain it (see
        :mod:`phylo.trees.clade_values`), one entry per row.
    heights : ValueStats, optional
        Rooted samples: summaries of the clade's node height, one entry per row.
    """

    bits: np.ndarray
    freq: np.ndarray
    pooled: np.ndarray
    n_taxa: int
    counts: np.ndarray | None = None
    ids: np.ndarray | None = None
    lengths: ValueStats | None = None
    heights: ValueStats | None = None

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


def _frequencies(sample, index: SplitIndex):
    """``(counts (S, R), freq (S, R), pooled (S,))`` of every split of the index."""
    S = len(index)
    N = sample.parents.shape[1]
    ids = index.node_ids[:, : N - 1]
    T = ids.shape[0]
    owner = np.repeat(np.arange(T), ids.shape[1])
    flat = ids.reshape(-1)
    if index.rooted:  # the root clade is in every tree
        owner = np.concatenate([owner, np.arange(T)])
        flat = np.concatenate([flat, index.node_ids[:, N - 1]])
    F = sample.run_frequencies()
    counts = np.empty((S, sample.n_runs))
    freq = np.empty((S, sample.n_runs))
    for r in range(sample.n_runs):
        counts[:, r] = np.bincount(flat, weights=sample.counts[owner, r], minlength=S)
        freq[:, r] = np.bincount(flat, weights=F[owner, r], minlength=S)
    pooled = np.bincount(flat, weights=sample.frequencies()[owner], minlength=S)
    # rounding can leave 1 + 1e-16; clip to the valid range
    return counts, np.clip(freq, 0.0, 1.0), np.clip(pooled, 0.0, 1.0)


def split_table(
    sample,
    min_freq: float = 0.0,
    include_trivial: bool = False,
    values: bool = False,
    index: SplitIndex | None = None,
    exact_limit: int | None = EXACT_LIMIT,
    accuracy: float = ACCURACY,
    chunk: int = 8192,
) -> SplitTable:
    """Frequencies of the splits (clades if rooted) of a :class:`TreeSample` per run.

    Splits are sorted by decreasing pooled frequency (ties: by their bitsets); only those
    whose frequency reaches ``min_freq`` in at least one run are kept.  Trivial splits (one
    taxon against the rest; for rooted samples also the root clade) only with
    ``include_trivial``.

    With ``values`` (the sample must have been read with ``lengths=True``), the table also
    summarises, over the trees that contain each split, the length of its branch and, for
    rooted samples, the height of its node (:func:`branch_values`; ``exact_limit`` and
    ``accuracy`` as there).
    """
    n = sample.n_taxa
    if index is None:
        index = split_index(sample)
    counts, freq, pooled = _frequencies(sample, index)
    S = len(index)
    sizes = bitsets.popcount(index.bits)
    keep = np.ones(S, bool) if include_trivial else (sizes > 1) & (sizes < n)
    if not index.rooted and not include_trivial:
        keep &= sizes < n - 1
    if min_freq > 0:
        keep &= freq.max(axis=1) >= min_freq
    idx = np.nonzero(keep)[0]
    order = idx[np.lexsort((idx, -pooled[idx]))]
    table = SplitTable(
        index.bits[order], freq[order], pooled[order], n, counts[order], order.astype(np.int64)
    )
    if values:
        lengths, heights = branch_values(sample, index, exact_limit, accuracy, chunk)
        table.lengths = lengths.take(order) if lengths is not None else None
        table.heights = heights.take(order) if heights is not None else None
    return table


def has_lengths(sample) -> bool:
    """Whether every kept tree of the sample has branch lengths."""
    if sample.lengths is None:
        return False
    N = sample.parents.shape[1]
    return all(not np.isnan(L[:, : N - 1]).any() for L in sample.lengths)


def branch_values(
    sample,
    index: SplitIndex | None = None,
    exact_limit: int | None = EXACT_LIMIT,
    accuracy: float = ACCURACY,
    chunk: int = 8192,
) -> tuple[ValueStats | None, ValueStats | None]:
    """Branch lengths (and node heights, for rooted samples) summarised per split id.

    The trees are fed to :class:`~phylo.trees.clade_values.CladeValues` ``chunk`` trees at a
    time, run after run, so the summaries need memory for the clades, not for the trees
    (beyond ``exact_limit`` values; see :mod:`phylo.trees.clade_values`).  The length of
    split ``s`` is summarised over the trees that contain ``s``; the height of a node is its
    distance below the root minus the largest such distance of a leaf (so the youngest leaf
    has height 0, as in BEAST).  Returns ``(lengths, heights)`` indexed by split id
    (``heights`` is ``None`` for unrooted samples); ``(None, None)`` when the sample has no
    branch lengths.
    """
    if not has_lengths(sample):
        return None, None
    if index is None:
        index = split_index(sample)
    N = sample.parents.shape[1]
    S = len(index)
    acc_len = CladeValues(S, exact_limit, accuracy)
    acc_h = CladeValues(S, exact_limit, accuracy) if sample.rooted else None
    for trace, L in zip(sample.traces, sample.lengths):
        for a in range(0, trace.shape[0], chunk):
            ids = trace[a : a + chunk]
            block = L[a : a + chunk]
            keys = index.node_ids[ids]
            acc_len.add(keys[:, : N - 1], block[:, : N - 1])
            if acc_h is not None:
                h = np.empty(block.shape)
                _values_kernels.node_heights(sample.parents, ids.astype(np.int64), block, h)
                acc_h.add(keys, h)
    return acc_len.result(), (acc_h.result() if acc_h is not None else None)


class SplitLengths:
    """Branch lengths for any topology from a tree sample: each branch gets the mean length
    of its split (clade, if rooted) over the sampled trees that contain it; a split the
    sample never saw gets the mean of all the sample's branch lengths.

    This is how ``sbn top`` and ``sbn sample`` give their trees lengths (``--lengths-from``),
    e.g. as starting values or for ``marglik loglik``.
    """

    def __init__(self, sample):
        if sample.rooted:
            raise ValueError("per-split lengths are defined here for unrooted samples")
        lengths, _ = branch_values(sample)
        if lengths is None:
            from ..errors import InputError

            raise InputError("the trees have no branch lengths (or not on every branch)")
        self.taxa = sample.taxa
        self.index = split_index(sample)
        count = lengths.count.astype(float)
        self.means = np.where(count > 0, lengths.mean, np.nan)
        seen = count > 0
        self.default = float(np.sum(lengths.mean[seen] * count[seen]) / np.sum(count[seen]))

    def lengths(self, parents: np.ndarray) -> np.ndarray:
        """``(T, N)`` branch lengths (root entry 0) of canonical unrooted parent arrays on the
        sample's taxa."""
        parents = np.ascontiguousarray(np.atleast_2d(parents), dtype=np.int32)
        n = len(self.taxa)
        N = parents.shape[1]
        b = bitsets.normalise_splits(bitsets.clades(parents, n)[:, : N - 1, :], n)
        ids = self.index.lookup(b.reshape(-1, b.shape[-1])).reshape(parents.shape[0], N - 1)
        out = np.zeros(parents.shape, float)
        out[:, : N - 1] = np.where(ids >= 0, self.means[np.maximum(ids, 0)], self.default)
        return out


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


def split_records(table: SplitTable, taxa, runs: int, weighted: bool = False):
    """``(columns, rows)`` of a split table for :func:`phylo.tables.write_table`.

    One row per split: ``id`` (1-based rank), ``split`` (MrBayes's picture: ``*`` for the
    taxa on the side without taxon 0, or in the clade), ``taxa`` (their names, separated by
    commas), ``size``, ``trees`` (trees that contain it; missing for weighted samples),
    ``frequency`` (pooled), ``freq_run1 ...``, ``sd`` (across runs, ``n - 1``), then for the
    branch lengths (and node heights of rooted samples) over the trees that contain the
    split: ``length_mean``, ``length_var``, ``length_median``, ``length_hpd_lower``,
    ``length_hpd_upper``, ``length_min``, ``length_max``.
    """
    columns = ["id", "split", "taxa", "size", "trees", "frequency"]
    columns += [f"freq_run{r + 1}" for r in range(runs)] + ["sd"]
    stats = [("length", table.lengths), ("height", table.heights)]
    stats = [(name, s) for name, s in stats if s is not None]
    parts = ("mean", "var", "median", "hpd_lower", "hpd_upper", "min", "max")
    for name, _ in stats:
        columns += [f"{name}_{p}" for p in parts]
    sd = table.sd()
    sizes = table.sizes()
    names = list(taxa.names)
    rows = []
    for i in range(len(table)):
        idx = bitsets.to_indices(table.bits[i])
        trees = None if weighted or table.counts is None else int(round(table.counts[i].sum()))
        row = [i + 1, bitsets.to_string(table.bits[i], len(names))]
        row += [",".join(names[j] for j in idx), int(sizes[i]), trees, float(table.pooled[i])]
        row += [float(x) for x in table.freq[i]] + [float(sd[i])]
        for _, s in stats:
            row += [
                float(s.mean[i]),
                float(s.var[i]),
                float(s.median[i]),
                float(s.hpd_lower[i]),
                float(s.hpd_upper[i]),
                float(s.min[i]),
                float(s.max[i]),
            ]
        rows.append(row)
    return columns, rows


def format_split_text(columns, rows, header: str = "") -> str:
    """The split table for a terminal: aligned columns, numbers to 6 significant digits,
    the taxa column last."""
    order = [c for c in columns if c != "taxa"] + ["taxa"]
    pos = [columns.index(c) for c in order]

    def cell(v):
        if v is None or (isinstance(v, float) and v != v):
            return "NA"
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)

    table = [order] + [[cell(r[j]) for j in pos] for r in rows]
    widths = [max(len(t[j]) for t in table) for j in range(len(order) - 1)]
    lines = [header.rstrip("\n")] if header else []
    for t in table:
        lines.append("  ".join(x.rjust(w) for x, w in zip(t, widths)) + "  " + t[-1])
    return "\n".join(lines) + "\n"
