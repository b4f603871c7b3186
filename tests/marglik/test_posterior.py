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
