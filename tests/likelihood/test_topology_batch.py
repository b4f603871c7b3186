"""TopologyBatchLikelihood: every row is the TreeLikelihood of its own topology, whatever the
threads; traversal tables; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.likelihood import (
    GTR,
    JC69,
    TopologyBatchLikelihood,
    TreeLikelihood,
    random_tree,
    simulate_alignment,
)
from phylo.likelihood.topology_batch import traversal_table
from phylo.likelihood.tree_likelihood import topology_arrays
from phylo.trees import Taxa, Tree

MODEL = GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], [0.1, 0.2, 0.3, 0.4], alpha=0.5, categories=3)


def _problem(n_taxa, n_trees, seed, model=MODEL, sites=300):
    rng = np.random.default_rng(seed)
    taxa = [f"t{i}" for i in range(n_taxa)]
    trees = [random_tree(taxa, rng) for _ in range(n_trees)]
    aln = simulate_alignment(trees[0], model, sites, rng)
    parents = np.array([t.parent for t in trees])
    T = rng.exponential(0.1, size=(n_trees, 2 * n_taxa - 3))
    return aln, Taxa(taxa), parents, T


def test_rows_equal_tree_likelihood_of_each_topology():
    aln, taxa, parents, T = _problem(9, 12, 1)
    batch = TopologyBatchLikelihood(aln, taxa, MODEL, threads=2)
    ll, g = batch.gradient_batch(parents, T)
    ll2 = batch.log_likelihood_batch(parents, T)
    for b in range(parents.shape[0]):
        tree = Tree(taxa, parents[b], None, False)
        ref = TreeLikelihood(aln, tree, MODEL, site_repeats=False)
        a, ga = ref.gradient(T[b])
        assert ll[b] == a
        assert np.array_equal(g[b], ga)
        assert abs(ll2[b] - a) <= 1e-10 * abs(a)
    assert batch.n_evaluations == 2 * parents.shape[0]


@pytest.mark.parametrize("threads", [1, 3])
def test_threads_do_not_change_values(threads):
    aln, taxa, parents, T = _problem(7, 10, 2, JC69())
    one = TopologyBatchLikelihood(aln, taxa, JC69(), threads=1).gradient_batch(parents, T)
    many = TopologyBatchLikelihood(aln, taxa, JC69(), threads=threads).gradient_batch(parents, T)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])


def test_repeated_topologies_use_the_cache_and_agree():
    aln, taxa, parents, T = _problem(6, 3, 3, JC69())
    rows = np.repeat(parents, 4, axis=0)
    batch = TopologyBatchLikelihood(aln, taxa, JC69(), threads=2)
    ll = batch.log_likelihood_batch(rows, np.repeat(T, 4, axis=0))
    assert np.array_equal(ll.reshape(3, 4), np.repeat(ll[::4, None], 4, axis=1))
    assert len(batch._tables) == 3


def test_traversal_table_is_a_postorder_of_the_same_tree():
    aln, taxa, parents, _ = _problem(11, 5, 4, JC69())
    for p in parents:
        mine = traversal_table(p, 11)
        ref = topology_arrays(p, 11)
        # the same rows (node, children, edges), the root last, children before parents
        assert sorted(map(tuple, mine)) == sorted(map(tuple, ref))
        assert mine[-1, 0] == len(p) - 1
        seen = set(range(11))
        for row in mine:
            assert all(c in seen for c in row[2 : 2 + row[1]])
            seen.add(row[0])


def test_bad_input():
    aln, taxa, parents, T = _problem(6, 2, 5, JC69())
    batch = TopologyBatchLikelihood(aln, taxa, JC69())
    with pytest.raises(InputError, match="branch lengths"):
        bad = T.copy()
        bad[0, 3] = np.nan
        batch.log_likelihood_batch(parents, bad)
    with pytest.raises(InputError, match="matrix of branch lengths"):
        batch.log_likelihood_batch(parents, T[:, :-1])
    rooted = np.append(parents[0], 0)[None, :]
    with pytest.raises(InputError, match="parent arrays"):
        batch.log_likelihood_batch(rooted, T[:1])
    star = parents[:1].copy()
    leaf = next(v for v in range(6) if star[0, v] != 6)
    star[0, leaf] = 6  # node 6 gets three children, another node one
    with pytest.raises(InputError, match="binary"):
        batch.log_likelihood_batch(star, T[:1])
    with pytest.raises(InputError, match="taxa"):
        TopologyBatchLikelihood(aln, Taxa([f"x{i}" for i in range(6)]), JC69())
