"""The compiled stochastic beam search over SBN derivations: every result is a rooting of its
tree with the right probability, and sets are drawn with their exact probabilities
(all 105 rooted trees of 5 taxa enumerated by phylo.ml's expansion)."""

from __future__ import annotations

import numpy as np

from phylo.ml.enumeration import unordered_samples_without_replacement
from phylo.ml.sbn_gradients import SBNDistribution
from phylo.vi import VariationalFamily
from phylo.vi.estimators import sample_derivations
from tests.sbn.samples import random_training

from .exact import all_topologies
from .test_five_taxa import support_sample


def _family(seed, scale=1.0):
    family = VariationalFamily.from_sample(support_sample(all_topologies()), init="uniform")
    family.set_logits(np.random.default_rng(seed).normal(size=family.n_topology_params) * scale)
    return family


def test_each_derivation_is_a_rooting_of_its_tree():
    _, _, sample = random_training(9, 30, np.random.default_rng(1))
    family = VariationalFamily.from_sample(sample)
    rng = np.random.default_rng(2)
    for _ in range(20):
        ids, logp, parents = sample_derivations(family, 6, rng)
        assert len({tuple(sorted(i)) for i in ids}) == len(ids)  # distinct rooted trees
        rootings = family.sbn.rooting_param_ids(parents)
        for d, lp, roots in zip(ids, logp, rootings):
            assert any(sorted(d) == sorted(r) for r in roots.tolist())
            assert np.isclose(lp, family.sbn.log_theta[d].sum())
        assert np.all(logp <= family.sbn.log_prob(parents) + 1e-12)


def test_sets_are_drawn_with_their_probabilities():
    family = _family(3, scale=1.5)
    dist = SBNDistribution(family.sbn)
    derivations = []

    def walk(prefix):
        tokens, _ = dist.expand(prefix)
        if not tokens:
            derivations.append(prefix)
        for t in tokens:
            walk(prefix + (t,))

    walk(())
    assert len(derivations) == 105
    index = {tuple(sorted(d)): i for i, d in enumerate(derivations)}
    sets, log_ps = unordered_samples_without_replacement(dist.derivation_log_prob(derivations), 2)
    incl = np.zeros(105)
    for idx, lp in zip(sets, log_ps):
        incl[idx] += np.exp(lp)
    rng = np.random.default_rng(4)
    n = 4000
    hits = np.zeros(105)
    for _ in range(n):
        ids, _, _ = sample_derivations(family, 2, rng)
        for d in ids:
            hits[index[tuple(sorted(d.tolist()))]] += 1
    assert hits.sum() == 2 * n
    top = np.argsort(-incl)[:10]
    se = np.sqrt(incl[top] * (1 - incl[top]) / n)
    assert np.all(np.abs(hits[top] / n - incl[top]) < 4 * se)


def test_all_rooted_trees_when_k_exceeds_them():
    family = _family(5)
    ids, logp, _ = sample_derivations(family, 200, np.random.default_rng(6))
    assert len(ids) == 105 and np.isclose(np.exp(logp).sum(), 1.0)
