"""Importance weights, their reparameterised gradients (against finite differences of the
likelihood itself), densities, the topology prior and the bounds' ordering."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from phylo.likelihood import JC69, TopologyBatchLikelihood
from phylo.vi import Target, VariationalFamily, draw_particles, evaluate, log_topology_prior
from phylo.vi.objective import NonFiniteError, logsumexp

from .exact import all_topologies, example_alignment
from .test_five_taxa import support_sample


@pytest.fixture(scope="module")
def problem():
    aln = example_alignment()
    family = VariationalFamily.from_sample(support_sample(all_topologies()))
    rng = np.random.default_rng(1)
    family.branches.set_vector(
        np.concatenate(
            [rng.normal(-0.8, 0.3, family.branches.n), rng.normal(-0.7, 0.2, family.branches.n)]
        )
    )
    target = Target(TopologyBatchLikelihood(aln, family.taxa, JC69(), threads=1))
    return family, target


def test_topology_prior_counts_unrooted_topologies():
    assert math.isclose(log_topology_prior(4), -math.log(3))
    assert math.isclose(log_topology_prior(5), -math.log(15))
    assert math.isclose(log_topology_prior(27), -math.log(math.prod(range(3, 50, 2))))


def test_logsumexp_is_scipys():
    x = np.random.default_rng(2).normal(size=(4, 7)) * 300
    assert np.isclose(logsumexp(x), special.logsumexp(x))
    assert np.allclose(logsumexp(x, axis=1), special.logsumexp(x, axis=1))
    assert logsumexp(np.array([-np.inf, -np.inf])) == -np.inf


def test_particle_densities(problem):
    family, target = problem
    parts = draw_particles(family, target, 20, np.random.default_rng(3))
    mu, ls = family.branches.moments(parts.topologies.index)
    ref_q = stats.norm.logpdf(parts.x, mu, np.exp(ls)).sum(axis=1)
    assert np.allclose(parts.log_q_branch, ref_q)
    t = np.exp(parts.x)
    ref_prior = stats.expon.logpdf(t, scale=0.1).sum(axis=1) + parts.x.sum(axis=1) - math.log(15)
    assert np.allclose(parts.log_prior, ref_prior)
    ll = target.likelihood.log_likelihood_batch(parts.topologies.parents, t)
    assert np.allclose(parts.log_likelihood, ll)
    lw = parts.log_weights(0.3)
    assert np.allclose(lw, 0.3 * ll + ref_prior - ref_q - parts.topologies.log_q)


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_weight_gradients_are_derivatives_of_the_weights(problem, beta):
    family, target = problem
    parts = draw_particles(family, target, 3, np.random.default_rng(4))
    d_mu, d_ls = parts.weight_gradients(beta)
    mu, ls = family.branches.moments(parts.topologies.index)
    eps = parts.eps

    def log_w(j, m, s):
        x = m + np.exp(s) * eps[j]
        t = np.exp(x)
        ll = target.likelihood.log_likelihood_batch(parts.topologies.parents[j : j + 1], t[None])
        prior = np.sum(math.log(10) - 10 * t) + x.sum()
        log_q = np.sum(-0.5 * math.log(2 * math.pi) - s - 0.5 * eps[j] ** 2)
        return beta * ll[0] + prior - log_q

    h = 1e-6
    for j in range(3):
        for e in (0, 4, 6):
            step = np.zeros_like(mu[j])
            step[e] = h
            fd_mu = (log_w(j, mu[j] + step, ls[j]) - log_w(j, mu[j] - step, ls[j])) / (2 * h)
            fd_ls = (log_w(j, mu[j], ls[j] + step) - log_w(j, mu[j], ls[j] - step)) / (2 * h)
            assert math.isclose(fd_mu, d_mu[j, e], rel_tol=1e-5, abs_tol=1e-5)
            assert math.isclose(fd_ls, d_ls[j, e], rel_tol=1e-5, abs_tol=1e-5)


def test_infinite_branch_lengths_are_reported(problem):
    family, target = problem
    v = family.branches.vector()
    try:
        family.branches.set_vector(
            np.concatenate([v[: family.branches.n], np.full(family.branches.n, 800.0)])
        )
        with pytest.raises(NonFiniteError):
            draw_particles(family, target, 5, np.random.default_rng(5))
    finally:
        family.branches.set_vector(v)


def test_bounds_are_ordered_on_the_same_draws(problem):
    family, target = problem
    ev = evaluate(family, target, np.random.default_rng(6), particles=200, repeats=4, k=10)
    # Jensen on each batch: mean log w <= mean over groups of log mean w <= log mean w
    assert np.all(ev.elbo <= ev.bound_k + 1e-12)
    assert np.all(ev.bound_k <= ev.log_ml + 1e-12)
    s = ev.summary()
    assert s["elbo"] == pytest.approx(ev.elbo.mean()) and s["repeats"] == 4
