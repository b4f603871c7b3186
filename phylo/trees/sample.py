"""TreeSample: the unique topologies of one or more MCMC runs, with counts or weights.

A sample is columnar: one canonical parent array per unique topology (``parents``), a
``(topologies x runs)`` table of counts (raw samples) or summed weights (``.trprobs``), and per
run the trace of topology indices in sampling order.  Topologies are sorted by decreasing
pooled frequency (ties: first seen first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import bitsets
from .reader import FileTrees, ReadState, read_file
from .taxa import Taxa
from .tree import Tree

DEFAULT_BURNIN = 0.25


@dataclass(frozen=True)
class RunInfo:
    """Bookkeeping of one run (one input file).

    Attributes
    ----------
    path
        The file.
    n_trees
        Trees in the file.
    burnin
        Trees discarded from its start.
    thin
        Every ``thin``-th tree after the burn-in is kept.
    n_used
        Trees kept.
    weighted
        Whether the trees carry ``[&W]`` weights (a ``.trprobs`` summary).
    marked_rooted
        Trees marked ``[&R]`` in the file.
    """

    path: str
    n_trees: int
    burnin: int
    thin: int
    n_used: int
    weighted: bool
    marked_rooted: int = 0


def parse_burnin(value) -> float | int | None:
    """Interpret a burn-in given as text or number.

    ``None`` means the default.  A number with a decimal point (``0.25``) or a percentage
    (``25%``) is a fraction of each run; an integer (``1000``) is a number of trees.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"burn-in must be a fraction or a count, not {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise InputError(f"burn-in must not be negative, got {value}")
        return int(value)
    if isinstance(value, float):
        frac = value
    else:
        text = str(value).strip()
        try:
            if text.endswith("%"):
                frac = float(text[:-1]) / 100.0
            elif any(c in text for c in ".eE"):
                frac = float(text)
            else:
                count = int(text)
                if count < 0:
                    raise InputError(f"burn-in must not be negative, got {text}")
                return count
        except ValueError:
            raise InputError(
                f"burn-in must be a fraction (0.25), a percentage (25%) or a "
                f"number of trees (1000), got {text!r}"
            ) from None
    if not (0.0 <= frac < 1.0) or math.isnan(frac):
        raise InputError(f"a burn-in fraction must be in [0, 1), got {value}")
    return float(frac)


class TreeSample:
    """Unique topologies of a tree sample with their counts per run.

    Use :func:`read_trees` to build one from files.

    Attributes
    ----------
    taxa : Taxa
        Taxon ``i`` is leaf ``i`` of every topology.
    rooted : bool
        Whether topologies are rooted.
    parents : ndarray, int32, shape (T, N)
        Canonical parent arrays of the unique topologies.
    counts : ndarray, float64, shape (T, R)
        Trees of each topology kept in each run (for weighted runs: summed weights).
    runs : tuple of RunInfo
    traces : tuple of ndarray
        Per run, the topology index of each kept tree, in sampling order.
    lengths : tuple of ndarray or None
        Per run, ``(n_used, N)`` branch lengths of the kept trees (when read with lengths).
    notes : tuple of str
        Things the user should know about the input (e.g. a file without ``end;``).
    """

    def __init__(
        self,
        taxa: Taxa,
        rooted: bool,
        parents: np.ndarray,
        counts: np.ndarray,
        runs: Sequence[RunInfo],
        traces: Sequence[np.ndarray],
        lengths: Sequence[np.ndarray] | None = None,
        notes: Sequence[str] = (),
    ):
        self.taxa = taxa
        self.rooted = bool(rooted)
        self.parents = np.ascontiguousarray(parents, dtype=np.int32)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.runs = tuple(runs)
        self.traces = tuple(traces)
        self.lengths = tuple(lengths) if lengths is not None else None
        self.notes = tuple(notes)
        self._clades = None
        self._rows: dict[bytes, int] | None = None  # parent array -> index (index_of)

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    @property
    def n_topologies(self) -> int:
        return self.parents.shape[0]

    def __len__(self) -> int:
        return self.n_topologies

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def weighted(self) -> bool:
        return bool(self.runs) and self.runs[0].weighted

    @property
    def n_trees(self) -> int:
        """Trees kept over all runs (listed trees for weighted runs)."""
        return int(sum(r.n_used for r in self.runs))

    # -- frequencies ---------------------------------------------------------------------
    def run_frequencies(self) -> np.ndarray:
        """``(T, R)``: each run's relative frequency of each topology."""
        tot = self.counts.sum(axis=0, keepdims=True)
        return np.divide(self.counts, tot, out=np.zeros_like(self.counts), where=tot > 0)

    def run_weights(self) -> np.ndarray:
        """Weight of each run when runs are pooled: its number of kept trees for raw
        samples, equal weights for weighted summaries."""
        if self.weighted:
            return np.ones(self.n_runs)
        return np.array([r.n_used for r in self.runs], dtype=np.float64)

    def frequencies(self, run: int | None = None) -> np.ndarray:
        """Relative frequency of each topology, pooled over runs or in one run."""
        f = self.run_frequencies()
        if run is not None:
            return f[:, run]
        w = self.run_weights()
        return f @ (w / w.sum())

    # -- topologies ----------------------------------------------------------------------
    def topology(self, i: int) -> Tree:
        """Topology ``i`` as a :class:`~phylo.trees.tree.Tree` (no branch lengths)."""
        return Tree(self.taxa, self.parents[i], None, self.rooted)

    def newick(self, i: int) -> str:
        return self.topology(i).to_newick(lengths=False)

    def clades(self) -> np.ndarray:
        """``(T, N, W)`` clade bitsets of every topology (cached)."""
        if self._clades is None:
            self._clades = bitsets.clades(self.parents, self.n_taxa)
        return self._clades

    def most_frequent(self, k: int = 10) -> list[tuple[int, float]]:
        """``[(topology index, pooled frequency)]`` of the ``k`` most frequent topologies."""
        f = self.frequencies()
        return [(i, float(f[i])) for i in range(min(k, self.n_topologies))]

    def index_of(self, tree: Tree) -> int:
        """Index of a topology in the sample, or ``-1``.

        The tree's taxa may be in another order (they are matched by name); a rooted tree
        is looked up in an unrooted sample by its unrooted topology.
        """
        if tree.rooted and not self.rooted:
            tree = tree.unrooted()
        elif self.rooted and not tree.rooted:
            raise InputError("an unrooted tree cannot be looked up among rooted topologies")
        if tree.taxa != self.taxa:
            tree = tree.reorder_taxa(self.taxa)
        if self._rows is None:
            self._rows = {}
            for i, row in enumerate(self.parents):
                self._rows.setdefault(row.tobytes(), i)
        return self._rows.get(tree.parent.tobytes(), -1)

    # -- splits --------------------------------------------------------------------------
    def split_frequencies(self, min_freq: float = 0.0, include_trivial: bool = False):
        """Split (clade) frequencies per run; see :func:`phylo.trees.splits.split_table`."""
        from .splits import split_table

        return split_table(self, min_freq=min_freq, include_trivial=include_trivial)

    def asdsf(self, min_freq: float = 0.1) -> float:
        """Average standard deviation of split frequencies between runs (MrBayes)."""
        from .splits import asdsf

        return asdsf(self, min_freq=min_freq)

    def __repr__(self) -> str:
        return (
            f"<TreeSample: {self.n_taxa} taxa, {self.n_topologies} topologies, "
            f"{self.n_runs} run(s), {'rooted' if self.rooted else 'unrooted'}>"
        )


def _burnin_count(burnin, ft: FileTrees) -> int:
    n = ft.n_trees
    if burnin is None:
        burnin = 0 if ft.weights is not None else DEFAULT_BURNIN
    elif ft.weights is not None and burnin != 0:
        raise InputError(
            "a weighted summary (trees with [&W] weights, e.g. .trprobs) has no "
            "burn-in; use --burnin 0",
            ft.path,
        )
    count = int(burnin * n) if isinstance(burnin, float) else int(burnin)
    if count >= n:
        raise InputError(f"a burn-in of {count} trees leaves none of the {n} trees", ft.path)
    return count


def read_trees(
    paths: str | Sequence[str],
    burnin=None,
    thin: int = 1,
    rooted: bool = False,
    lengths: bool = False,
    taxa: Taxa | Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> TreeSample:
    """Read tree files (each file one run of the same analysis) into a :class:`TreeSample`.

    Parameters
    ----------
    paths
        MrBayes ``.t``/``.trprobs``, BEAST ``.trees`` or Newick files, maybe compressed;
        ``"-"`` is standard input.
    burnin
        Per run: a fraction in ``[0, 1)`` or a count of trees (see :func:`parse_burnin`).
        Default: 0.25 for raw samples (as MrBayes ``sumt``), 0 for weighted summaries.
        A fraction ``b`` of a run of ``n`` trees discards ``floor(b n)`` trees.
    thin
        Keep every ``thin``-th tree after the burn-in.
    rooted
        Keep trees rooted (e.g. BEAST time trees); by default topologies are unrooted,
        whatever root their Newick strings have.
    lengths
        Also keep the branch lengths of every kept tree.
    taxa
        Fix the taxon order (default: the order of the first file's translate table, taxa
        block, or first tree).
    progress
        Called with the number of trees parsed, as reading goes.
    """
    if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence):
        paths = [paths]
    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("no tree files given")
    if thin < 1:
        raise InputError(f"thinning must be a positive integer, got {thin}")
    burnin = parse_burnin(burnin)
    state = ReadState(rooted=rooted)
    if taxa is not None:
        state.taxa = taxa if isinstance(taxa, Taxa) else Taxa(list(taxa))
        state.first_path = state.taxa.source or "the given taxa"
    files = [read_file(p, state, lengths=lengths, progress=progress) for p in paths]
    kinds = {ft.weights is not None for ft in files}
    if len(kinds) > 1:
        raise InputError(
            "some files are weighted summaries ([&W], e.g. .trprobs) and others "
            "raw samples; give one kind"
        )
    runs, kept_ids, kept_w, kept_len = [], [], [], []
    for ft in files:
        b = _burnin_count(burnin, ft)
        sel = slice(b, None, thin)
        ids = ft.ids[sel]
        runs.append(
            RunInfo(
                ft.path,
                ft.n_trees,
                b,
                thin,
                int(ids.shape[0]),
                ft.weights is not None,
                ft.marked_rooted,
            )
        )
        kept_ids.append(ids)
        kept_w.append(ft.weights[sel] if ft.weights is not None else np.ones(ids.shape[0]))
        if lengths:
            kept_len.append(ft.lengths[sel])
    index = state.index
    n_all = index.count
    R = len(files)
    counts = np.zeros((n_all, R))
    seen = np.zeros(n_all, bool)
    for r in range(R):
        counts[:, r] = np.bincount(kept_ids[r], weights=kept_w[r], minlength=n_all)
        seen[kept_ids[r]] = True
        if files[r].weights is not None and not counts[:, r].sum() > 0:
            raise InputError(
                "every tree kept has weight 0 ([&W 0]): the run gives no frequencies",
                files[r].path,
            )
    # every topology of a kept tree, also one of weight 0 (MrBayes prints [&W 0] for a tree
    # seen once in a very long run): it has frequency 0 but is a topology of the sample
    used = np.nonzero(seen)[0]
    tot = counts.sum(axis=0, keepdims=True)
    f = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
    w = (
        np.ones(R)
        if files[0].weights is not None
        else np.array([r.n_used for r in runs], dtype=float)
    )
    pooled = f[used] @ (w / w.sum())
    order = used[np.lexsort((used, -pooled))]
    remap = np.full(n_all, -1, np.int64)
    remap[order] = np.arange(order.shape[0])
    traces = tuple(remap[ids].astype(np.int32) for ids in kept_ids)
    notes = [n for ft in files for n in ft.notes]
    if not rooted and any(ft.marked_rooted for ft in files):
        notes.append(
            "trees are marked rooted ([&R]); their roots were ignored (use --rooted to keep them)"
        )
    return TreeSample(
        state.taxa,
        rooted,
        index.rows[order],
        counts[order],
        runs,
        traces,
        kept_len if lengths else None,
        notes,
    )
