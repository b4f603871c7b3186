"""Summary trees of a tree sample: majority-rule and extended consensus, MCC and MAP trees.

Every summary tree is a set of splits (clades, for rooted samples) of the sample's taxa,
annotated from the sample (see :func:`annotate`):

* **majority** (MrBayes ``sumt contype=halfcompat``): the splits whose pooled frequency is at
  least 1/2, taken in order of decreasing frequency, each kept if it is compatible with those
  already kept (two splits of frequency exactly 1/2 can conflict; the first one wins);
* **extended** (greedy or "all-compatible" consensus; MrBayes ``contype=allcompat``,
  SumTrees ``--min-clade-freq 0``): every split in order of decreasing frequency, kept if it
  is compatible with those kept so far (ties in frequency are taken in the order of their
  bitsets);
* **mcc**: the maximum clade credibility tree, the sampled topology ``T`` that maximises
  ``sum_{s in T} log f(s)`` over the sampled topologies, ``f`` the pooled split (clade)
  frequency; on a tie the topology sampled first (as TreeAnnotator, which keeps the first
  best tree of the file);
* **map**: the most probable topology under a fitted tree distribution
  (:meth:`phylo.sbn.SBNModel.top`, exact), with its probability as a tree attribute.

Two splits ``A|A'`` and ``B|B'`` are compatible when one of ``A & B``, ``A & B'``,
``A' & B``, ``A' & B'`` is empty (clades: when they are nested or disjoint).

**Annotations** follow TreeAnnotator 2.7 (what FigTree and R's ``treeio::read.beast`` read):
``posterior`` (pooled frequency of the node's clade or split; internal nodes), ``length``,
``length_median``, ``length_95%_HPD``, ``length_range`` (over the trees that contain the
split), and for rooted trees ``height``, ``height_median``, ``height_95%_HPD``,
``height_range``.  Like TreeAnnotator, a median, HPD and range are only written when the
values differ.  The printed branch lengths are, for unrooted trees, the mean lengths; for
rooted trees the differences of node heights, the heights being the means or medians of the
clade's heights (``heights="mean"|"median"``) or, for the MCC tree, those of the first
sampled tree of its topology (``"keep"``).  Means are exact; medians and HPD intervals are
exact or within the stated tolerance of :mod:`phylo.trees.clade_values`.

An unrooted summary tree is drawn rooted on an outgroup, as MrBayes draws its consensus:
by default taxon 0 (a basal multifurcation that holds it); with an outgroup of several taxa,
at the node where the outgroup's clade attaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from . import bitsets
from .clade_values import ACCURACY, EXACT_LIMIT, ValueStats
from .splits import SplitIndex, branch_values, has_lengths, split_index, split_table
from .taxa import Taxa

TYPES = ("majority", "extended", "mcc", "map")
HEIGHTS = ("mean", "median", "keep")


@dataclass
class SummaryTree:
    """A (possibly multifurcating) tree with per-node annotations, ready to be written.

    Nodes ``0..n-1`` are the taxa; internal nodes follow, every child before its parent;
    the root is the last node.

    Attributes
    ----------
    taxa : Taxa
    rooted : bool
        Whether the root is meaningful (else it is where the tree is drawn from).
    parent : ndarray, int64, shape (M,)
        Parent of each node (-1 for the root).
    clades : ndarray, uint64, shape (M, W)
        Taxa below each node as drawn.
    lengths : ndarray, shape (M,)
        Printed length of the branch above each node (NaN: none).
    annotations : dict
        Attribute name -> ``(M,)`` array (NaN: absent) or ``(M, 2)`` array of intervals.
    attributes : dict
        Attributes of the whole tree (e.g. ``probability`` of a MAP tree).
    name : str
        Tree name for NEXUS output.
    """

    taxa: Taxa
    rooted: bool
    parent: np.ndarray
    clades: np.ndarray
    lengths: np.ndarray
    annotations: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    name: str = "summary"

    @property
    def n_nodes(self) -> int:
        return self.parent.shape[0]

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    def children(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.n_nodes)]
        for v in range(self.n_nodes - 1):
            out[self.parent[v]].append(v)
        return out

    def splits(self) -> set[bytes]:
        """The informative splits (rooted: clades) of the tree, as bitset bytes (unrooted:
        the side without taxon 0)."""
        n = self.n_taxa
        b = self.clades[n:-1]
        if not self.rooted:
            b = bitsets.normalise_splits(b, n)
        sizes = _sizes(b)
        keep = (sizes > 1) & (sizes < (n if self.rooted else n - 1))
        return {row.tobytes() for row in b[keep]}

    def to_newick(self, annotations: bool = True, names: Sequence[str] | None = None) -> str:
        """The tree as a Newick string, with ``[&...]`` annotations (see :mod:`.annotated`)."""
        from .annotated import newick_string

        return newick_string(self, annotations=annotations, names=names)


# ------------------------------------------------------------------------------------------
# building trees from sets of splits
# ------------------------------------------------------------------------------------------


def _sizes(bits: np.ndarray) -> np.ndarray:
    return bitsets.popcount(bits) if bits.shape[0] else np.zeros(0, np.int64)


def compatible(a: np.ndarray, b: np.ndarray, full: np.ndarray) -> bool:
    """Whether the splits with sides ``a`` and ``b`` (bitsets) are compatible."""
    ac = full ^ a
    bc = full ^ b
    return not (a & b).any() or not (a & bc).any() or not (ac & b).any() or not (ac & bc).any()


def greedy_splits(bits: np.ndarray, n_taxa: int, rooted: bool) -> list[int]:
    """Indices of the rows of ``bits`` kept by the greedy consensus: each row, in the order
    given, is kept when it is compatible with every row kept before it."""
    full = bitsets.full(n_taxa)
    kept: list[int] = []
    chosen = np.empty((0, bits.shape[1]), np.uint64)
    resolved = n_taxa - 2 if rooted else n_taxa - 3  # a binary tree takes no more
    for i in range(bits.shape[0]):
        if len(kept) == resolved:
            break
        a = bits[i]
        if chosen.shape[0]:
            if rooted:
                inter = (chosen & a).any(axis=1)
                sub = ((chosen & a) == a).all(axis=1)
                sup = ((chosen & a) == chosen).all(axis=1)
                ok = bool(np.all(~inter | sub | sup))
            else:
                ac = full ^ a
                cc = full ^ chosen
                ok = bool(
                    np.all(
                        ~(chosen & a).any(axis=1)
                        | ~(chosen & ac).any(axis=1)
                        | ~(cc & a).any(axis=1)
                        | ~(cc & ac).any(axis=1)
                    )
                )
            if not ok:
                continue
        kept.append(i)
        chosen = np.vstack([chosen, a[None, :]])
    return kept


def outgroup_bits(taxa: Taxa, outgroup: str | Sequence[str] | None) -> np.ndarray:
    """The bitset of the outgroup taxa (default: taxon 0); unknown names are an error."""
    n = len(taxa)
    if outgroup is None:
        return bitsets.from_indices([0], n)
    names = [x.strip() for x in outgroup.split(",")] if isinstance(outgroup, str) else outgroup
    names = [x for x in names if x]
    if not names:
        raise InputError("--outgroup names no taxon")
    idx = []
    for name in names:
        i = taxa.index(name)
        if i < 0:
            shown = ", ".join(taxa.names[:8]) + (" ..." if n > 8 else "")
            raise InputError(f"outgroup taxon {name!r} is not among the {n} taxa ({shown})")
        idx.append(i)
    if len(set(idx)) == n:
        raise InputError("the outgroup cannot hold every taxon")
    return bitsets.from_indices(idx, n)


def tree_from_splits(
    taxa: Taxa, bits: np.ndarray, rooted: bool, outgroup: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(parent, clades)`` of the tree with the given compatible informative splits.

    Unrooted splits (any side) are drawn rooted on ``outgroup`` (a bitset; default taxon
    0): each split becomes the side inside the outgroup, or else the side outside it.
    """
    n = len(taxa)
    full = bitsets.full(n)
    bits = np.asarray(bits, dtype=np.uint64).reshape(-1, full.shape[0])
    if rooted:
        clades = bits
    else:
        og = bitsets.from_indices([0], n) if outgroup is None else outgroup
        rows = []
        for a in bits:
            b = full ^ a
            if not (a & ~og).any():
                rows.append(a)
            elif not (b & ~og).any():
                rows.append(b)
            elif not (a & og).any():
                rows.append(a)
            elif not (b & og).any():
                rows.append(b)
            else:
                names = [taxa.names[i] for i in bitsets.to_indices(og)]
                raise InputError(
                    f"the outgroup ({', '.join(names)}) is not a clade of the summary tree"
                )
        clades = np.array(rows, np.uint64).reshape(-1, full.shape[0])
    leaves = np.array([bitsets.from_indices([i], n) for i in range(n)], np.uint64)
    sizes = _sizes(clades)
    keep = (sizes > 1) & (sizes < n)
    inner = clades[keep]
    if inner.shape[0]:
        _, first = np.unique(bitsets.as_keys(inner), return_index=True)
        inner = inner[np.sort(first)]
        inner = inner[np.argsort(bitsets.popcount(inner), kind="stable")]
    allc = np.concatenate([leaves, inner, full[None, :]])
    M = allc.shape[0]
    size = bitsets.popcount(allc)
    parent = np.full(M, -1, np.int64)
    for v in range(M - 1):
        c = allc[v]
        # the smallest larger clade containing c: clades are sorted by size after the leaves
        lo = max(v + 1, n)
        fits = (size[lo:] > size[v]) & ((allc[lo:] & c) == c).all(axis=1)
        hit = np.flatnonzero(fits)
        if hit.size:
            parent[v] = lo + hit[0]
    return parent, allc


# ------------------------------------------------------------------------------------------
# the summary trees
# ------------------------------------------------------------------------------------------


def _check_heights(sample, heights):
    if heights is not None and heights not in HEIGHTS:
        raise InputError(f"--heights must be one of {', '.join(HEIGHTS)}, not {heights!r}")
    if heights is not None and not sample.rooted:
        raise InputError(
            "--heights needs rooted trees (time trees, e.g. from BEAST; read with --rooted); "
            "these trees are unrooted"
        )


def summary_tree(
    sample,
    kind: str = "majority",
    *,
    model=None,
    outgroup: str | Sequence[str] | None = None,
    heights: str | None = None,
    exact_limit: int | None = EXACT_LIMIT,
    accuracy: float = ACCURACY,
    max_derivations: int = 2_000_000,
) -> SummaryTree:
    """The summary tree of type ``kind`` of a :class:`~phylo.trees.TreeSample`, annotated.

    Parameters
    ----------
    sample
        The tree sample (read with ``lengths=True`` for branch-length annotations).
    kind
        ``"majority"``, ``"extended"``, ``"mcc"`` or ``"map"`` (see the module docstring).
    model
        For ``"map"``: a fitted model (:func:`phylo.sbn.fit` or :func:`phylo.sbn.load_model`);
        default: SBN-EM-alpha fitted to ``sample``.
    outgroup
        Taxon name(s) (a list, or names separated by commas) to draw an unrooted tree from.
    heights
        Rooted trees: ``"mean"`` or ``"median"`` clade heights, or ``"keep"`` (MCC only: the
        heights of the first sampled tree of its topology).  Default: ``"keep"`` for MCC,
        ``"mean"`` otherwise.
    exact_limit, accuracy
        See :class:`~phylo.trees.clade_values.CladeValues`.
    max_derivations
        For ``"map"`` from an unrooted SBN, see :meth:`phylo.sbn.SBNModel.top`.
    """
    if kind not in TYPES:
        raise InputError(f"unknown summary tree type {kind!r}; one of {', '.join(TYPES)}")
    _check_heights(sample, heights)
    if sample.rooted and outgroup is not None:
        raise InputError("--outgroup draws unrooted trees; rooted trees keep their own root")
    if sample.rooted and heights is None:
        heights = "keep" if kind == "mcc" else "mean"
    if heights == "keep" and kind != "mcc":
        raise InputError("--heights keep keeps the heights of a sampled tree: only for --type mcc")
    lengths_known = has_lengths(sample)
    if kind == "mcc" and not lengths_known:
        what = (
            "weighted topologies without branch lengths (a .trprobs summary)"
            if sample.weighted
            else "trees without branch lengths"
        )
        raise InputError(
            "the MCC tree is a sampled tree with its branch lengths, but the input holds "
            f"{what}; give the sampled trees (e.g. MrBayes .t or BEAST .trees files)",
            sample.runs[0].path,
        )
    og = None if sample.rooted else outgroup_bits(sample.taxa, outgroup)
    index = split_index(sample)
    table = split_table(sample, include_trivial=True, index=index)
    attributes: dict = {}
    keep_tree = None
    if kind in ("majority", "extended"):
        n = sample.n_taxa
        sizes = bitsets.popcount(table.bits)
        inf = (sizes > 1) & (sizes < (n if sample.rooted else n - 1))
        rows = np.nonzero(inf & ((table.pooled >= 0.5) if kind == "majority" else True))[0]
        kept = greedy_splits(table.bits[rows], n, sample.rooted)
        bits = table.bits[rows[kept]]
    elif kind == "mcc":
        t, first = mcc_topology(sample, index, table)
        bits = _topology_bits(sample, t)
        keep_tree = first
        attributes["log_clade_credibility"] = float(_mcc_scores(sample, index, table)[t])
    else:
        bits, logp = map_topology(sample, model, max_derivations)
        attributes["probability"] = float(np.exp(logp))
        attributes["log_probability"] = float(logp)
    parent, clades = tree_from_splits(sample.taxa, bits, sample.rooted, og)
    tree = SummaryTree(sample.taxa, sample.rooted, parent, clades, np.full(parent.shape[0], np.nan))
    tree.name = {"majority": "con_50_majrule", "extended": "con_all_compat"}.get(kind, kind.upper())
    tree.attributes = attributes
    annotate(
        tree,
        sample,
        index=index,
        table=table,
        heights=heights,
        keep_tree=keep_tree,
        exact_limit=exact_limit,
        accuracy=accuracy,
        with_values=lengths_known,
    )
    return tree


def _topology_bits(sample, t: int) -> np.ndarray:
    n = sample.n_taxa
    c = bitsets.clades(sample.parents[t : t + 1], n)[0]
    return c[n:-1] if sample.rooted else bitsets.normalise_splits(c[n:-1], n)


def _mcc_scores(sample, index: SplitIndex, table) -> np.ndarray:
    pooled = np.zeros(len(index))
    pooled[table.ids] = table.pooled
    n = sample.n_taxa
    N = sample.parents.shape[1]
    T = index.node_ids.shape[0]
    score = np.empty(T)
    with np.errstate(divide="ignore"):
        logp = np.log(pooled)
    for a in range(0, T, 4096):  # in blocks: (T, N) floats at once can be gigabytes
        score[a : a + 4096] = logp[index.node_ids[a : a + 4096, n : N - 1]].sum(axis=1)
    return score


def mcc_topology(sample, index: SplitIndex | None = None, table=None) -> tuple[int, tuple]:
    """The maximum clade credibility topology: ``(topology index, (run, tree))`` where
    ``(run, tree)`` is its first sampled tree (position among the run's kept trees)."""
    if index is None:
        index = split_index(sample)
    if table is None:
        table = split_table(sample, include_trivial=True, index=index)
    score = _mcc_scores(sample, index, table)
    present = sample.counts.sum(axis=1) > 0
    score = np.where(present, score, -np.inf)
    best = np.flatnonzero(score == score.max())
    # first sampled: the earliest in run order, then in sampling order
    first_pos = {}
    for r, trace in enumerate(sample.traces):
        hits = np.isin(trace, best)
        for j in np.flatnonzero(hits):
            t = int(trace[j])
            if t not in first_pos:
                first_pos[t] = (r, int(j))
        if first_pos:
            break
    if not first_pos:  # weighted runs have traces of listed trees too; fall back to order
        t = int(best[0])
        return t, (0, 0)
    t = min(first_pos, key=lambda x: first_pos[x])
    return t, first_pos[t]


def map_topology(sample, model=None, max_derivations: int = 2_000_000):
    """Splits (clades) of the most probable topology of ``model`` (default: SBN-EM-alpha
    fitted to ``sample``) on the sample's taxa, and its log probability."""
    from ..sbn import fit

    if model is None:
        model = fit(sample, "em-alpha")
    if model.rooted != sample.rooted:
        raise InputError(
            f"the model is {'rooted' if model.rooted else 'unrooted'} but the trees are read "
            f"{'rooted' if sample.rooted else 'unrooted'}"
        )
    if not model.taxa.same_set(sample.taxa):
        raise InputError("the model and the trees have different taxa")
    best = model.top(1, max_derivations=max_derivations) if model.kind == "sbn" else model.top(1)
    if len(best) == 0:
        raise InputError("the model gives no topology a positive probability")
    from .tree import Tree

    tree = Tree(model.taxa, best.parents[0], None, model.rooted)
    if model.taxa.keys != sample.taxa.keys:
        tree = tree.reorder_taxa(sample.taxa)
    n = sample.n_taxa
    c = tree.clades()
    bits = c[n:-1] if sample.rooted else bitsets.normalise_splits(c[n:-1], n)
    return bits, float(best.log_prob[0])


# ------------------------------------------------------------------------------------------
# annotations
# ------------------------------------------------------------------------------------------


def _stats_columns(prefix: str, stats: ValueStats, ids: np.ndarray, out: dict) -> None:
    M = ids.shape[0]
    have = ids >= 0
    safe = np.where(have, ids, 0)

    def col(a):
        return np.where(have, a[safe], np.nan)

    mean = col(stats.mean)
    lo, hi = col(stats.min), col(stats.max)
    varies = have & (lo < hi)
    out[prefix] = mean
    out[prefix + "_median"] = np.where(varies, col(stats.median), np.nan)
    hpd = np.full((M, 2), np.nan)
    rng = np.full((M, 2), np.nan)
    hpd[varies, 0] = col(stats.hpd_lower)[varies]
    hpd[varies, 1] = col(stats.hpd_upper)[varies]
    rng[varies, 0] = lo[varies]
    rng[varies, 1] = hi[varies]
    out[prefix + "_95%_HPD"] = hpd
    out[prefix + "_range"] = rng


def annotate(
    tree: SummaryTree,
    sample,
    *,
    index: SplitIndex | None = None,
    table=None,
    heights: str | None = None,
    keep_tree: tuple | None = None,
    exact_limit: int | None = EXACT_LIMIT,
    accuracy: float = ACCURACY,
    with_values: bool = True,
) -> SummaryTree:
    """Annotate ``tree`` (in place) from ``sample``: clade support, branch lengths and, for
    rooted trees, node heights (see the module docstring); sets the printed lengths."""
    n = sample.n_taxa
    if index is None:
        index = split_index(sample)
    if table is None:
        table = split_table(sample, include_trivial=True, index=index)
    M = tree.n_nodes
    root = M - 1
    ids = index.lookup(tree.clades)
    if not tree.rooted:
        ids[root] = -1
    pooled = np.zeros(len(index))
    pooled[table.ids] = table.pooled
    posterior = np.where(ids >= 0, pooled[np.maximum(ids, 0)], 0.0)
    posterior[:n] = np.nan
    if not tree.rooted:
        posterior[root] = np.nan
    ann: dict = {}
    lengths = np.full(M, np.nan)
    if with_values:
        len_stats, h_stats = branch_values(sample, index, exact_limit, accuracy)
        branch_ids = ids.copy()
        branch_ids[root] = -1
        _stats_columns("length", len_stats, branch_ids, ann)
        if tree.rooted and h_stats is not None:
            _stats_columns("height", h_stats, ids, ann)
            if heights == "keep" and keep_tree is not None:
                node_h = _kept_heights(sample, tree, keep_tree)
            elif heights == "median":
                node_h = np.where(ids >= 0, h_stats.median[np.maximum(ids, 0)], np.nan)
                # a clade whose height never varies has its one value as median
                node_h = np.where(np.isnan(node_h), ann["height"], node_h)
            else:
                node_h = ann["height"].copy()
            lengths[:root] = node_h[tree.parent[:root]] - node_h[:root]
        else:
            lengths[:root] = ann["length"][:root]
    ann["posterior"] = posterior
    tree.annotations = ann
    tree.lengths = lengths
    return tree


def _kept_heights(sample, tree: SummaryTree, keep_tree: tuple) -> np.ndarray:
    """Node heights of the sampled tree ``keep_tree = (run, position)``, by clade."""
    from . import _kernels_values as KV

    r, j = keep_tree
    t = int(sample.traces[r][j])
    L = np.ascontiguousarray(sample.tree_lengths(r, j), dtype=np.float64)[None, :]
    h = np.empty(L.shape)
    KV.node_heights(sample.parents, np.array([t], np.int64), L, h)
    mine = bitsets.as_keys(bitsets.clades(sample.parents[t : t + 1], sample.n_taxa)[0])
    order = np.argsort(mine)
    pos = np.searchsorted(mine[order], bitsets.as_keys(tree.clades))
    return h[0][order[pos]]
