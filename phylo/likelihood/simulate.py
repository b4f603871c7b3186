"""Simulated trees and alignments, for tests, benchmarks and verification.

Sequences evolve along a tree as a continuous-time Markov chain: the root state is drawn
from the stationary frequencies :math:`\\pi`, and the state at the bottom of an edge of
length :math:`t` from row :math:`x_{\\text{top}}` of :math:`P(\\rho t) = e^{Q \\rho t}`,
where each site's rate :math:`\\rho` is 0 with probability :math:`p_{inv}` and otherwise
the rate of a uniformly chosen Gamma category (Yang 1994).

Random topologies are built by stepwise addition: starting from three taxa, each further
taxon is attached to a uniformly chosen edge, which gives the uniform distribution over
unrooted binary topologies.

References
----------
Yang Z. 1994. J Mol Evol 39:306-314.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .alignment import NUCLEOTIDES, Alignment
from .models import Model

__all__ = ["ArrayTree", "random_tree", "tree_from_edges", "simulate_alignment"]


@dataclass(frozen=True)
class ArrayTree:
    """A minimal tree in the canonical numbering used by the likelihood.

    Leaves ``0..n-1`` in taxon order, internal nodes in post-order (children before
    parents), the root last with ``parent == -1``; ``branch_lengths[i]`` is the length of
    the edge above node ``i`` (0 for the root).  For an unrooted tree the root is the
    internal node next to taxon 0.
    """

    taxa: tuple
    parent: np.ndarray
    branch_lengths: np.ndarray
    rooted: bool = False

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def children(self) -> np.ndarray:
        n = self.n_taxa
        out = np.full((self.n_nodes - n, 3), -1, dtype=np.int32)
        fill = np.zeros(self.n_nodes - n, dtype=np.int64)
        for v, a in enumerate(self.parent):
            if a >= 0:
                out[a - n, fill[a - n]] = v
                fill[a - n] += 1
        return out

    def splits(self) -> np.ndarray:
        """uint64 (n_nodes - 1, W) bitsets of the side of each edge without taxon 0."""
        n, N = self.n_taxa, self.n_nodes
        W = (n + 63) // 64
        clades = np.zeros((N, W), dtype=np.uint64)
        for i in range(n):
            clades[i, i // 64] |= np.uint64(1) << np.uint64(i % 64)
        for v in range(N - 1):
            clades[self.parent[v]] |= clades[v]
        full = clades[N - 1]
        out = clades[: N - 1].copy()
        for v in range(N - 1):
            if out[v, 0] & np.uint64(1):
                out[v] = full & ~out[v]
        return out

    def to_newick(self, digits: int = 17) -> str:
        """Newick text with branch lengths."""
        n = self.n_taxa
        kids = [[] for _ in range(self.n_nodes)]
        for v, a in enumerate(self.parent):
            if a >= 0:
                kids[a].append(v)

        def rec(v):
            if v < n:
                s = self.taxa[v]
            else:
                s = "(" + ",".join(rec(c) for c in kids[v]) + ")"
            if self.parent[v] >= 0:
                s += f":{self.branch_lengths[v]:.{digits}g}"
            return s

        return rec(self.n_nodes - 1) + ";"


def tree_from_edges(taxa, edges, lengths, root: int | None = None) -> ArrayTree:
    """Canonical :class:`ArrayTree` from an undirected tree.

    Parameters
    ----------
    taxa
        Names of the leaves ``0..n-1`` of the edge list.
    edges
        Pairs of node labels (leaves are ``0..n-1``, other labels any larger integers).
    lengths
        Length of each edge.
    root
        Label of the internal node to root at; default the neighbour of taxon 0.
    """
    n = len(taxa)
    adj: dict[int, list] = {}
    for (a, b), t in zip(edges, lengths):
        adj.setdefault(int(a), []).append((int(b), float(t)))
        adj.setdefault(int(b), []).append((int(a), float(t)))
    if root is None:
        root = adj[0][0][0]
    if root < n:
        raise InputError("the root must be an internal node")
    N = len(adj)
    parent = np.full(N, -1, dtype=np.int32)
    bl = np.zeros(N)
    ids = {}
    next_id = n
    # iterative post-order from the root
    stack = [(root, None, 0.0, False)]
    order = []
    while stack:
        v, up, t, done = stack.pop()
        if done:
            if v < n:
                ids[v] = v
            else:
                ids[v] = next_id
                next_id += 1
            order.append((v, up, t))
            continue
        stack.append((v, up, t, True))
        for w, tw in reversed(adj[v]):
            if w != up:
                stack.append((w, v, tw, False))
    for v, up, t in order:
        if up is not None:
            parent[ids[v]] = ids[up]
            bl[ids[v]] = t
    return ArrayTree(tuple(taxa), parent, bl, False)


def random_tree(
    taxa, rng: np.random.Generator, mean_branch_length: float = 0.1, min_branch_length: float = 0.0
) -> ArrayTree:
    """A uniformly random unrooted binary topology with Exponential branch lengths.

    Parameters
    ----------
    taxa
        Taxon names, or a number n for names ``t0 .. t{n-1}``.
    rng
        The random number generator.
    mean_branch_length
        Mean of the exponential branch lengths.
    min_branch_length
        Added to every branch (e.g. 1e-5, below which PhyML clamps lengths).
    """
    if isinstance(taxa, (int, np.integer)):
        taxa = [f"t{i}" for i in range(int(taxa))]
    taxa = list(taxa)
    n = len(taxa)
    if n < 3:
        raise InputError("a random unrooted tree needs at least 3 taxa")
    nxt = n
    edges = [(0, nxt), (1, nxt), (2, nxt)]
    nxt += 1
    for leaf in range(3, n):
        k = int(rng.integers(len(edges)))
        a, b = edges.pop(k)
        edges += [(a, nxt), (b, nxt), (leaf, nxt)]
        nxt += 1
    lengths = rng.exponential(mean_branch_length, size=len(edges)) + min_branch_length
    return tree_from_edges(taxa, edges, lengths)


def simulate_alignment(
    tree, model: Model, n_sites: int, rng: np.random.Generator, branch_lengths=None
) -> Alignment:
    """Sequences at the leaves of ``tree`` evolved under ``model``.

    Parameters
    ----------
    tree
        A tree in canonical numbering (``taxa``, ``parent``, ``branch_lengths``).
    model
        The model; its frequencies must be given (not ``"empirical"``).
    n_sites
        Alignment length.
    rng
        The random number generator.
    branch_lengths
        Overrides the tree's lengths (branch ``i`` above node ``i``).
    """
    if isinstance(model.frequencies, str):
        raise InputError("simulation needs explicit base frequencies")
    parent = np.asarray(tree.parent, dtype=np.int64)
    N = parent.shape[0]
    n = len(tree.taxa)
    t = np.asarray(tree.branch_lengths if branch_lengths is None else branch_lengths, float)
    pi = model.frequencies
    rates = model.category_rates()
    kc = rates.shape[0]
    site_rate = rates[rng.integers(kc, size=n_sites)]
    if model.pinv > 0:
        site_rate[rng.random(n_sites) < model.pinv] = 0.0
    cats, cat_of_site = np.unique(site_rate, return_inverse=True)
    states = np.zeros((N, n_sites), dtype=np.int64)
    states[N - 1] = rng.choice(4, size=n_sites, p=pi)
    for v in range(N - 2, -1, -1):
        a = parent[v]
        for ci, r in enumerate(cats):
            sites = np.flatnonzero(cat_of_site == ci)
            if sites.size == 0:
                continue
            cum = np.cumsum(model.transition_matrix(t[v], r), axis=1)
            cum[:, -1] = 1.0
            u = rng.random(sites.size)
            states[v, sites] = (u[:, None] > cum[states[a, sites]]).sum(axis=1)
    seqs = ["".join(NUCLEOTIDES[s] for s in row) for row in states[:n]]
    return Alignment.from_sequences(list(tree.taxa), seqs)
