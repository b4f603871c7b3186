"""KL(reference || model) against a computation by enumeration on 5 taxa.

The model's probabilities come from the brute-force SBN of ``brute.py`` (every rooting of every
tree listed); the reference is pooled by hand from its runs' weights.  Neither uses
phylo.sbn.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from phylo.sbn import KL_FLOOR, fit, kl_to_reference
from phylo.trees import Taxa, TreeSample, parse_newick
from phylo.trees.sample import RunInfo

from . import brute
from .samples import names, random_training

N = 5


def weighted_runs(trees, weights, rooted, order):
    """A sample of weighted runs (``weights[r][t]``: weight of ``trees[t]`` in run ``r``,
    as in MrBayes .trprobs files) whose taxa are listed in the order ``order``."""
    taxa = Taxa([names(N)[i] for i in order])
    parents = np.stack(
        [
            parse_newick(brute.newick(t, names(N)) + ";", taxa=taxa, rooted=rooted).parent
            for t in trees
        ]
    )
    counts = np.asarray(weights, dtype=float).T
    runs = [RunInfo(f"<run {r}>", len(trees), 0, 1, len(trees), True) for r in range(len(weights))]
    return TreeSample(taxa, rooted, parents, counts, runs, [np.arange(len(trees))] * len(runs))


def pooled(weights, trees_per_run):
    """The reference probabilities, pooled by hand."""
    w = np.asarray(weights, dtype=float)
    if trees_per_run is None:
        return (w / w.sum(axis=1, keepdims=True)).mean(axis=0)
    counts = [[round(x * trees_per_run) for x in run] for run in w]
    return np.array([sum(c[t] for c in counts) for t in range(w.shape[1])]) / (
        len(w) * trees_per_run
    )


def brute_q(method, train, train_w, pool, rooted):
    """The model's probability of every topology of ``pool``, by enumeration."""
    if method == "srf":
        freq = {id(t): w / sum(train_w) for t, w in zip(train, train_w)}
        return np.array([freq.get(id(t), 0.0) for t in pool])
    theta = brute.simple_average(train, train_w, rooted=rooted)
    return np.array(
        [
            brute.tree_prob(theta, [brute.rooted_events(t)] if rooted else brute.rootings(t))
            for t in pool
        ]
    )


@pytest.mark.parametrize("rooted", [False, True])
@pytest.mark.parametrize("method", ["sa", "srf"])
@pytest.mark.parametrize("trees_per_run", [None, 20])
def test_kl_to_reference_equals_enumeration(rooted, method, trees_per_run):
    rng = np.random.default_rng(11)
    train, train_w, sample = random_training(N, 4, rng, rooted)
    model = fit(sample, method)
    pool = brute.rooted_topologies(range(N)) if rooted else brute.unrooted_topologies(N)
    # the training trees are the pool's own objects: SRF finds them by identity
    pool = [next((t for t in train if t == u), u) for u in pool]
    weights = rng.dirichlet(np.full(len(pool), 0.3), size=2)
    weights[:, [any(t is u for u in train) for t in pool]] += 0.1  # some mass in the support
    weights /= weights.sum(axis=1, keepdims=True)
    order = [3, 0, 4, 1, 2]  # the reference lists its taxa in another order than the model
    reference = weighted_runs(pool, weights, rooted, order)

    p = pooled(weights, trees_per_run)
    q = brute_q(method, train, train_w, pool, rooted)
    keep = p > 0
    # the case covers reference trees outside the model's support, and (when counts are
    # rounded) topologies the pooling drops
    assert np.any(q[keep] == 0) and np.any(q[keep] > 0)
    assert np.any(~keep) == (trees_per_run is not None)

    for floor in (KL_FLOOR, 1e-3):
        want = sum(
            pi * math.log(pi) - pi * math.log(max(qi, floor)) for pi, qi in zip(p[keep], q[keep])
        )
        got = kl_to_reference(model, reference, trees_per_run, floor)
        assert got.value == pytest.approx(want, rel=1e-12)
        assert got.floor == floor
    assert got.reference_topologies == int(keep.sum())
    assert got.reference_mass_in_support == pytest.approx(p[keep & (q > 0)].sum(), rel=1e-12)
    assert got.model_mass_on_reference == pytest.approx(q[keep].sum(), rel=1e-12)
    np.testing.assert_allclose(np.sort(got.p), np.sort(p[keep]), rtol=1e-12)
    np.testing.assert_allclose(np.sort(got.q), np.sort(q[keep]), rtol=1e-12, atol=1e-300)
    # the topologies are reported on the model's taxa, with the model's probabilities
    np.testing.assert_allclose(model.prob(got.topologies), got.q, rtol=1e-12)


def test_kl_of_a_distribution_from_itself_is_zero():
    rng = np.random.default_rng(3)
    _, _, sample = random_training(N, 6, rng)
    got = kl_to_reference(fit(sample, "srf"), sample)
    assert got.value == pytest.approx(0.0, abs=1e-15)
    assert got.reference_mass_in_support == pytest.approx(1.0, rel=1e-15)
    assert got.model_mass_on_reference == pytest.approx(1.0, rel=1e-15)
    assert got.reference_topologies == sample.n_topologies
