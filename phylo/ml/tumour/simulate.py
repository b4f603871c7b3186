"""Simulated single-cell genotype matrices under the infinite-sites model.

Sadeqi Azer, E., Haghir Ebrahimabadi, M., Malikić, S., Khardon, R. and Sahinalp, S. C. (2020).
Tumor phylogeny topology inference via deep learning. iScience 23(11), 101655.

A genotype matrix :math:`A \\in \\{0,1\\}^{n \\times m}` has one row per sampled cell and one
column per mutation; :math:`A_{ij} = 1` when cell :math:`i` carries mutation :math:`j`.

*Genealogy.*  The cells' genealogy is a Kingman coalescent tree (simulated with dendropy): with
:math:`k` lineages the waiting time to the next coalescence is exponential with rate
:math:`\\binom{k}{2}`, and a uniformly chosen pair merges.

*Infinite sites.*  Each of the :math:`m` mutations falls on one edge of the tree, edge :math:`e`
being chosen with probability :math:`\\ell_e / \\sum_f \\ell_f` (the conditional law of the
mutation positions given :math:`m` segregating sites); every cell below the edge carries it.
The resulting matrix always admits a perfect phylogeny.

*Linear (chain) evolution.*  Restricting the mutations to the edges on the path from the root to
one sampled cell gives nested mutation columns: the clonal tree is a chain.

*Noise.*  Sequencing errors are independent: a true 0 is read as 1 with the false positive rate
:math:`\\alpha`, a true 1 as 0 with the false negative rate :math:`\\beta`,

.. math:: P(A'_{ij}=1 \\mid A_{ij}=0) = \\alpha, \\qquad P(A'_{ij}=0 \\mid A_{ij}=1) = \\beta.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ...errors import InputError

__all__ = ["CoalescentTree", "coalescent_tree", "genotype_matrix", "add_noise"]


@dataclass
class CoalescentTree:
    """A rooted tree over ``n_cells`` leaves, stored as arrays.

    Attributes
    ----------
    clades
        (n_edges, n_cells) boolean: row ``e`` marks the leaves below edge ``e``.
    lengths
        (n_edges,) branch lengths in coalescent units.
    """

    clades: np.ndarray
    lengths: np.ndarray


def _check_positive(name: str, value: int, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def coalescent_tree(n_cells: int, rng: np.random.Generator) -> CoalescentTree:
    """Kingman coalescent genealogy of ``n_cells`` cells, simulated with dendropy.

    Parameters
    ----------
    n_cells
        Number of sampled cells (leaves), at least 2.
    rng
        Source of randomness; dendropy's Python ``random.Random`` is seeded from it.
    """
    import dendropy
    from dendropy.simulate import treesim

    n_cells = _check_positive("n_cells", n_cells, 2)
    names = [f"c{i}" for i in range(n_cells)]
    ns = dendropy.TaxonNamespace(names)
    tree = treesim.pure_kingman_tree(
        taxon_namespace=ns, pop_size=1, rng=random.Random(int(rng.integers(2**62)))
    )
    # with pop_size=1, k lineages coalesce at rate k(k-1)/2 (E[T_MRCA] = 2(1 - 1/n), checked in
    # the tests), the standard coalescent time unit.
    index = {t.label: i for i, t in enumerate(ns)}
    clades, lengths = [], []
    masks = {}
    for node in tree.postorder_node_iter():
        if node.is_leaf():
            m = np.zeros(n_cells, dtype=bool)
            m[index[node.taxon.label]] = True
        else:
            m = np.logical_or.reduce([masks[id(c)] for c in node.child_node_iter()])
        masks[id(node)] = m
        if node.parent_node is not None:
            clades.append(m)
            lengths.append(node.edge.length)
    return CoalescentTree(np.array(clades), np.array(lengths, dtype=np.float64))


def genotype_matrix(
    n_cells: int,
    n_mutations: int,
    rng: np.random.Generator,
    linear: bool = False,
    tree: CoalescentTree | None = None,
) -> np.ndarray:
    """Noise-free cells x mutations matrix under the infinite-sites model.

    Parameters
    ----------
    n_cells, n_mutations
        Matrix shape.
    rng
        Source of randomness.
    linear
        If true, mutations fall only on the root-to-leaf path of one uniformly chosen cell, so
        the mutation columns are nested (a chain of clones).
    tree
        Genealogy to use; a fresh :func:`coalescent_tree` when omitted.

    Returns
    -------
    numpy.ndarray
        (n_cells, n_mutations) array of dtype ``int8`` with a perfect phylogeny.
    """
    n_cells = _check_positive("n_cells", n_cells, 2)
    n_mutations = _check_positive("n_mutations", n_mutations, 1)
    if tree is None:
        tree = coalescent_tree(n_cells, rng)
    lengths = tree.lengths.copy()
    if linear:
        leaf = rng.integers(n_cells)
        lengths = np.where(tree.clades[:, leaf], lengths, 0.0)
    p = lengths / lengths.sum()
    edges = rng.choice(len(p), size=n_mutations, p=p)
    return tree.clades[edges].T.astype(np.int8)


def add_noise(matrix, fp_rate: float, fn_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Flip entries independently: 0 -> 1 with ``fp_rate``, 1 -> 0 with ``fn_rate``.

    Returns a new ``int8`` array (the input is not modified).
    """
    a = np.asarray(matrix)
    if not (0.0 <= fp_rate < 1.0 and 0.0 <= fn_rate < 1.0):
        raise InputError(f"error rates must lie in [0, 1), got fp={fp_rate}, fn={fn_rate}")
    if not np.isin(a, (0, 1)).all():
        raise InputError("a genotype matrix holds only 0 and 1")
    u = rng.random(a.shape)
    flip = np.where(a == 1, u < fn_rate, u < fp_rate)
    return np.where(flip, 1 - a, a).astype(np.int8)
