"""One binary tree on a set of taxa, as arrays in canonical form.

Node numbering (see :mod:`phylo.trees._kernels`): leaves ``0..n-1`` are the taxa in order;
internal nodes follow in postorder (every child has a smaller index than its parent), children
visited in increasing order of the smallest taxon below them; the root is the last node.
An unrooted tree has ``2n-2`` nodes and its root is the internal node adjacent to taxon 0
(three children); a rooted tree has ``2n-1`` nodes and a bifurcating root.

Branch ``i`` is the edge above node ``i`` (``i = 0 .. n_nodes-2``): ``2n-3`` branches for an
unrooted tree, ``2n-2`` for a rooted one.  :meth:`Tree.splits` maps branches to splits.

Renaming taxa and dropping the root are array operations (:mod:`phylo.trees.topology`): the
branch lengths follow their splits.  :func:`parse_newick` reads a tree from Newick text (the
text format itself is :mod:`phylo.trees.newick`, which knows nothing of this class).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import bitsets, newick
from .taxa import Taxa
from .topology import canonical, permutation, relabel


class Tree:
    """A binary tree in canonical form.

    Parameters
    ----------
    taxa
        The taxa (:class:`~phylo.trees.taxa.Taxa` or names); leaf ``i`` is taxon ``i``.
    parent
        Canonical parent array (``int32``, root last with parent ``-1``).
    branch_lengths
        Length of the edge above each node (root entry ignored), or ``None``.
    rooted
        Whether the root is meaningful.
    """

    __slots__ = ("taxa", "parent", "branch_lengths", "rooted", "_children")

    def __init__(
        self,
        taxa,
        parent: np.ndarray,
        branch_lengths: np.ndarray | None = None,
        rooted: bool = False,
    ):
        if not isinstance(taxa, Taxa):
            taxa = Taxa(list(taxa))
        self.taxa = taxa
        self.parent = np.ascontiguousarray(parent, dtype=np.int32)
        n = len(taxa)
        expected = 2 * n - 1 if rooted else 2 * n - 2
        if self.parent.shape != (expected,):
            raise ValueError(
                f"parent array of length {self.parent.shape} for {n} taxa "
                f"({'rooted' if rooted else 'unrooted'}: {expected} nodes)"
            )
        if branch_lengths is not None:
            branch_lengths = np.array(branch_lengths, dtype=np.float64)
            if branch_lengths.shape == (expected - 1,):
                branch_lengths = np.append(branch_lengths, 0.0)
            if branch_lengths.shape != (expected,):
                raise ValueError("branch_lengths must have one entry per node or per branch")
            branch_lengths[-1] = 0.0
        self.branch_lengths = branch_lengths
        self.rooted = bool(rooted)
        self._children = None

    # -- sizes -------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self.taxa.names

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    @property
    def n_nodes(self) -> int:
        return self.parent.shape[0]

    @property
    def n_branches(self) -> int:
        return self.parent.shape[0] - 1

    @property
    def root(self) -> int:
        return self.parent.shape[0] - 1

    # -- structure ---------------------------------------------------------------------
    @property
    def children(self) -> np.ndarray:
        """``(n_nodes - n_taxa, 3)`` children of internal node ``n + k`` in row ``k``,
        in increasing order, padded with ``-1``."""
        if self._children is None:
            n = self.n_taxa
            ch = np.full((self.n_nodes - n, 3), -1, np.int32)
            fill = np.zeros(self.n_nodes - n, np.int64)
            for v in range(self.n_nodes - 1):
                p = self.parent[v] - n
                ch[p, fill[p]] = v
                fill[p] += 1
            self._children = ch
        return self._children

    def clades(self) -> np.ndarray:
        """``(n_nodes, W)`` uint64 bitsets of the taxa below each node."""
        return bitsets.clades(self.parent[None, :], self.n_taxa)[0]

    def splits(self) -> np.ndarray:
        """``(n_branches, W)`` uint64: the split of each branch, as the side without taxon 0.

        For a rooted tree these are still the unrooted splits (the two root branches give
        the same split).
        """
        return bitsets.normalise_splits(self.clades()[:-1], self.n_taxa)

    def topology_key(self) -> bytes:
        """Bytes identifying the topology (equal keys, equal topologies)."""
        return self.parent.tobytes() + (b"R" if self.rooted else b"U")

    def same_topology(self, other: Tree) -> bool:
        return (
            self.taxa == other.taxa
            and self.rooted == other.rooted
            and np.array_equal(self.parent, other.parent)
        )

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_parents(
        cls,
        taxa,
        parent: np.ndarray,
        branch_lengths: np.ndarray | None = None,
        rooted: bool = False,
    ) -> Tree:
        """The tree of any binary parent array, put in canonical form.

        ``parent``: leaves ``0..n-1`` are the taxa, internal nodes any ids from ``n``, the
        root's parent is ``-1`` (see :func:`phylo.trees.topology.canonical`; a bifurcating
        root is suppressed unless ``rooted``).  ``branch_lengths[v]`` is the length of the
        edge above node ``v`` of the input; they follow their edges.
        """
        if not isinstance(taxa, Taxa):
            taxa = Taxa(list(taxa))
        if branch_lengths is None:
            return cls(taxa, canonical(parent, len(taxa), rooted), None, rooted)
        par, bl = canonical(parent, len(taxa), rooted, branch_lengths)
        return cls(taxa, par, bl, rooted)

    # -- conversions -------------------------------------------------------------------
    def to_newick(self, lengths: bool = True, precision: int | None = None) -> str:
        """Newick string with taxon names (quoted where needed) and branch lengths (when
        known and asked)."""
        bl = self.branch_lengths if lengths else None
        return newick.write_newick(self.parent, self.taxa.names, bl, self.rooted, precision)

    def reorder_taxa(self, names: Sequence[str] | Taxa) -> Tree:
        """The same tree with the taxa renumbered to the order of ``names``.

        ``names`` must hold the same taxa (matched as labels are: ``_`` = blank); the tree
        is relabelled and put back in canonical form as arrays, branch lengths following
        their splits.
        """
        target = names if isinstance(names, Taxa) else Taxa(list(names))
        perm = permutation(
            self.taxa, target, self.taxa.source or "the tree", target.source or "the given order"
        )
        if perm is None:
            return Tree(target, self.parent, self.branch_lengths, self.rooted)
        if self.branch_lengths is None:
            return Tree(target, relabel(self.parent, perm, self.rooted), None, self.rooted)
        par, bl = relabel(self.parent, perm, self.rooted, self.branch_lengths)
        return Tree(target, par, bl, self.rooted)

    def unrooted(self) -> Tree:
        """The unrooted tree: the root is suppressed and its two branches joined into one
        whose length is the sum of theirs."""
        if not self.rooted:
            return self
        if self.branch_lengths is None:
            return Tree(self.taxa, canonical(self.parent, self.n_taxa, False), None, False)
        par, bl = canonical(self.parent, self.n_taxa, False, self.branch_lengths)
        return Tree(self.taxa, par, bl, False)

    def __repr__(self) -> str:
        kind = "rooted" if self.rooted else "unrooted"
        return f"<Tree {kind}, {self.n_taxa} taxa: {self.to_newick(lengths=False)}>"


def parse_newick(text: str, taxa=None, rooted: bool = False, path: str = "<string>") -> Tree:
    """Parse one Newick tree into a :class:`Tree`.

    Parameters
    ----------
    text
        The Newick string (a final ``;`` is optional here).
    taxa
        A :class:`~phylo.trees.taxa.Taxa` or a sequence of names fixing the taxon order;
        default: the order of the leaves in ``text``.
    rooted
        Keep the tree's root (it must be bifurcating); by default the tree is unrooted and
        re-rooted canonically at the internal node next to taxon 0.
    path
        Named in error messages (and as the source of the taxa read from ``text``).
    """
    taxa, parent, lengths = newick.parse_arrays(text, taxa, rooted, path)
    return Tree(taxa, parent, lengths, rooted)
