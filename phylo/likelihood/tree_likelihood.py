"""TreeLikelihood: the log-likelihood of one topology and its gradient over branch lengths.

For an alignment compressed into site patterns :math:`p` with counts :math:`w_p`, a
topology with branch lengths :math:`t`, and a model with rate categories :math:`k`
(probability :math:`\\omega_k`, rate :math:`\\rho_k`) and invariant sites
(:math:`p_{inv}`),

.. math:: \\log L(t) = \\sum_p w_p \\log\\Big[(1 - p_{inv}) \\sum_k \\omega_k
          \\sum_s \\pi_s L^{(k)}_{\\text{root}}(s)\\;+\\; p_{inv}\\, I_p\\Big],

where :math:`L^{(k)}_{\\text{root}}` is computed by Felsenstein's (1981) pruning with
transition matrices :math:`P(\\rho_k t_e)`, and :math:`I_p = \\sum_s \\pi_s [\\text{all tips
allow } s]`.  The gradient :math:`\\partial \\log L / \\partial t_e` for every branch comes
from one post-order and one pre-order traversal (Ji et al. 2020), at about 2-3 times the
cost of the likelihood.

Branch order
------------
Branch ``i`` is the edge above node ``i`` of the tree, ``i = 0 .. n_nodes - 2``, in the
tree's canonical numbering (leaves ``0..n-1`` in taxon order, internal nodes in
post-order, the root last).  For an unrooted tree that is :math:`2n - 3` branches; for a
rooted tree :math:`2n - 2` (the two root branches enter the likelihood only through their
sum).  Branch ``i`` separates the taxa of ``tree.splits()[i]`` from the others, so vectors
of branch lengths map to splits and back.

References
----------
Felsenstein J. 1981. Evolutionary trees from DNA sequences: a maximum likelihood approach.
J Mol Evol 17:368-376.
Ji X, Zhang Z, Holbrook A, Nishimura A, Baele G, Rambaut A, Lemey P, Suchard MA. 2020.
Gradients do grow on trees: a linear-time O(N)-dimensional gradient for statistical
phylogenetics. Mol Biol Evol 37:3047-3060.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import _kernels as K
from ._buffers import buffer_rows, new_buffer
from ._families import family
from .alignment import Alignment
from .models import Model

__all__ = ["TreeLikelihood", "topology_arrays"]


def model_vector(model) -> np.ndarray:
    """The vector the kernels read for ``model`` (a :class:`~phylo.likelihood.Model` with
    its frequencies resolved; layout in :func:`~phylo.likelihood._kernels.pack_model`)."""
    lam, v, vinv = model.eigen()
    return K.pack_model(
        lam,
        v,
        vinv,
        model.rate_matrix(),
        model.frequencies,
        model.pinv,
        model.category_rates(),
        model.category_weights(),
    )


def topology_arrays(parent, n_taxa: int, root: int | None = None) -> np.ndarray:
    """The traversal table read by the kernels, for the tree rooted at ``root``.

    Parameters
    ----------
    parent
        Parent index of every node (-1 for the root); edge ``i`` joins node ``i`` and
        ``parent[i]``.
    n_taxa
        Nodes ``0..n_taxa-1`` are the leaves.
    root
        The internal node to root the traversal at (default: the tree's own root).
        Rooting a reversible model's likelihood at any internal node gives the same value.

    Returns
    -------
    int64 array (n_internal, 8)
        One row per internal node in post-order (the root last): node, number of children
        (1-3), children (-1 padded), edges to them (-1 padded).
    """
    parent = np.asarray(parent, dtype=np.int64)
    n = parent.shape[0]
    roots = np.flatnonzero(parent < 0)
    if roots.size != 1:
        raise InputError(f"a tree needs exactly one root, this one has {roots.size}")
    if root is None:
        root = int(roots[0])
    if not n_taxa <= root < n:
        raise InputError(
            f"the likelihood can be rooted at an internal node "
            f"({n_taxa}..{n - 1}), not at node {root}"
        )
    adj = [[] for _ in range(n)]
    for v in range(n):
        a = int(parent[v])
        if a >= 0:
            if not 0 <= a < n:
                raise InputError(f"node {v} has an invalid parent {a}")
            adj[v].append((a, v))
            adj[a].append((v, v))
    rows = []
    seen = np.zeros(n, dtype=bool)
    stack = [(root, -1, False)]
    while stack:
        v, up, done = stack.pop()
        if done:
            kids = [(w, e) for (w, e) in adj[v] if w != up]
            if v < n_taxa:
                if kids:
                    raise InputError(f"leaf {v} has children")
                continue
            if not 1 <= len(kids) <= 3:
                raise InputError(
                    f"internal node {v} has {len(kids)} children; the likelihood "
                    "handles 1 to 3 (resolve polytomies first)"
                )
            row = [v, len(kids), -1, -1, -1, -1, -1, -1]
            for j, (w, e) in enumerate(kids):
                row[2 + j] = w
                row[5 + j] = e
            rows.append(row)
            continue
        if seen[v]:
            raise InputError("the parent array does not describe a tree (cycle)")
        seen[v] = True
        stack.append((v, up, True))
        for w, _ in adj[v]:
            if w != up:
                stack.append((w, v, False))
    if not seen.all():
        raise InputError("the parent array does not describe a connected tree")
    return np.ascontiguousarray(np.array(rows, dtype=np.int64))


def _last_level_cache_bytes(default: int = 1 << 25) -> int:
    """Size of the largest CPU cache (Linux sysfs), or ``default`` where it is not known."""
    best = 0
    for size in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = size.read_text().strip().upper()
            best = max(
                best, int(text.rstrip("KMG")) << {"K": 10, "M": 20, "G": 30}.get(text[-1:], 0)
            )
        except (OSError, ValueError):
            continue
    return best or default


#: Bytes of buffers a pattern block of the gradient should fill (cache blocking): half the
#: last-level cache, at least 16 MiB.  Each block costs a fixed overhead per node and
#: category (matrices, run-time overlap checks and short runs of the vectorised loops),
#: which outweighs what a block sized for a smaller cache saves: a 500-taxon GTR+G4
#: gradient (2852 patterns) took 66 ms in 12 blocks of 16 MiB and 47 ms in one block
#: of 320 MB, held by a 480 MB last-level cache.
CACHE_BYTES = max(1 << 24, _last_level_cache_bytes() // 2)
#: The same for the likelihood alone (without site repeats).
CACHE_BYTES_LIKELIHOOD = max(1 << 23, CACHE_BYTES)
#: A node is computed once per class of alike patterns (site repeats) when it has at most
#: this share of the patterns as classes: reading children through classes is a gather,
#: about 2.5 times the cost per column of the vectorised loop over all patterns, and a
#: node computed per pattern pays for expanding a compressed child (tuned on DS1).
SITE_REPEAT_RATIO = 0.5
#: Site repeats are used only while their column maps take at most this many bytes (and
#: set up only while one int32 per internal node and pattern would).
SITE_REPEAT_MAX_BYTES = 1 << 25
#: Fewest patterns per block: shorter loops cost more than the cache saves.
MIN_BLOCK = 256
#: One evaluation is split between threads only from this many partial-likelihood updates
#: (internal nodes x patterns x categories) and this many patterns per thread: below, waking
#: a second thread costs more than it saves.
SPLIT_MIN_UPDATES = 60_000
SPLIT_MIN_PATTERNS = 256
#: With site repeats the likelihood is split between threads only from this modelled cost
#: (:func:`site_repeat_cost` times the categories, ns): each part finds fewer repeats, and
#: waking a thread costs some 50 us (on 2 cores: 64 taxa x 1000 patterns, GTR+G4, 0.98x;
#: 200 taxa JC69 1.05x; 200 taxa GTR+G4 1.28x; 500 taxa 1.35-1.57x).
SPLIT_MIN_SITE_REPEAT_NS = 500_000


def partial_slots(topo: np.ndarray, n_taxa: int) -> tuple[np.ndarray, int]:
    """Share storage between internal nodes whose partials are never needed at once.

    For the likelihood alone a node's partial is needed from when it is computed until its
    parent is; walking the post-order table ``topo`` and reusing freed slots (a parent
    takes a slot before its children's are freed, so it never overwrites what it reads)
    keeps the partials of one evaluation in a few slots, which stay in cache.

    Returns ``(slot, n_slots)``: ``slot[v - n_taxa]`` for every internal node ``v``.
    """
    n_int = topo.shape[0]
    slot = np.full(n_int, -1, dtype=np.int64)
    free: list[int] = []
    n_slots = 0
    for row in topo:
        v, nk = int(row[0]), int(row[1])
        if free:
            s = free.pop()
        else:
            s = n_slots
            n_slots += 1
        slot[v - n_taxa] = s
        for c in row[2 : 2 + nk]:
            if c >= n_taxa:
                free.append(int(slot[c - n_taxa]))
    return slot, n_slots


class SubtreeClasses:
    """Classes of alike site patterns below each directed subtree of one tree, memoised.

    Two site patterns are alike below a node when every leaf below it has the same state
    set in both (Kobert, Stamatakis and Flouri 2017, "site repeats"): the node's partials
    are then equal too.  The classes of the subtree at ``v`` seen from its neighbour ``up``
    follow from the pairs of its children's classes; they do not depend on where the rest
    of the tree is rooted, so one object serves every rooting.
    """

    def __init__(self, codes: np.ndarray):
        self.codes = np.asarray(codes, dtype=np.int64)  # (n_taxa, P) 4-bit state sets
        self.n_taxa, self.P = self.codes.shape
        self._memo: dict = {}

    def get(self, v: int, up: int, kids) -> tuple[np.ndarray, np.ndarray, int]:
        """``(inv, first, U)``: the class of every pattern, a pattern of every class, and
        the number of classes of the subtree at ``v`` away from ``up`` (children ``kids``,
        whose own classes are memoised already: call in post-order)."""
        if v < self.n_taxa:
            raise ValueError("leaves have no memoised classes")
        key = (v, up)
        hit = self._memo.get(key)
        if hit is None:
            code = np.zeros(self.P, dtype=np.int64)
            for c in kids:
                inv_c, n_c = self.leaf_or_memo(c, v)
                code = code * n_c + inv_c
            _, first, inv = np.unique(code, return_index=True, return_inverse=True)
            hit = (inv.reshape(-1).astype(np.int64), first, int(first.shape[0]))
            self._memo[key] = hit
        return hit

    def leaf_or_memo(self, c: int, up: int) -> tuple[np.ndarray, int]:
        """Class ids of child ``c`` (seen from ``up``) and an upper bound on them."""
        if c < self.n_taxa:
            return self.codes[c], 16
        inv, _, U = self._memo[(c, up)]
        return inv, U


def _walk_classes(topo: np.ndarray, classes: SubtreeClasses) -> list:
    """(row index, node, children, (inv, first, U)) for every row of ``topo`` but the root."""
    up = {}
    for row in topo:
        for c in row[2 : 2 + row[1]]:
            up[int(c)] = int(row[0])
    out = []
    for idx, row in enumerate(topo[:-1]):
        v, nk = int(row[0]), int(row[1])
        kids = [int(c) for c in row[2 : 2 + nk]]
        out.append((idx, v, kids, classes.get(v, up[v], kids)))
    return out


def site_repeat_cost(
    topo: np.ndarray, classes: SubtreeClasses, ratio: float | None = None
) -> float:
    """Modelled time (ns) of one likelihood with site repeats, rooted as ``topo`` is:
    a compressed node costs 3.6 ns per class, any other node 1.5 ns per pattern, and
    expanding a compressed child for it 1.0 ns per pattern (measured on DS1)."""
    ratio = SITE_REPEAT_RATIO if ratio is None else ratio
    P = classes.P
    n_taxa = classes.n_taxa
    small = set()
    cost = 0.0
    for _, v, kids, (_, _, U) in _walk_classes(topo, classes):
        if len(kids) == 2 and U <= ratio * P:
            small.add(v)
            cost += 3.6 * U
            continue
        cost += 1.5 * P
        cost += sum(1.0 * P for c in kids if c >= n_taxa and c in small)
    root = topo[-1]
    cost += sum(1.0 * P for c in root[2 : 2 + root[1]] if c in small)
    return cost


def site_repeat_plan(
    topo: np.ndarray, classes: SubtreeClasses, ratio: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Which internal nodes of the rooting ``topo`` to compute once per class of alike
    patterns (see :class:`SubtreeClasses`).

    A binary node other than the root whose classes number at most ``ratio`` times the
    patterns is *compressed*: the kernels compute it once per class, reading its children
    at a pattern of the class; the other nodes are computed per pattern as usual (reading
    a compressed child through its classes costs a gather per pattern, which is why only
    nodes with few classes gain: in practice those near the leaves).

    Returns ``(table, maps)`` as :func:`phylo.likelihood._kernels._traverse` reads them,
    both empty when nothing is compressed.  ``maps`` (int32) holds the column maps end to
    end, each only as long as it needs to be; ``table`` (n_internal, 5) int64 has a row
    per node ``v`` (``table[v - n_taxa]``): its classes U (0: not compressed), the
    offsets in ``maps`` of the columns it reads of children 0, 1, 2 (a compressed node:
    U entries, class u -> the column of the child standing for it; a node computed per
    pattern: P entries, pattern p -> its compressed child's class), and of its own class
    of each pattern (compressed nodes: P entries).
    """
    ratio = SITE_REPEAT_RATIO if ratio is None else ratio
    P, n_taxa = classes.P, classes.n_taxa
    n_int = topo.shape[0]
    table = np.zeros((n_int, 5), dtype=np.int64)
    walk = _walk_classes(topo, classes)
    small = {}
    for _, v, kids, (inv, _, U) in walk:
        if len(kids) == 2 and U <= ratio * P:
            table[v - n_taxa, 0] = U
            small[v] = inv
    if not small:
        return np.zeros((0, 5), dtype=np.int64), np.zeros(0, dtype=np.int32)
    pieces = []
    end = 0

    def put(column, v, values):
        nonlocal end
        table[v - n_taxa, column] = end
        pieces.append(np.asarray(values, dtype=np.int32))
        end += pieces[-1].shape[0]

    root = topo[-1]
    rows = walk + [
        (n_int - 1, int(root[0]), [int(c) for c in root[2 : 2 + root[1]]], (None, None, P))
    ]
    for _, v, kids, (inv, first, _) in rows:
        for j, c in enumerate(kids):
            if v in small:  # class u reads the child at a pattern of the class
                put(1 + j, v, small[c][first] if c in small else first)
            elif c in small:  # pattern p reads the compressed child's class
                put(1 + j, v, small[c])
        if v in small:
            put(4, v, inv)
    return table, np.concatenate(pieces)


def site_repeat_root(
    parent,
    n_taxa: int,
    classes: SubtreeClasses,
    max_candidates: int = 64,
    topo: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """The internal node to root the traversal at for the cheapest likelihood with site
    repeats (:func:`site_repeat_cost`), and its traversal table.  Where the traversal is
    rooted changes which nodes have few classes: on DS1 the best of the 25 internal nodes
    is 1.35 times faster than the tree's own root.  Trees with more internal nodes than
    ``max_candidates`` try that many, spread over the node numbers.  ``topo``: the
    traversal table of the tree's own root, when already at hand."""
    parent = np.asarray(parent, dtype=np.int64)
    N = parent.shape[0]
    default = int(np.flatnonzero(parent < 0)[0])
    cands = np.arange(n_taxa, N)
    if cands.shape[0] > max_candidates:
        cands = np.unique(np.linspace(n_taxa, N - 1, max_candidates).astype(np.int64))
    best = None
    for r in [default] + [int(c) for c in cands if c != default]:
        rt = topo if (r == default and topo is not None) else topology_arrays(parent, n_taxa, r)
        cost = site_repeat_cost(rt, classes)
        if best is None or cost < best[0] - 1e-9:
            best = (cost, r, rt)
    return best[1], best[2]


def pre_order_slots(topo: np.ndarray, n_taxa: int) -> tuple[np.ndarray, int]:
    """Slots of the pre-order partials, shared like :func:`partial_slots`'s.

    The pre-order pass visits ``topo`` from the root down; a node's pre-order partial is
    written when its parent is visited and read when it is visited itself, so the
    children take slots before their parent's is freed.
    """
    n_int = topo.shape[0]
    slot = np.full(n_int, -1, dtype=np.int64)
    root = int(topo[-1, 0])
    slot[root - n_taxa] = 0
    free: list[int] = []
    n_slots = 1
    for row in topo[::-1]:
        v, nk = int(row[0]), int(row[1])
        for c in row[2 : 2 + nk]:
            if c >= n_taxa:
                if free:
                    slot[c - n_taxa] = free.pop()
                else:
                    slot[c - n_taxa] = n_slots
                    n_slots += 1
        free.append(int(slot[v - n_taxa]))
    return slot, n_slots


def _pattern_blocks(
    P: int, bytes_per_pattern: int, min_blocks: int = 1, cache_bytes: int | None = None
) -> np.ndarray:
    """Block boundaries over P patterns so that one block's buffers fit in cache."""
    cache_bytes = CACHE_BYTES if cache_bytes is None else cache_bytes
    size = max(MIN_BLOCK, (cache_bytes // max(1, bytes_per_pattern)) // 16 * 16)
    nb = max(min_blocks, -(-P // size))
    b = [0]
    for i in range(1, nb):
        b.append(min(P, ((P * i) // nb + 7) // 8 * 8))
    b.append(P)
    return np.array(sorted(set(b)), dtype=np.int64)


_POOLS: dict = {}
_POOLS_LOCK = threading.Lock()


def _pool(n: int) -> ThreadPoolExecutor:
    """A shared pool of n worker threads (the kernels release the GIL)."""
    with _POOLS_LOCK:
        if n not in _POOLS:
            _POOLS[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="phylo-lik")
        return _POOLS[n]


def _split_blocks(bounds: np.ndarray, parts: int) -> list:
    """Split block boundaries into ``parts`` contiguous groups of about equal patterns."""
    nb = bounds.shape[0] - 1
    cuts = [0]
    for i in range(1, parts):
        target = bounds[-1] * i / parts
        cuts.append(int(np.argmin(np.abs(bounds - target))))
    cuts.append(nb)
    cuts = sorted(set(cuts))
    return [np.ascontiguousarray(bounds[a : b + 1]) for a, b in zip(cuts[:-1], cuts[1:])]


class TreeLikelihood:
    """Log-likelihood of an alignment on one tree topology, as a function of branch lengths.

    Parameters
    ----------
    alignment : Alignment
        The data; its taxa must be exactly the tree's (matched by name).
    tree
        A :class:`phylo.trees.Tree` (anything with ``taxa``, ``parent`` and, optionally,
        ``branch_lengths``).  Its topology is fixed; branch lengths are the argument of
        every method.
    model : Model
        Substitution model, rate categories and invariant sites (see
        :mod:`phylo.likelihood.models`); ``"empirical"`` frequencies are taken from the
        alignment.
    root : int, optional
        Internal node at which the pruning is rooted (default: the tree's root).  The value
        does not depend on it for these reversible models.
    threads : int
        Threads for one evaluation (patterns are split in blocks); 1 by default, since
        callers often parallelise over chains.  A problem too small for a second thread to
        pay (fewer than :data:`SPLIT_MIN_UPDATES` partial updates per extra thread, or
        :data:`SPLIT_MIN_PATTERNS` patterns per thread) runs in the calling thread
        whatever ``threads`` says.  Batches use ``batch_threads``.
    batch_threads : int, optional
        Threads for :meth:`log_likelihood_batch` and :meth:`gradient_batch` (default: the
        number of CPUs).  The compiled kernels release the GIL, so ordinary threads run
        them in parallel.
    site_repeats : bool
        For the likelihood alone (not the gradient), compute nodes whose subtree shows few
        distinct site patterns once per distinct pattern (see :func:`site_repeat_plan`),
        and, unless ``root`` is given, root the pruning where that saves most; on by
        default while the column maps take at most :data:`SITE_REPEAT_MAX_BYTES`.  One
        likelihood then runs as one block of patterns, or, split between threads, one
        block per thread with the classes of its own patterns.  Values agree with
        ``site_repeats=False`` to rounding.

    Notes
    -----
    Buffers (partials, transition matrices) are allocated once here; a call allocates
    only its small result.  One object is not safe to call from several threads at
    once; make one per thread (they share nothing but the read-only data).  With
    ``threads > 1`` one evaluation splits its patterns among pool threads, each with
    buffers of its own (allocated on the first split evaluation), which pays for large
    problems only (thousands of patterns times categories); for many evaluations prefer
    :meth:`log_likelihood_batch` or one object per worker.  The branch order is
    documented in the module docstring: branch ``i`` is the edge above node ``i``.  The
    log-likelihood is the plain one; a power posterior's :math:`\\beta` is applied by
    the caller.

    Examples
    --------
    >>> lik = TreeLikelihood(alignment, tree, JC69())          # doctest: +SKIP
    >>> lik.log_likelihood(tree.branch_lengths[:-1])            # doctest: +SKIP
    >>> logl, grad = lik.gradient(t)                            # doctest: +SKIP
    """

    def __init__(
        self,
        alignment: Alignment,
        tree,
        model: Model,
        *,
        root: int | None = None,
        threads: int = 1,
        batch_threads: int | None = None,
        site_repeats: bool = True,
    ):
        taxa = tuple(tree.taxa)
        self.alignment = alignment.take_taxa(tree.taxa)  # matched by name, as trees match
        self.tree = tree
        self.model = model.resolve(self.alignment)
        self.taxa = taxa
        self.n_taxa = len(taxa)
        parent = np.asarray(tree.parent, dtype=np.int64)
        self.n_nodes = int(parent.shape[0])
        self.n_branches = self.n_nodes - 1
        if self.n_nodes - 1 != int(np.argmax(parent < 0)) or parent[-1] >= 0:
            raise InputError("the tree's root must be its last node")
        pats = self.alignment.patterns()
        self.patterns = pats
        self._tips = np.ascontiguousarray(pats.tip_partials())  # (n_taxa, 4, P)
        self._topo = topology_arrays(parent, self.n_taxa, root)
        self._tips2 = self._tips.reshape(-1, self._tips.shape[2])  # rows 4c..4c+3
        self._weights = np.ascontiguousarray(pats.weights)
        m = self.model
        # the states every tip allows, per pattern: I_p = sum_s pi_s invariant[s, p]
        self._invariant = np.ascontiguousarray(np.prod(self._tips, axis=0))
        self.n_categories = m.n_categories
        self._mv, self._inv = self.model_vector(m)
        family(self._mv)  # load the model family's kernels (compiled on first use)
        P = self._tips.shape[2]
        self.n_patterns = P
        n_int = self.n_nodes - self.n_taxa
        kc = self.n_categories
        E = self.n_branches
        self._Pm = np.zeros((E, kc, 4, 4))
        self._gslot = np.arange(n_int, dtype=np.int64)
        self._gbuf = None  # every edge partial and the pre-order partials,
        #                             allocated on the first gradient
        self._site = np.zeros(P)
        self._grad = np.zeros(E)
        self._no1 = np.zeros(0)
        self._no_ncols, self._no_cmap = np.zeros((0, 5), dtype=np.int64), np.zeros(0, np.int32)
        self._parts = {}  # evaluations split between threads (_split_parts)
        self.threads = max(1, int(threads))
        # split one evaluation between threads only when the problem is large enough
        n_split = self.threads
        if (
            n_int * P * kc < SPLIT_MIN_UPDATES * (self.threads - 1)
            or P < SPLIT_MIN_PATTERNS * self.threads
        ):
            n_split = 1
        self._n_split = n_split
        # site repeats, for the likelihood alone, unless their column maps are too large.
        # The likelihood then runs as one block of patterns (one block measured no slower
        # than cache-sized ones on 200-1000 taxa), or, split between threads, as one block
        # per thread, each part with the classes of its own patterns (_split_parts).
        # Unless told where to root, the traversal is rooted where they save most.
        self._ncols, self._cmap = self._no_ncols, self._no_cmap
        self._part_plans = None
        if site_repeats and 4 * n_int * P <= SITE_REPEAT_MAX_BYTES:
            classes = SubtreeClasses(pats.codes)
            if root is None:
                _, self._topo = site_repeat_root(parent, self.n_taxa, classes, topo=self._topo)
            split_sr = n_split
            if site_repeat_cost(self._topo, classes) * kc < SPLIT_MIN_SITE_REPEAT_NS:
                split_sr = 1
            self._layout(n_split, split_sr, whole=split_sr == 1)
            self._ncols, self._cmap = site_repeat_plan(self._topo, classes)
            if split_sr > 1:
                self._part_plans = [
                    site_repeat_plan(
                        self._topo, SubtreeClasses(pats.codes[:, int(b[0]) : int(b[-1])])
                    )
                    for b in self._thread_lbounds
                ]
            if (
                self._cmap.nbytes + sum(m.nbytes for _, m in self._part_plans or [])
                > SITE_REPEAT_MAX_BYTES
            ):
                self._ncols, self._cmap = self._no_ncols, self._no_cmap
        if not self._ncols.size:
            self._part_plans = None
            self._layout(n_split, n_split)
        self._grads_threads = np.zeros((len(self._thread_bounds), E))
        self.batch_threads = max(1, int(batch_threads or os.cpu_count() or 1))
        self._batch_buf = None
        default = getattr(tree, "branch_lengths", None)
        self.default_branch_lengths = (
            None if default is None else np.array(default[:E], dtype=np.float64)
        )

    def __getstate__(self):
        # the thread parts view this object's per-pattern results, which a copy would not
        # share, and are rebuilt on demand; so are the gradient and batch buffers
        state = self.__dict__.copy()
        state.update(_parts={}, _gbuf=None, _batch_buf=None)
        return state

    # ------------------------------------------------------------------ helpers
    def _layout(self, n_split: int, n_split_likelihood: int, whole: bool = False):
        """Slots, buffers and pattern blocks for the traversal table ``self._topo``, one
        evaluation's patterns split between ``n_split`` threads for the gradient and
        ``n_split_likelihood`` for the likelihood (``whole``: the likelihood in one block)."""
        kc, P, n_int = self.n_categories, self.n_patterns, self.n_nodes - self.n_taxa
        # the likelihood alone keeps partials in shared slots; the gradient needs them all
        self._lslot, self.n_slots = partial_slots(self._topo, self.n_taxa)
        self._pslot, self.n_pre_slots = pre_order_slots(self._topo, self.n_taxa)
        self._lbuf = new_buffer(buffer_rows(self.n_slots, 0, kc), P, kc)
        per_pattern = 8 * 4 * (kc * (n_int + self.n_pre_slots) + self.n_taxa)
        self._bounds = _pattern_blocks(P, per_pattern, n_split)
        self._thread_bounds = _split_blocks(self._bounds, n_split)
        self._lbounds = (
            np.array([0, P], dtype=np.int64)
            if whole
            else _pattern_blocks(
                P,
                8 * 4 * (kc * self.n_slots + self.n_taxa),
                n_split_likelihood,
                CACHE_BYTES_LIKELIHOOD,
            )
        )
        self._thread_lbounds = _split_blocks(self._lbounds, n_split_likelihood)

    def _check(self, branch_lengths) -> np.ndarray:
        if branch_lengths is None:
            if self.default_branch_lengths is None:
                raise InputError("the tree has no branch lengths; give them explicitly")
            branch_lengths = self.default_branch_lengths
        t = branch_lengths
        if not (type(t) is np.ndarray and t.dtype == np.float64 and t.flags.c_contiguous):
            t = np.ascontiguousarray(t, dtype=np.float64)
        if t.shape != (self.n_branches,):
            raise InputError(
                f"expected {self.n_branches} branch lengths (the edge above each "
                f"non-root node), got shape {t.shape}"
            )
        if not t.min() >= 0.0 or t.max() == np.inf:  # also catches NaN
            bad = int(np.flatnonzero(~(t >= 0.0) | ~np.isfinite(t))[0])
            raise InputError(
                f"branch lengths must be finite and non-negative: branch {bad} has {t[bad]!r}"
            )
        return t

    def _check_matrix(self, matrix) -> np.ndarray:
        T = np.ascontiguousarray(matrix, dtype=np.float64)
        if T.ndim != 2 or T.shape[1] != self.n_branches:
            raise InputError(
                f"expected a (B, {self.n_branches}) matrix of branch lengths, got shape {T.shape}"
            )
        if T.size and (not T.min() >= 0.0 or not np.isfinite(T).all()):
            raise InputError("branch lengths must be finite and non-negative")
        return T

    def _grad_buffers(self):
        if self._gbuf is None:
            n_int = self.n_nodes - self.n_taxa
            kc = self.n_categories
            self._gbuf = new_buffer(buffer_rows(n_int, self.n_pre_slots, kc), self.n_patterns, kc)

    @property
    def _kernels(self):
        """The kernels of the model's family (a module: looked up, not stored, so that the
        object pickles)."""
        return family(self._mv)

    def _run(self, t, want_grad: bool):
        """One evaluation, its patterns split between threads when that pays."""
        if want_grad:
            slot, groups = self._gslot, self._thread_bounds
        else:
            slot, groups = self._lslot, self._thread_lbounds
        if len(groups) == 1:
            if want_grad:
                self._grad_buffers()
            buf = self._gbuf if want_grad else self._lbuf
            grad = self._grad if want_grad else self._no1
            ll = self._kernels.evaluate(
                self._tips2,
                self._weights,
                self._inv,
                self._mv,
                self._topo,
                slot,
                self._pslot,
                self._ncols,
                self._cmap,
                t,
                self._Pm,
                buf,
                self._site,
                grad,
                groups[0],
                True,
                want_grad,
            )
            return ll, (self._grad.copy() if want_grad else None)
        self._kernels.transition_matrices(self._mv, t, self._Pm)
        parts = self._split_parts(want_grad)
        g = self._grads_threads if want_grad else [self._no1] * len(parts)
        kernels = self._kernels

        def run(i):
            tips, weights, inv, site, part_buf, bounds, ncols, cmap = parts[i]
            return kernels.evaluate(
                tips,
                weights,
                inv,
                self._mv,
                self._topo,
                slot,
                self._pslot,
                ncols,
                cmap,
                t,
                self._Pm,
                part_buf,
                site,
                g[i],
                bounds,
                False,
                want_grad,
            )

        # the first part runs in this thread, the others in the pool
        jobs = [_pool(self.threads).submit(run, i) for i in range(1, len(parts))]
        ll = run(0)
        ll = float(ll + sum(j.result() for j in jobs))
        return ll, (self._grads_threads.sum(axis=0) if want_grad else None)

    def _split_parts(self, want_grad: bool) -> list:
        """The parts of an evaluation split between threads: each thread's patterns in
        arrays and a buffer of its own (``tips, weights, inv, site_ll, buf, bounds, ncols,
        cmap``, the pattern numbers relative to the part; ``site_ll`` views this object's).
        Threads writing to different columns of one buffer ran each other about a quarter
        slower (the 64-taxon GTR+G4 gradient); with parts of their own they do not meet at
        all.  With site repeats, a likelihood part is one block with the classes of its
        own patterns."""
        key = "gradient" if want_grad else "likelihood"
        parts = self._parts.get(key)
        if parts is None:
            kc, n_int = self.n_categories, self.n_nodes - self.n_taxa
            rows = (
                buffer_rows(n_int, self.n_pre_slots, kc)
                if want_grad
                else buffer_rows(self.n_slots, 0, kc)
            )
            parts = []
            groups = self._thread_bounds if want_grad else self._thread_lbounds
            for i, b in enumerate(groups):
                p0, p1 = int(b[0]), int(b[-1])
                bounds = b - p0
                ncols, cmap = self._no_ncols, self._no_cmap
                if self._part_plans is not None and not want_grad:
                    ncols, cmap = self._part_plans[i]
                    bounds = np.array([0, p1 - p0], dtype=np.int64)
                parts.append(
                    (
                        np.ascontiguousarray(self._tips2[:, p0:p1]),
                        self._weights[p0:p1],
                        self._inv[p0:p1],
                        self._site[p0:p1],
                        new_buffer(rows, p1 - p0, kc),
                        bounds,
                        ncols,
                        cmap,
                    )
                )
            self._parts[key] = parts
        return parts

    # ------------------------------------------------------------------ API
    def log_likelihood(self, branch_lengths=None) -> float:
        """:math:`\\log L(t)` for branch lengths ``t`` (shape ``(n_branches,)``, branch ``i``
        is the edge above node ``i``; default: the tree's own lengths)."""
        return self._run(self._check(branch_lengths), False)[0]

    __call__ = log_likelihood

    def gradient(self, branch_lengths=None):
        """Log-likelihood and its gradient in one pass.

        Returns
        -------
        log_likelihood : float
        gradient : float64 array (n_branches,)
            :math:`\\partial \\log L / \\partial t_i` in the branch order of the class.
        """
        return self._run(self._check(branch_lengths), True)

    def pattern_log_likelihoods(self, branch_lengths=None) -> np.ndarray:
        """:math:`\\log L_p` of every site pattern (weights: :attr:`pattern_weights`)."""
        self.log_likelihood(branch_lengths)
        return self._site.copy()

    def site_log_likelihoods(self, branch_lengths=None) -> np.ndarray:
        """:math:`\\log L` of every alignment column, in alignment order (for CPO, PPD, ...)."""
        return self.pattern_log_likelihoods(branch_lengths)[self.patterns.site_pattern]

    @property
    def pattern_weights(self) -> np.ndarray:
        """How many sites each pattern stands for."""
        return self._weights.copy()

    def _batch_buffers(self, gradient: bool):
        """One set of buffers per batch thread (gradient buffers when asked)."""
        nt, kc, P = self.batch_threads, self.n_categories, self.n_patterns
        E, n_int = self.n_branches, self.n_nodes - self.n_taxa
        if self._batch_buf is None:
            self._batch_buf = [
                dict(
                    Pm=np.zeros((E, kc, 4, 4)),
                    site=np.zeros(P),
                    lbuf=new_buffer(buffer_rows(self.n_slots, 0, kc), P, kc),
                )
                for _ in range(nt)
            ]
        if gradient and "gbuf" not in self._batch_buf[0]:
            for buf in self._batch_buf:
                buf.update(gbuf=new_buffer(buffer_rows(n_int, self.n_pre_slots, kc), P, kc))
        return self._batch_buf

    def _batch_run(self, T, out, grads):
        bufs = self._batch_buffers(grads is not None)
        B = T.shape[0]
        nt = min(self.batch_threads, max(1, B))
        # whole problems per thread: one block group each (with site repeats, one block)
        lb = np.array([0, self.n_patterns], dtype=np.int64) if self._ncols.size else self._lbounds
        gb = self._bounds

        rows = self._kernels.evaluate_rows
        no_grads = np.zeros((0, 0))

        def work(i):
            buf = bufs[i]
            lo, hi = (B * i) // nt, (B * (i + 1)) // nt
            if grads is None:
                rows(
                    self._tips2,
                    self._weights,
                    self._inv,
                    self._mv,
                    self._topo,
                    self._lslot,
                    self._pslot,
                    self._ncols,
                    self._cmap,
                    T,
                    lo,
                    hi,
                    buf["Pm"],
                    buf["lbuf"],
                    buf["site"],
                    no_grads,
                    out,
                    lb,
                    True,
                    False,
                )
            else:
                rows(
                    self._tips2,
                    self._weights,
                    self._inv,
                    self._mv,
                    self._topo,
                    self._gslot,
                    self._pslot,
                    self._ncols,
                    self._cmap,
                    T,
                    lo,
                    hi,
                    buf["Pm"],
                    buf["gbuf"],
                    buf["site"],
                    grads,
                    out,
                    gb,
                    True,
                    True,
                )

        if nt == 1:
            work(0)
            return
        jobs = [_pool(nt).submit(work, i) for i in range(1, nt)]
        work(0)  # the first chunk in this thread
        for job in jobs:
            job.result()

    def log_likelihood_batch(self, matrix) -> np.ndarray:
        """Log-likelihoods of B branch-length vectors (rows of a ``(B, n_branches)`` matrix),
        evaluated in parallel over the rows by ``batch_threads`` threads."""
        T = self._check_matrix(matrix)
        out = np.empty(T.shape[0])
        self._batch_run(T, out, None)
        return out

    def gradient_batch(self, matrix):
        """Log-likelihoods ``(B,)`` and gradients ``(B, n_branches)`` of B branch-length vectors,
        in parallel over the rows."""
        T = self._check_matrix(matrix)
        out = np.empty(T.shape[0])
        grads = np.empty(T.shape)
        self._batch_run(T, out, grads)
        return out, grads

    # ------------------------------------------------------------------ other models
    def model_vector(self, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """The arrays the kernels read for ``model`` on this alignment: the model vector
        (:func:`phylo.likelihood._kernels.pack_model`) and the invariant-site likelihood
        :math:`I_p = \\sum_s \\pi_s [\\text{every tip allows } s]` of every pattern.

        ``model`` must have as many rate categories as the model the object was built
        with (the buffers are sized for them); ``"empirical"`` frequencies are resolved
        against the alignment.
        """
        m = model.resolve(self.alignment)
        if m.n_categories != self.n_categories:
            raise InputError(
                f"the model has {m.n_categories} rate categories, this likelihood "
                f"{self.n_categories}"
            )
        inv = np.ascontiguousarray(m.frequencies @ self._invariant)
        return model_vector(m), inv

    def set_model(self, model: Model) -> None:
        """Evaluate under ``model`` from now on (same number of rate categories); the
        buffers, the site-repeat plan and the thread layout are kept."""
        mv, inv = self.model_vector(model)
        self.model = model.resolve(self.alignment)
        self._mv = mv
        self._inv[:] = inv  # in place: the thread parts hold views of it

    def model_vectors(self, rows: dict) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``(mv, inv)`` pairs of :meth:`model_vector` for B models given as the arrays
        of :func:`phylo.likelihood.models.model_rows` (all at once: no Model objects)."""
        if rows["category_rates"].shape[1] != self.n_categories:
            raise InputError(
                f"the models have {rows['category_rates'].shape[1]} rate categories, this "
                f"likelihood {self.n_categories}"
            )
        mvs = K.pack_models(
            rows["eigenvalues"],
            rows["eigenvectors"],
            rows["inverse"],
            rows["rate_matrix"],
            rows["frequencies"],
            rows["pinv"],
            rows["category_rates"],
            rows["category_weights"],
        )
        invs = rows["frequencies"] @ self._invariant
        return [(np.ascontiguousarray(mv), np.ascontiguousarray(inv)) for mv, inv in zip(mvs, invs)]

    def log_likelihood_models(self, matrix, models) -> np.ndarray:
        """Log-likelihoods of B branch-length vectors (rows of ``matrix``), row ``b``
        under model ``models[b]`` (:class:`Model` objects, or the ``(mv, inv)`` pairs of
        :meth:`model_vector`), in parallel over the rows like
        :meth:`log_likelihood_batch`."""
        T = self._check_matrix(matrix)
        B = T.shape[0]
        if len(models) != B:
            raise InputError(f"{B} rows of branch lengths but {len(models)} models")
        arrays = [m if isinstance(m, tuple) else self.model_vector(m) for m in models]
        out = np.empty(B)
        bufs = self._batch_buffers(False)
        nt = min(self.batch_threads, max(1, B))
        lb = np.array([0, self.n_patterns], dtype=np.int64) if self._ncols.size else self._lbounds
        no_grads = np.zeros((0, 0))

        def work(i):
            buf = bufs[i]
            for b in range((B * i) // nt, (B * (i + 1)) // nt):
                mv, inv = arrays[b]
                family(mv).evaluate_rows(
                    self._tips2,
                    self._weights,
                    inv,
                    mv,
                    self._topo,
                    self._lslot,
                    self._pslot,
                    self._ncols,
                    self._cmap,
                    T,
                    b,
                    b + 1,
                    buf["Pm"],
                    buf["lbuf"],
                    buf["site"],
                    no_grads,
                    out,
                    lb,
                    True,
                    False,
                )

        if nt == 1:
            work(0)
            return out
        jobs = [_pool(nt).submit(work, i) for i in range(1, nt)]
        work(0)
        for job in jobs:
            job.result()
        return out

    # ------------------------------------------------------------------ description
    def branch_splits(self) -> np.ndarray:
        """uint64 (n_branches, W) bitsets: branch ``i`` separates these taxa from the rest."""
        return np.asarray(self.tree.splits())

    def model_arrays(self) -> dict:
        """The model as plain arrays: ``frequencies`` (4,), ``exchangeabilities`` (6,),
        ``rate_matrix`` (4, 4), ``eigenvalues`` (4,), ``eigenvectors`` V and ``inverse``
        V^-1 (4, 4), ``category_rates`` (K,), ``category_weights`` (K,), ``pinv``."""
        m = self.model
        lam, v, vinv = (a.copy() for a in m.eigen())
        return {
            "frequencies": np.array(m.frequencies),
            "exchangeabilities": m.exchangeabilities.copy(),
            "rate_matrix": m.rate_matrix().copy(),
            "eigenvalues": lam,
            "eigenvectors": v,
            "inverse": vinv,
            "category_rates": m.category_rates().copy(),
            "category_weights": m.category_weights(),
            "pinv": float(m.pinv),
        }

    def __repr__(self):
        return (
            f"TreeLikelihood({self.n_taxa} taxa, {self.n_patterns} patterns, "
            f"{self.model.describe()}, {self.n_branches} branches)"
        )
