"""Site repeats: nodes computed once per class of patterns alike below them.

The classes are checked against their definition (the tip columns below the node), and
every likelihood computed with them against the same likelihood computed per pattern and
against pruning in log space.
"""

from __future__ import annotations

import numpy as np
import pytest

from phylo.likelihood import GTR, HKY, JC69, TreeLikelihood, random_tree, simulate_alignment
from phylo.likelihood import tree_likelihood as tl_module
from tests.likelihood.test_kernels import general_path, with_ambiguity
from tests.likelihood.test_tree_likelihood import logspace_pruning

PI = [0.1, 0.2, 0.3, 0.4]
MODELS = [
    JC69(),
    JC69(alpha=0.4, categories=4, pinv=0.1),
    HKY(1.0, PI, alpha=0.8, categories=3),  # F81-type with three categories
    GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4, pinv=0.05),
]


def leaves_below(topo, n_taxa):
    below = {c: [c] for c in range(n_taxa)}
    for row in topo:
        below[int(row[0])] = sorted(sum((below[int(c)] for c in row[2 : 2 + row[1]]), []))
    return below


def problem(n, sites, seed, model=None, mean=0.1):
    model = JC69() if model is None else model
    rng = np.random.default_rng(seed)
    tree = random_tree(n, rng, mean, 1e-4)
    aln = with_ambiguity(simulate_alignment(tree, model, sites, rng), rng, 0.03)
    return aln, tree, rng


@pytest.mark.parametrize("n,seed", [(6, 1), (30, 2), (80, 3)])
def test_classes_are_the_distinct_tip_columns_below_each_node(n, seed):
    aln, tree, _ = problem(n, 300, seed)
    lik = TreeLikelihood(aln, tree, JC69(), site_repeats=False)
    topo, tips = lik._topo, lik._tips  # tips (n, 4, P)
    table, maps = tl_module.site_repeat_plan(
        topo, tl_module.SubtreeClasses(lik.patterns.codes), ratio=1.0
    )
    below = leaves_below(topo, n)
    P = tips.shape[2]
    assert table.shape == (topo.shape[0], 5)

    def cmap(v, column, length):  # one map, read from the table
        o = table[v - n, column]
        return maps[o : o + length]

    for idx, row in enumerate(topo):
        v, nk = int(row[0]), int(row[1])
        U = table[v - n, 0]
        if idx == topo.shape[0] - 1 or nk != 2:
            assert U == 0  # the root is never compressed
            continue
        # the definition: patterns alike below v <=> identical tip columns below v
        cols = tips[below[v]].reshape(-1, P).T  # (P, 4 * leaves)
        distinct, expect = np.unique(cols, axis=0, return_inverse=True)
        assert U == distinct.shape[0]
        own = cmap(v, 4, P)
        assert own.shape == (P,) and own.max() == U - 1
        # same class <=> same columns: the two partitions of the patterns coincide
        pairs = np.unique(np.stack([own, expect.reshape(-1)]), axis=1)
        assert pairs.shape[1] == U
        # class u reads each child at a column standing for that class's patterns
        for j in range(2):
            c = int(row[2 + j])
            reads = cmap(v, 1 + j, U)
            for u in range(U):
                p = np.flatnonzero(own == u)
                if c < n:
                    q = reads[u]
                    assert (tips[c][:, p] == tips[c][:, [q]]).all()
                else:
                    assert (cmap(c, 4, P)[p] == reads[u]).all()
    # the maps lie end to end, each as long as it needs: 2 U + P for a compressed node, P
    # for each compressed child of one that is not
    compressed = {int(r[0]) for r in topo if table[int(r[0]) - n, 0] > 0}
    need = sum(2 * table[v - n, 0] + P for v in compressed)
    need += sum(
        P
        for r in topo
        if int(r[0]) not in compressed
        for c in r[2 : 2 + r[1]]
        if int(c) in compressed
    )
    assert maps.shape == (need,)


@pytest.mark.parametrize("model", MODELS, ids=["JC", "JC+G4+I", "F81+G3", "GTR+G4+I"])
@pytest.mark.parametrize("ratio", [0.5, 1.0])
@pytest.mark.parametrize("n", [5, 23, 60])
def test_site_repeats_give_the_per_pattern_likelihood(model, ratio, n, monkeypatch):
    monkeypatch.setattr(tl_module, "SITE_REPEAT_RATIO", ratio)
    aln, tree, rng = problem(n, 200, 10 + n, model, 0.15)
    fast = TreeLikelihood(aln, tree, model, batch_threads=2)
    plain = TreeLikelihood(aln, tree, model, site_repeats=False)
    assert fast._ncols[:, 0].any() and not plain._ncols.size
    T = rng.exponential(0.2, size=(4, fast.n_branches))
    T[1, rng.integers(fast.n_branches)] = 0.0
    for t in T:
        ref = plain.log_likelihood(t)
        assert abs(fast.log_likelihood(t) - ref) < 1e-12 * abs(ref)
        assert np.allclose(
            fast.pattern_log_likelihoods(t), plain.pattern_log_likelihoods(t), rtol=1e-12, atol=0.0
        )
        ll, g = fast.gradient(t)  # the gradient runs per pattern
        assert abs(ll - ref) < 1e-12 * abs(ref)
    assert np.allclose(
        fast.log_likelihood_batch(T), [plain.log_likelihood(t) for t in T], rtol=1e-12, atol=0.0
    )
    if not model.pinv:  # (the log-space pruning has no +I)
        assert abs(
            fast.log_likelihood(T[0]) - logspace_pruning(aln, tree, model, T[0])
        ) < 1e-10 * abs(plain.log_likelihood(T[0]))
    if model.__class__ is not GTR:  # the general kernels on an F81-type model
        slow = general_path(TreeLikelihood(aln, tree, model))
        assert slow._ncols[:, 0].any()
        assert abs(slow.log_likelihood(T[2]) - plain.log_likelihood(T[2])) < 1e-12 * abs(
            plain.log_likelihood(T[2])
        )


@pytest.mark.parametrize(
    "model", [JC69(), GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4)]
)
def test_rescaling_inside_compressed_nodes(model, monkeypatch):
    """200 taxa, long branches: partials of compressed nodes fall below the threshold and
    their exponents must reach every pattern of the class."""
    monkeypatch.setattr(tl_module, "SITE_REPEAT_RATIO", 1.0)  # compress all that can be
    rng = np.random.default_rng(201)
    tree = random_tree(200, rng, 0.4, 1e-4)
    aln = simulate_alignment(tree, model, 60, rng)
    t = tree.branch_lengths[:-1]
    lik = TreeLikelihood(aln, tree, model)
    assert lik._ncols[:, 0].sum() > 0
    plain = TreeLikelihood(aln, tree, model, site_repeats=False)
    site = lik.pattern_log_likelihoods(t)
    assert site.min() < -69.4 * 1.5  # far below 2^-100: rescaled on the way
    ref = logspace_pruning(aln, tree, model, t)
    assert abs(lik.log_likelihood(t) - ref) < 1e-10 * abs(ref)
    assert np.allclose(site, plain.pattern_log_likelihoods(t), rtol=1e-12, atol=0.0)


def test_large_problems_fall_back_to_patterns(monkeypatch):
    """Column maps larger than the allowance: no site repeats, the usual blocks, same
    numbers; with site repeats the likelihood runs as one block whatever the cache size."""
    aln, tree, rng = problem(12, 400, 7)
    t = tree.branch_lengths[:-1]
    ref = TreeLikelihood(aln, tree, JC69(), site_repeats=False).log_likelihood(t)
    monkeypatch.setattr(tl_module, "CACHE_BYTES_LIKELIHOOD", 1)
    monkeypatch.setattr(tl_module, "MIN_BLOCK", 64)
    small = TreeLikelihood(aln, tree, JC69())
    assert small._ncols[:, 0].any() and len(small._lbounds) == 2
    monkeypatch.setattr(tl_module, "SITE_REPEAT_MAX_BYTES", 10)
    lik = TreeLikelihood(aln, tree, JC69())
    assert not lik._ncols.size and len(lik._lbounds) > 2
    for other in (small, lik):
        assert abs(other.log_likelihood(t) - ref) < 1e-12 * abs(ref)


def test_traversal_rooted_where_site_repeats_cost_least():
    aln, tree, _ = problem(20, 400, 12)
    lik = TreeLikelihood(aln, tree, JC69())
    classes = tl_module.SubtreeClasses(lik.patterns.codes)
    parent = np.asarray(tree.parent)
    costs = {
        r: tl_module.site_repeat_cost(tl_module.topology_arrays(parent, 20, r), classes)
        for r in range(20, parent.shape[0])
    }
    chosen = int(lik._topo[-1, 0])
    assert costs[chosen] == min(costs.values())
    assert len(set(costs.values())) > 1  # the choice mattered here
    # an explicit root is kept, and every rooting gives the same likelihood
    t = tree.branch_lengths[:-1]
    ref = lik.log_likelihood(t)
    for r in (20, 25, parent.shape[0] - 1):
        other = TreeLikelihood(aln, tree, JC69(), root=r)
        assert int(other._topo[-1, 0]) == r
        assert abs(other.log_likelihood(t) - ref) < 1e-12 * abs(ref)
        assert np.allclose(other.gradient(t)[1], lik.gradient(t)[1], rtol=1e-10, atol=1e-10)
