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

import numpy as np

from ..errors import InputError
from ..trees import Tree
from .alignment import NUCLEOTIDES, Alignment
from .models import Model

__all__ = ["random_tree", "tree_from_edges", "simulate_alignment"]


def tree_from_edges(taxa, edges, lengths, root: int | None = None) -> Tree:
    """The canonical :class:`~phylo.trees.Tree` of an undirected binary tree.

    Parameters
    ----------
    taxa
        Names of the leaves ``0..n-1`` of the edge list.
    edges
        Pairs of node labels (leaves are ``0..n-1``, other labels any larger integers).
    lengths
        Length of each edge; they follow their edges into the canonical numbering.
    root
        A node of degree two to keep as the root of a rooted tree; by default the tree is
        unrooted (every internal node of degree three).
    """
    n = len(taxa)
    labels = sorted({int(x) for e in edges for x in e})
    if labels[:n] != list(range(n)):
        raise InputError("the leaves of the edge list must be 0..n-1")
    ids = {v: i for i, v in enumerate(labels)}
    adj: dict[int, list[tuple[int, float]]] = {i: [] for i in range(len(labels))}
    for (a, b), t in zip(edges, lengths):
        adj[ids[int(a)]].append((ids[int(b)], float(t)))
        adj[ids[int(b)]].append((ids[int(a)], float(t)))
    start = adj[0][0][0] if root is None else ids[int(root)]
    if start < n:
        raise InputError("the root must be an internal node")
    # direct the edges away from `start`; canonicalisation renumbers
    parent = np.full(len(labels), -1, np.int64)
    bl = np.zeros(len(labels))
    seen = {start}
    stack = [start]
    while stack:
        v = stack.pop()
        for w, t in adj[v]:
            if w not in seen:
                seen.add(w)
                parent[w] = v
                bl[w] = t
                stack.append(w)
    return Tree.from_parents(list(taxa), parent, bl, rooted=root is not None)


def random_tree(
    taxa, rng: np.random.Generator, mean_branch_length: float = 0.1, min_branch_length: float = 0.0
) -> Tree:
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
        A :class:`~phylo.trees.Tree` (or any tree in canonical numbering with ``taxa``,
        ``parent``, ``branch_lengths``).
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
