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
from .files import CHUNK, display_name
from .reader import FileTrees, ReadState, read_file, stream_lengths
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
    mcmc
        Whether the trees carry MCMC state numbers (MrBayes ``gen.N`` or BEAST ``STATE_N``
        tree names, a RevBayes ``Iteration`` column); without them the default burn-in is 0.
    states
        ``(first state, step)`` of evenly numbered MCMC samples, else ``None``.
    format
        ``"nexus"``, ``"newick"`` or ``"revbayes"`` (a RevBayes tree trace).
    """

    path: str
    n_trees: int
    burnin: int
    thin: int
    n_used: int
    weighted: bool
    marked_rooted: int = 0
    mcmc: bool = True
    states: tuple[int, int] | None = None
    format: str = "nexus"


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
        Per run, ``(n_used, N)`` branch lengths of the kept trees (when read with
        ``lengths=True``).  Read with ``lengths="stream"``, a sample keeps no lengths but
        reads them again from its files when asked (:meth:`iter_lengths`).
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
        source: LengthSource | None = None,
    ):
        self.taxa = taxa
        self.rooted = bool(rooted)
        self.parents = np.ascontiguousarray(parents, dtype=np.int32)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.runs = tuple(runs)
        self.traces = tuple(traces)
        self.lengths = tuple(lengths) if lengths is not None else None
        self.notes = tuple(notes)
        self.source = source
        self._clades = None
        self._rows: dict[bytes, int] | None = None  # parent array -> index (index_of)
        self._split_index = None

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

    # -- branch lengths ------------------------------------------------------------------
    @property
    def has_lengths(self) -> bool:
        """Whether every kept tree has a length on every branch (kept in memory, or to be
        read again from the files)."""
        N = self.parents.shape[1]
        if self.lengths is not None:
            return all(not np.isnan(L[:, : N - 1]).any() for L in self.lengths)
        return self.source is not None and self.source.all_lengths

    def iter_lengths(self, chunk: int = 8192):
        """The branch lengths of the kept trees, run after run, in blocks:
        ``(run, position, ids, lengths)`` with ``lengths[j]`` the ``N`` branch lengths of
        kept tree ``position + j`` of the run, whose topology is ``ids[j]``.

        From memory (``lengths=True``) or by reading the files again (``lengths="stream"``):
        either way memory holds one block, not every tree's lengths.
        """
        if self.lengths is not None:
            for r, (trace, L) in enumerate(zip(self.traces, self.lengths)):
                for a in range(0, trace.shape[0], chunk):
                    yield r, a, trace[a : a + chunk], L[a : a + chunk]
            return
        if self.source is None:
            raise InputError("the trees were read without their branch lengths")
        yield from self.source.blocks(self)

    def tree_lengths(self, run: int, position: int) -> np.ndarray:
        """The branch lengths of one kept tree (``position`` among run ``run``'s)."""
        if self.lengths is not None:
            return self.lengths[run][position]
        if not 0 <= position < self.runs[run].n_used:
            raise IndexError(f"no kept tree {position} in run {run}")
        if self.source is None:
            raise InputError("the trees were read without their branch lengths")
        for _, _, _, L in self.source.blocks(self, run, (position, position + 1)):
            return L[0].copy()
        raise IndexError(f"no kept tree {position} in run {run}")  # pragma: no cover

    def clades(self) -> np.ndarray:
        """``(T, N, W)`` clade bitsets of every topology (cached; ``T N W`` words: for many
        large topologies use :func:`phylo.trees.splits.split_index`, which needs none)."""
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


class LengthSource:
    """Where a sample read with ``lengths="stream"`` reads its branch lengths again: the
    files (standard input was copied to a temporary file, removed with the sample), the
    reading state, whether every tree has its lengths, and the position of every kept tree
    in its file (16 bytes per kept tree), so that the files are not scanned again."""

    def __init__(
        self, paths, names, state: ReadState, all_lengths: bool, chunk: int, spool=None, where=()
    ):
        self.paths = list(paths)
        self.where = list(where)  # per run: (n_used, 2) positions of the kept trees
        self.names = list(names)
        self.state = state
        self.all_lengths = all_lengths
        self.chunk = chunk
        self._spool = spool
        if spool is not None:
            import weakref

            weakref.finalize(self, _remove, spool)

    def blocks(self, sample, run: int | None = None, span: tuple[int, int] | None = None):
        """``(run, position, ids, lengths)`` blocks of every kept tree (or of kept trees
        ``span = (a, b)`` of run ``run``), reading only those trees' statements."""
        for r, (path, name, trace, where) in enumerate(
            zip(self.paths, self.names, sample.traces, self.where)
        ):
            a, b = (0, trace.shape[0]) if span is None else span
            if run is not None and r != run:
                continue
            for ids, L, first in stream_lengths(
                path, self.state, where[a:b], trace[a:b], sample.parents, self.chunk, name
            ):
                yield r, a + first, ids, L


def _remove(path: str) -> None:
    import os

    try:
        os.unlink(path)
    except OSError:
        pass


def _spool_stdin() -> str:
    """Copy standard input to a temporary file (in blocks) and return its path."""
    import shutil
    import sys
    import tempfile

    fd, path = tempfile.mkstemp(prefix="phylo-stdin-", suffix=".trees")
    with open(fd, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 22)
    return path


def _burnin_count(burnin, ft: FileTrees) -> int:
    n = ft.n_trees
    if burnin is None:
        burnin = 0 if (ft.weights is not None or not ft.mcmc) else DEFAULT_BURNIN
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
    lengths: bool | str = False,
    taxa: Taxa | Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
    extant_only: bool = False,
    drop: Sequence[str] = (),
    chunk_size: int = CHUNK,
) -> TreeSample:
    """Read tree files (each file one run of the same analysis) into a :class:`TreeSample`.

    Parameters
    ----------
    paths
        MrBayes ``.t``/``.trprobs``, BEAST ``.trees``, RevBayes tree traces (``.trees``
        tables with an ``Iteration`` column) or Newick files (bootstrap trees, IQ-TREE
        ``.ufboot``), maybe compressed; ``"-"`` is standard input.
    burnin
        Per run: a fraction in ``[0, 1)`` or a count of trees (see :func:`parse_burnin`).
        Default: 0.25 for MCMC samples (trees with state numbers: MrBayes ``gen.N``, BEAST
        ``STATE_N`` names, a RevBayes ``Iteration`` column), as MrBayes ``sumt``; 0 for
        weighted summaries (``.trprobs``) and for files without state numbers (bootstrap
        or ``.ufboot`` trees), with a note.  A fraction ``b`` of a run of ``n`` trees
        discards ``floor(b n)`` trees.
    thin
        Keep every ``thin``-th tree after the burn-in.
    rooted
        Keep trees rooted (e.g. BEAST time trees); by default topologies are unrooted,
        whatever root their Newick strings have.
    lengths
        ``True``: keep the branch lengths of every kept tree in memory (``sample.lengths``;
        for small files and per-tree access).  ``"stream"``: keep none, and read them again
        from the files when a summary needs them (:meth:`TreeSample.iter_lengths`), so that
        memory does not grow with the trees' lengths (standard input is copied to a
        temporary file); what is kept per tree is its topology index and where its
        statement is in the file (20 bytes), so that reading again parses only the kept
        trees and scans nothing.  ``False``: topologies only.
    taxa
        Fix the taxon order (default: the order of the first file's translate table, taxa
        block, or first tree).
    progress
        Called with the number of trees parsed, as reading goes.
    extant_only
        Keep only the extant taxa of time trees (fossilized birth-death samples): the tips
        whose height is within ``1e-4`` of the tree's height of the youngest tip, found in
        the first tree and required to be the same in every tree.  Sampled ancestors and
        fossil tips are removed with the branches that lead only to them, and nodes left
        with one child are joined, so topologies are those of the extant taxa.  Needs
        branch lengths and rooted trees as written (the topologies themselves are then
        rooted or not as ``rooted`` says).
    drop
        Taxa to remove from every tree (as RevBayes's ``fnPruneTree`` does), with the
        branches that lead only to them; nodes left with one child are joined.

    Notes
    -----
    Sampled ancestors (fossilized birth-death trees) are read as leaves on branches of
    length zero: RevBayes and BEAST write them so, and older RevBayes files write them as a
    node with one child labelled with the taxon, which is read the same way.  A topology
    does not tell a sampled ancestor from a tip; ``extant_only`` removes them.
    """
    if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence):
        paths = [paths]
    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("no tree files given")
    if thin < 1:
        raise InputError(f"thinning must be a positive integer, got {thin}")
    if lengths not in (False, True, "stream"):
        raise ValueError("lengths is True, False or 'stream'")
    burnin = parse_burnin(burnin)
    if isinstance(drop, str):
        drop = [x for x in drop.split(",") if x.strip()]
    state = ReadState(rooted=rooted, extant_only=extant_only, drop=tuple(drop))
    if taxa is not None:
        state.taxa = taxa if isinstance(taxa, Taxa) else Taxa(list(taxa))
        state.first_path = state.taxa.source or "the given taxa"
    stream = lengths == "stream"
    spool = None
    read_paths = list(paths)
    if stream and "-" in paths:
        if paths.count("-") > 1:
            raise InputError("standard input ('-') can be read once")
        spool = _spool_stdin()
        read_paths = [spool if p == "-" else p for p in paths]
    names = [display_name(p) for p in paths]
    try:
        files = [
            read_file(p, state, lengths=lengths is True, progress=progress, name=nm,
                      chunk_size=chunk_size, where=stream)
            for p, nm in zip(read_paths, names)
        ]  # fmt: skip
    except BaseException:
        if spool is not None:
            _remove(spool)
        raise
    kinds = {ft.weights is not None for ft in files}
    if len(kinds) > 1:
        raise InputError(
            "some files are weighted summaries ([&W], e.g. .trprobs) and others "
            "raw samples; give one kind"
        )
    runs, kept_ids, kept_w, kept_len, kept_where = [], [], [], [], []
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
                ft.mcmc,
                ft.states,
                ft.format,
            )
        )
        kept_ids.append(ids)
        kept_w.append(ft.weights[sel] if ft.weights is not None else None)
        if lengths is True:
            kept_len.append(ft.lengths[sel])
        if stream:
            kept_where.append(np.ascontiguousarray(ft.where[sel]))
            ft.where = None
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
    counts = counts[order]
    parents = index.take(order)
    state.index = None
    notes = [n for ft in files for n in ft.notes]
    notes += _format_notes(files, runs, burnin, rooted)
    source = None
    if stream:
        all_lengths = all(ft.with_lengths == ft.n_trees for ft in files)
        source = LengthSource(read_paths, names, state, all_lengths, chunk_size, spool, kept_where)
    return TreeSample(
        state.taxa,
        rooted,
        parents,
        counts,
        runs,
        traces,
        kept_len if lengths is True else None,
        notes,
        source,
    )


def _format_notes(files, runs, burnin, rooted) -> list[str]:
    """Notes on how the files were read: no burn-in without MCMC state numbers, roots of
    BEAST or ultrametric trees ignored."""
    notes = []
    plain = [ft.path for ft in files if not ft.mcmc and ft.weights is None]
    if burnin is None and plain:
        shown = ", ".join(plain[:3]) + (f" and {len(plain) - 3} more" if len(plain) > 3 else "")
        notes.append(
            f"{shown}: no MCMC state numbers (tree names gen.N or STATE_N, or an Iteration "
            "column), so no burn-in by default, as for bootstrap trees; give --burnin to "
            "discard trees"
        )
    if not rooted and any(ft.marked_rooted for ft in files):
        notes.append(
            "trees are marked rooted ([&R]); their roots were ignored (use --rooted to keep them)"
        )
    elif not rooted:
        beast = [ft.path for ft in files if ft.beast and not ft.marked_unrooted]
        timed = [ft.path for ft in files if ft.ultrametric and not ft.marked_unrooted]
        if beast:
            notes.append(
                f"{beast[0]}: the trees come from BEAST (named STATE_N), which samples rooted "
                "time trees, though they carry no [&R]; their roots were ignored (use "
                "--rooted to keep them)"
            )
        elif timed:
            notes.append(
                f"{timed[0]}: the trees are ultrametric (time trees?) but carry no [&R]; "
                "their roots were ignored (use --rooted to keep them)"
            )
    return notes
