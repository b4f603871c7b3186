"""The fixed-topology posterior: where samplers start on a topology given without branch
lengths (e.g. one drawn from a tree distribution)."""

import numpy as np

from phylo.likelihood import JC69, random_tree, simulate_alignment
from phylo.marglik.posterior import Posterior
from phylo.trees import Tree


def test_topology_without_lengths_starts_near_its_branch_lengths():
    # 10 taxa, 3000 sites simulated on known branch lengths: the start fitted to the pairwise
    # distances must land near them; a fixed 0.1 per branch would not (the branches are
    # drawn from 0.002 to 0.04 or from 0.15 to 0.3; longer ones saturate the distances of
    # long paths, and the fit is then off by up to a quarter on some seeds)
    rng = np.random.default_rng(4)
    tree = random_tree(10, rng)
    truth = np.where(
        np.arange(17) % 2 == 0, rng.uniform(0.002, 0.04, 17), rng.uniform(0.15, 0.3, 17)
    )
    aln = simulate_alignment(tree, JC69(), 3000, rng, branch_lengths=np.append(truth, 0.0))
    bare = Tree(tree.taxa, tree.parent, None, False)
    post = Posterior(aln, bare)
    assert post.start.shape == (17,) and np.all(post.start > 0)
    long = truth > 0.1
    assert np.all(np.abs(post.start[long] / truth[long] - 1) < 0.25)
    assert np.all(post.start[~long] < 0.1)
    # given lengths are kept as the start
    with_lengths = Tree(tree.taxa, tree.parent, np.append(truth, 0.0), False)
    assert np.array_equal(Posterior(aln, with_lengths).start, truth)


def _simulated(n_taxa, n_sites, seed):
    rng = np.random.default_rng(seed)
    tree = random_tree(n_taxa, rng)
    lengths = rng.uniform(0.02, 0.2, 2 * n_taxa - 3)
    aln = simulate_alignment(tree, JC69(), n_sites, rng, branch_lengths=np.append(lengths, 0.0))
    return tree, lengths, aln


def test_starting_lengths_that_cannot_start_a_sampler_are_replaced_by_the_distance_fit():
    tree, lengths, aln = _simulated(8, 400, 2)
    fit = Posterior(aln, Tree(tree.taxa, tree.parent, None, False)).start
    given = lengths.copy()
    bad = [0, 3, 5, 8, 11]
    given[bad] = [0.0, -0.01, np.nan, np.inf, 1e-400]
    post = Posterior(aln, Tree(tree.taxa, tree.parent, np.append(given, 0.0), False))
    assert post.replaced_start.tolist() == bad
    assert np.array_equal(post.start[bad], fit[bad])
    keep = np.setdiff1d(np.arange(13), bad)
    assert np.array_equal(post.start[keep], lengths[keep])
    good = Posterior(aln, Tree(tree.taxa, tree.parent, np.append(lengths, 0.0), False))
    assert good.replaced_start.size == 0


def test_pairwise_distances_use_memory_of_pairs_not_pairs_times_patterns():
    import tracemalloc

    from phylo.marglik.optimize import _pairwise_jc

    tree, _, aln = _simulated(200, 1500, 3)
    post = Posterior(aln, Tree(tree.taxa, tree.parent, None, False))
    patterns = post.likelihood.patterns.weights.shape[0]
    assert patterns > 1000
    tracemalloc.start()
    d = _pairwise_jc(post)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # an n x n x patterns array of doubles would be 200 * 200 * patterns * 8 bytes (> 300 MB)
    assert peak < 200 * 200 * patterns * 8 / 20
    assert d.shape == (200, 200) and np.allclose(d, d.T) and np.all(np.diag(d) == 0)
