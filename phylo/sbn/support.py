"""Root splits, subsplits and parent-child subsplit pairs of a tree sample, as integer ids.

Definitions (Zhang & Matsen, "Generalizing tree probability estimation via Bayesian
networks", NeurIPS 2018):

* a *clade* is a set of taxa (a bitset); the full set is clade ``0``;
* a *subsplit* of a clade ``C`` is an unordered pair ``{A, B}`` of disjoint non-empty clades
  with ``A | B = C``; a *root split* is a subsplit of the full set;
* a *parent key* says what a clade's subsplit is conditioned on.  Under parent-child subsplit
  conditioning (``"pcsp"``, the paper's SBN) it is the ordered pair ``(sibling, clade)``: the
  parent subsplit ``{sibling, clade}`` and which of its two clades is being split.  Under clade
  conditioning (``"clade"``, Larget's conditional clade distribution) it is the clade alone.
  Key ``0`` is the root: the full set, whose subsplits are the root splits;
* a *parameter* is a pair (parent key, child subsplit), i.e. a root split or a PCSP; its value
  is the conditional probability ``p(subsplit | parent key)``.  Parameters are numbered so that
  each parent key's parameters are contiguous: group ``k`` is ``offsets[k]:offsets[k+1]``.

:class:`Indexer` maps trees to these ids with hash tables (exact: clades are compared word by
word), so that estimators and the fitted model work on integer arrays only.  For an unrooted
tree it lists, per edge, the parameters of all ``2n-3`` rootings (see
:mod:`phylo.sbn._kernels` for the ``(2n-3, 7)`` layout); for a rooted tree one parameter per
internal node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..trees import bitsets
from . import _kernels as K

CONDITIONINGS = ("pcsp", "clade")


def _pow2(x: int) -> int:
    c = 16
    while c < x:
        c *= 2
    return c


@dataclass
class Support:
    """The clades, subsplits, parent keys and parameters of an SBN.

    Attributes
    ----------
    n_taxa : int
    rooted : bool
        Whether the SBN describes rooted trees (else unrooted trees, through all rootings).
    conditioning : {"pcsp", "clade"}
    clades : ndarray, uint64, shape (C, W)
        Bitsets; clade 0 is the full set.
    subsplits : ndarray, int32, shape (S, 2)
        The two clades of each subsplit (smaller id first).
    keys : ndarray, int32, shape (K, 2)
        ``(sibling clade or -1, clade)`` of each parent key; key 0 is ``(-1, 0)``, the root.
    param_key, param_sub : ndarray, int32, shape (M,)
        Parent key and child subsplit of each parameter, sorted by key.
    """

    n_taxa: int
    rooted: bool
    conditioning: str
    clades: np.ndarray
    subsplits: np.ndarray
    keys: np.ndarray
    param_key: np.ndarray
    param_sub: np.ndarray

    def __post_init__(self):
        self.clades = np.ascontiguousarray(self.clades, dtype=np.uint64)
        self.subsplits = np.ascontiguousarray(self.subsplits, dtype=np.int32).reshape(-1, 2)
        self.keys = np.ascontiguousarray(self.keys, dtype=np.int32).reshape(-1, 2)
        self.param_key = np.ascontiguousarray(self.param_key, dtype=np.int32)
        self.param_sub = np.ascontiguousarray(self.param_sub, dtype=np.int32)
        if np.any(np.diff(self.param_key) < 0):
            raise ValueError("parameters must be sorted by parent key")
        self.offsets = np.searchsorted(self.param_key, np.arange(self.n_keys + 1)).astype(np.int64)
        self._derived = None

    # -- sizes -----------------------------------------------------------------------------
    @property
    def n_clades(self) -> int:
        return self.clades.shape[0]

    @property
    def n_subsplits(self) -> int:
        return self.subsplits.shape[0]

    @property
    def n_keys(self) -> int:
        return self.keys.shape[0]

    @property
    def n_params(self) -> int:
        return self.param_key.shape[0]

    @property
    def n_rootsplits(self) -> int:
        return int(self.offsets[1])

    # -- derived arrays ----------------------------------------------------------------------
    def _derive(self):
        if self._derived is not None:
            return self._derived
        sizes = bitsets.popcount(self.clades).astype(np.int64)
        leaf = np.full(self.n_clades, -1, np.int64)
        single = np.nonzero(sizes == 1)[0]
        for c in single:
            leaf[c] = bitsets.to_indices(self.clades[c])[0]
        # parent key of each clade of each subsplit
        lookup = {(int(a), int(b)): k for k, (a, b) in enumerate(self.keys)}
        sub_keys = np.full((self.n_subsplits, 2), -1, np.int64)
        for s, (a, b) in enumerate(self.subsplits):
            for j, (child, sib) in enumerate(((a, b), (b, a))):
                if sizes[child] == 1:
                    continue
                sib_key = -1 if self.conditioning == "clade" else int(sib)
                sub_keys[s, j] = lookup.get((sib_key, int(child)), -2)
        self._derived = (sizes, leaf, sub_keys)
        return self._derived

    @property
    def clade_sizes(self) -> np.ndarray:
        """Number of taxa in each clade."""
        return self._derive()[0]

    @property
    def clade_leaf(self) -> np.ndarray:
        """Taxon of each singleton clade, ``-1`` for larger clades."""
        return self._derive()[1]

    @property
    def sub_keys(self) -> np.ndarray:
        """``(S, 2)``: parent key of each clade of each subsplit (``-1``: a leaf, nothing to
        split; ``-2``: the key is not in the support, so the subsplit cannot be completed)."""
        return self._derive()[2]

    def clade_string(self, c: int) -> str:
        return bitsets.to_string(self.clades[c], self.n_taxa)

    def describe(self, m: int) -> str:
        """Human-readable form of parameter ``m``: ``parent key -> subsplit``."""
        k = self.param_key[m]
        a, b = self.subsplits[self.param_sub[m]]
        sib, clade = self.keys[k]
        if k == 0:
            head = "root"
        elif sib < 0:
            head = self.clade_string(clade)
        else:
            head = f"{self.clade_string(sib)}|{self.clade_string(clade)}"
        return f"{head} -> {self.clade_string(a)}|{self.clade_string(b)}"


class Indexer:
    """Hash tables from clades, subsplits, parent keys and parameters to integer ids.

    Parameters
    ----------
    n_taxa
    rooted
        Index rooted trees (one parameter per internal node) or unrooted trees (all
        rootings).
    conditioning
        ``"pcsp"`` or ``"clade"`` (see the module docstring).
    """

    def __init__(self, n_taxa: int, rooted: bool, conditioning: str = "pcsp"):
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}")
        self.n_taxa = int(n_taxa)
        self.rooted = bool(rooted)
        self.conditioning = conditioning
        self.W = bitsets.n_words(n_taxa)
        self.full = bitsets.full(n_taxa)
        self.cnt = np.zeros(4, np.int64)
        self.cs = np.full(64, -1, np.int32)
        self.cst = np.zeros((32, self.W), np.uint64)
        self.pairs = []
        for width in (2, 2, 5):
            self.pairs.append([np.full(64, -1, np.int32), np.zeros((32, width), np.int32)])
        # clade 0 = full set, key 0 = (-1, 0) the root
        self._add_fixed()

    def _add_fixed(self):
        self.cst[0] = self.full
        K.rehash_clades(self.cst, 1, self.cs)
        self.cnt[0] = 1
        ks, kst = self.pairs[1]
        kst[0] = (-1, 0)
        K.rehash_pairs(kst, 1, ks)
        self.cnt[2] = 1

    @property
    def n_nodes(self) -> int:
        return 2 * self.n_taxa - 1 if self.rooted else 2 * self.n_taxa - 2

    @property
    def columns(self) -> tuple[int, int]:
        """Shape of one tree's parameter table."""
        return (self.n_nodes, 1) if self.rooted else (self.n_nodes - 1, 7)

    # -- capacity ------------------------------------------------------------------------------
    def _grow(self):
        """Double every table (the kernel stops when one might overfill)."""
        n = int(self.cnt[0])
        grown = np.zeros((2 * self.cst.shape[0], self.W), np.uint64)
        grown[:n] = self.cst[:n]
        self.cst = grown
        self.cs = np.full(2 * self.cs.shape[0], -1, np.int32)
        K.rehash_clades(self.cst, n, self.cs)
        for j in range(3):
            slots, store = self.pairs[j]
            n = int(self.cnt[j + 1])
            grown = np.zeros((2 * store.shape[0], store.shape[1]), np.int32)
            grown[:n] = store[:n]
            slots = np.full(2 * slots.shape[0], -1, np.int32)
            (K.rehash_params if j == 2 else K.rehash_pairs)(grown, n, slots)
            self.pairs[j] = [slots, grown]

    def _ensure_min(self):
        need = 8 * self.n_nodes
        while (
            self.cs.shape[0] < 2 * (int(self.cnt.max()) + need)
            or self.cst.shape[0] < int(self.cnt.max()) + need
        ):
            self._grow()

    def _run(self, parents: np.ndarray, add: bool, missing: int) -> np.ndarray:
        parents = np.ascontiguousarray(parents, dtype=np.int32)
        if parents.ndim != 2 or parents.shape[1] != self.n_nodes:
            raise ValueError(f"parent arrays must have {self.n_nodes} nodes")
        T = parents.shape[0]
        E, C = self.columns
        out = np.empty((T, E, C), np.int32)
        if add:
            self._ensure_min()
        t = 0
        while t < T:
            (ss, sst), (ks, kst), (ms, mst) = self.pairs
            tables = (self.cs, self.cst, ss, sst, ks, kst, ms, mst, self.cnt)
            head = (parents, self.full, self.n_taxa, self.rooted, self.conditioning == "clade")
            if add:
                t = K.add_trees(*head, *tables, t, out)
            else:
                t = K.lookup_trees(*head, *tables, missing, t, out)
            if t < T:
                self._grow()
        return out

    # -- public --------------------------------------------------------------------------------
    def add(self, parents: np.ndarray) -> np.ndarray:
        """Index trees, adding what is new; returns their ``(T, E, C)`` parameter tables
        (ids in order of first appearance; :meth:`freeze` renumbers them)."""
        return self._run(parents, True, -2)

    def lookup(self, parents: np.ndarray, missing: int) -> np.ndarray:
        """Parameter tables of trees; anything not in the tables becomes ``missing``."""
        return self._run(parents, False, missing)

    def freeze(self, tables: list[np.ndarray] = ()) -> tuple[Support, np.ndarray]:
        """The :class:`Support` of everything indexed (parameters sorted by parent key).

        Returns the support and the permutation ``old id -> new id``; ``tables`` are
        renumbered in place.  Afterwards the indexer uses the new numbering.
        """
        M = int(self.cnt[3])
        mst = self.pairs[2][1][:M]
        order = np.argsort(mst[:, 3], kind="stable")
        perm = np.empty(M, np.int64)
        perm[order] = np.arange(M)
        support = Support(
            self.n_taxa,
            self.rooted,
            self.conditioning,
            self.cst[: self.cnt[0]].copy(),
            self.pairs[0][1][: self.cnt[1]].copy(),
            self.pairs[1][1][: self.cnt[2]].copy(),
            mst[order, 3].copy(),
            mst[order, 4].copy(),
        )
        for tab in tables:
            K.remap(tab, perm, -2, M)
        # renumber the parameter table
        store = np.zeros_like(self.pairs[2][1])
        store[:M] = mst[order]
        ms = np.full(self.pairs[2][0].shape[0], -1, np.int32)
        K.rehash_params(store, M, ms)
        self.pairs[2] = [ms, store]
        return support, perm

    @classmethod
    def from_support(cls, support: Support) -> Indexer:
        """An indexer whose ids are those of ``support`` (to look trees up in a model)."""
        self = cls.__new__(cls)
        self.n_taxa = support.n_taxa
        self.rooted = support.rooted
        self.conditioning = support.conditioning
        self.W = bitsets.n_words(support.n_taxa)
        self.full = bitsets.full(support.n_taxa)
        self.cnt = np.array(
            [support.n_clades, support.n_subsplits, support.n_keys, support.n_params], np.int64
        )
        self.cst = support.clades.copy()
        self.cs = np.full(_pow2(2 * support.n_clades), -1, np.int32)
        K.rehash_clades(self.cst, self.cnt[0], self.cs)
        self.pairs = []
        for store in (support.subsplits, support.keys):
            store = np.ascontiguousarray(store, dtype=np.int32).reshape(-1, 2).copy()
            slots = np.full(_pow2(2 * store.shape[0]), -1, np.int32)
            K.rehash_pairs(store, store.shape[0], slots)
            self.pairs.append([slots, store])
        kk = support.keys[support.param_key]
        lo = support.subsplits[support.param_sub].min(axis=1)
        store = np.ascontiguousarray(
            np.stack([kk[:, 0], kk[:, 1], lo, support.param_key, support.param_sub], axis=1),
            dtype=np.int32,
        )
        slots = np.full(_pow2(2 * store.shape[0]), -1, np.int32)
        K.rehash_params(store, store.shape[0], slots)
        self.pairs.append([slots, store])
        return self


def index_sample(
    parents: np.ndarray, n_taxa: int, rooted: bool, conditioning: str = "pcsp"
) -> tuple[Support, np.ndarray]:
    """The support of a set of topologies and their parameter tables.

    Parameters
    ----------
    parents
        ``(T, N)`` parent arrays (e.g. ``TreeSample.parents``).
    n_taxa, rooted, conditioning
        See :class:`Indexer`.

    Returns
    -------
    support : Support
    table : ndarray, int32
        ``(T, 2n-3, 7)`` for unrooted trees, ``(T, 2n-1, 1)`` for rooted trees: the parameter
        ids each tree uses (``-1`` where none; see :mod:`phylo.sbn._kernels`).
    """
    ix = Indexer(n_taxa, rooted, conditioning)
    table = ix.add(parents)
    support, _ = ix.freeze([table])
    return support, table
