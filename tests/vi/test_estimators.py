"""The gradient estimators: VIMCO's coefficients are phylo.ml's VIMCO; every topology gradient
is its coefficients times the SBN's scores; every branch-length gradient is the derivative
of the step's own bound (finite differences with the same draws); the unordered set and
sum-and-sample estimators are unbiased for the exact ELBO gradient (all 15 topologies of 5
taxa enumerated, with a likelihood that depends on the topology only, so that the ELBO of
each topology has a closed form)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from phylo.likelihood import JC69, TopologyBatchLikelihood
from phylo.ml.score_function import vimco
from phylo.vi import Target, VariationalFamily, make_estimator
from phylo.vi.estimators import ESTIMATORS, vimco_coefficients
from phylo.vi.objective import draw_particles

from .exact import all_topologies, example_alignment
from .test_five_taxa import support_sample


def _family(seed):
    family = VariationalFamily.from_sample(support_sample(all_topologies()), init="uniform")
    rng = np.random.default_rng(seed)
    family.set_logits(rng.normal(size=family.n_topology_params))
    n = family.branches.n
    family.branches.set_vector(np.concatenate([rng.normal(-0.8, 0.3, n), rng.normal(-0.7, 0.2, n)]))
    return family


@pytest.fixture(scope="module")
def real():
    family = _family(1)
    target = Target(TopologyBatchLikelihood(example_alignment(), family.taxa, JC69(), threads=1))
    return family, target


def test_vimco_coefficients_are_phylo_ml_vimco():
    rng = np.random.default_rng(2)
    for k in (2, 5, 10):
        lw = rng.normal(size=k) * 5 - 800
        bound, coef = vimco_coefficients(lw)
        ref_bound, ref = vimco(lw, np.eye(k), -np.eye(k))
        assert math.isclose(bound, ref_bound) and np.allclose(coef, ref)


@pytest.mark.parametrize("name", ["vimco", "rws"])
def test_topology_gradient_is_coefficients_times_scores(real, name):
    family, target = real
    est = make_estimator(name, 6)
    rng = np.random.default_rng(3)
    parts = draw_particles(family, target, 6, copy.deepcopy(rng))
    step = est.step(family, target, 0.7, rng)
    lw = parts.log_weights(0.7)
    if name == "vimco":
        _, coef = vimco(lw, np.eye(6), -np.eye(6))
    else:
        coef = np.exp(lw - lw.max()) / np.exp(lw - lw.max()).sum()
    scores = family.sbn.grad_log_prob(parts.topologies.parents, wrt="logits")
    assert np.allclose(step.grad_phi, coef @ scores)
    assert step.evaluations == 6


@pytest.mark.parametrize("name", ESTIMATORS)
def test_branch_gradient_is_the_derivative_of_the_steps_bound(real, name):
    family, target = real
    beta = 0.6
    est = make_estimator(name, 4)
    step = est.step(family, target, beta, np.random.default_rng(4))
    v = family.branches.vector()
    rng = np.random.default_rng(5)
    try:
        for _ in range(3):
            d = rng.normal(size=v.size)
            h = 1e-6
            vals = []
            for sign in (1, -1):
                family.branches.set_vector(v + sign * h * d)
                again = make_estimator(name, 4)
                vals.append(again.step(family, target, beta, np.random.default_rng(4)).annealed)
            fd = (vals[0] - vals[1]) / (2 * h)
            assert math.isclose(fd, step.grad_psi @ d, rel_tol=1e-4, abs_tol=1e-4)
    finally:
        family.branches.set_vector(v)


class TopologyOnlyLikelihood:
    """log p(D | tau, t) = c[tau]: no dependence on the branch lengths."""

    def __init__(self, family, rng):
        self.n_taxa = family.n_taxa
        self.n_evaluations = 0
        parents = family.topologies(all_topologies()).parents
        self.values = {p.tobytes(): v for p, v in zip(parents, rng.normal(0, 2, len(parents)))}

    def _c(self, parents):
        return np.array([self.values[p.astype(np.int32).tobytes()] for p in parents])

    def log_likelihood_batch(self, parents, T):
        self.n_evaluations += len(parents)
        return self._c(parents)

    def gradient_batch(self, parents, T):
        self.n_evaluations += len(parents)
        return self._c(parents), np.zeros_like(T)


def exact_elbo_gradient(family, target):
    """sum_tau q(tau) ELBO_tau d log q(tau) / d phi, with the closed-form
    ELBO_tau = c_tau + sum_e E[log p(t_e) + x_e - log q(x_e)] + log p(tau) - log q(tau)."""
    draws = family.topologies(all_topologies())
    mu, ls = family.branches.moments(draws.index)
    rate = target.prior.rate
    per_branch = (
        math.log(rate) - rate * np.exp(mu + 0.5 * np.exp(2 * ls)) + mu
        + 0.5 * math.log(2 * math.pi) + ls + 0.5
    )  # fmt: skip
    f = (
        target.likelihood.log_likelihood_batch(draws.parents, None)
        + per_branch.sum(axis=1)
        + target.log_topology_prior
        - draws.log_q
    )
    q = np.exp(draws.log_q)
    assert math.isclose(q.sum(), 1.0)
    return family.score_sum(draws, q * f)


@pytest.mark.parametrize("name", ["unordered-set", "sum-and-sample"])
def test_elbo_estimators_are_unbiased(name):
    family = _family(6)
    target = Target(TopologyOnlyLikelihood(family, np.random.default_rng(7)))
    exact = exact_elbo_gradient(family, target)
    est = make_estimator(name, 4)
    rng = np.random.default_rng(8)
    G = np.array([est.step(family, target, 1.0, rng).grad_phi for _ in range(3000)])
    # compare along directions that mix all coordinates (single coordinates can be nonzero
    # in a handful of the draws, too few for a standard error)
    dirs = np.vstack([exact / np.linalg.norm(exact), rng.normal(size=(8, exact.size))])
    proj = G @ dirs.T
    se = proj.std(axis=0, ddof=1) / math.sqrt(len(G))
    z = (proj.mean(axis=0) - dirs @ exact) / se
    assert np.abs(z).max() < 4.0
    assert abs(dirs[0] @ exact) > 10 * se[0]  # the test has power
