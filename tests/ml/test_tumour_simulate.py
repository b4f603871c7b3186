"""Simulated genotype matrices: coalescent, infinite sites, noise."""

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.ml.tumour import phylogeny as ph
from phylo.ml.tumour import simulate as sim


def test_coalescent_tree_is_a_binary_tree_with_kingman_times():
    rng = np.random.default_rng(0)
    n = 6
    heights, totals = [], []
    for _ in range(1500):
        t = sim.coalescent_tree(n, rng)
        assert t.clades.shape == (2 * n - 2, n)
        sizes = t.clades.sum(axis=1)
        assert sorted(sizes[sizes == 1]) == [1] * n  # one edge above each leaf
        # clades of a tree are pairwise nested or disjoint
        inter = t.clades.astype(int) @ t.clades.T.astype(int)
        nested = (inter == sizes[:, None]) | (inter == sizes[None, :]) | (inter == 0)
        assert nested.all()
        # the two edges below the root cover all leaves
        assert sizes[sizes > 0].max() < n
        leaf0 = t.clades[:, 0]
        heights.append(t.lengths[leaf0].sum())
        totals.append(t.lengths.sum())
    # Kingman: E[T_MRCA] = 2 (1 - 1/n), E[total length] = 2 sum_{k<n} 1/k
    se_h = np.std(heights) / np.sqrt(len(heights))
    assert abs(np.mean(heights) - 2 * (1 - 1 / n)) < 4 * se_h
    se_t = np.std(totals) / np.sqrt(len(totals))
    assert abs(np.mean(totals) - 2 * sum(1 / k for k in range(1, n))) < 4 * se_t


def test_infinite_sites_matrices_are_perfect_phylogenies_and_linear_ones_are_chains():
    rng = np.random.default_rng(1)
    n_branching = 0
    for _ in range(200):
        a = sim.genotype_matrix(8, 12, rng)
        assert a.shape == (8, 12)
        assert ph.is_perfect_phylogeny(a)
        assert (a.sum(axis=0) >= 1).all()  # every mutation is carried by some cell
        n_branching += ph.is_branching(a)
        b = sim.genotype_matrix(8, 12, rng, linear=True)
        assert ph.is_linear(b)
    assert n_branching > 150


def test_mutation_counts_follow_branch_lengths():
    rng = np.random.default_rng(2)
    tree = sim.coalescent_tree(5, rng)
    counts = np.zeros(len(tree.lengths))
    for _ in range(400):
        a = sim.genotype_matrix(5, 10, rng, tree=tree)
        for col in a.T:
            counts[np.flatnonzero((tree.clades == col.astype(bool)).all(axis=1))[0]] += 1
    expected = 4000 * tree.lengths / tree.lengths.sum()
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected.max()) + 5


def test_noise_rates():
    rng = np.random.default_rng(3)
    a = (rng.random((300, 300)) < 0.3).astype(np.int8)
    b = sim.add_noise(a, 0.02, 0.2, rng)
    fp = ((a == 0) & (b == 1)).sum() / (a == 0).sum()
    fn = ((a == 1) & (b == 0)).sum() / (a == 1).sum()
    assert fp == pytest.approx(0.02, abs=0.003)
    assert fn == pytest.approx(0.2, abs=0.01)
    with pytest.raises(InputError):
        sim.add_noise(a, 1.5, 0.1, rng)
    with pytest.raises(InputError):
        sim.genotype_matrix(1, 3, rng)
