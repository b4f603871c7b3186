"""Rao-Blackwellised sum-and-sample (Liu et al. 2019), checked by exact enumeration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml.discrete import Categorical
from phylo.ml.enumeration import exact_moments, ordered_samples_without_replacement
from phylo.ml.rao_blackwell import (
    choose_sum_and_sample,
    stochastic_sum_and_sample,
    stochastic_sum_and_sample_gradient,
    sum_and_sample,
    sum_and_sample_gradient,
)


def complex_step_gradient(fun, theta, h=1e-30):
    theta = np.asarray(theta, dtype=float)
    out = np.empty(theta.size)
    for j in range(theta.size):
        t = theta.astype(complex)
        t[j] += 1j * h
        out[j] = fun(t).imag / h
    return out


def expected_value(theta, f):
    p = np.exp(theta - theta.real.max())
    return np.sum(p / p.sum() * f)


@pytest.fixture
def problem():
    rng = np.random.default_rng(2019)
    theta = rng.normal(scale=1.2, size=6)
    f = rng.normal(size=6) + 1.0
    return Categorical(theta), f


def sum_and_sample_space(dist, f, k):
    """Every outcome of the k-summed estimator with its exact probability."""
    order = dist.top_k(dist.n)
    summed, rest = order[:k], order[k:]
    log_rest = dist.log_mass_outside(summed)
    estimates, log_prob = [], []
    for z in rest:
        estimates.append(
            sum_and_sample_gradient(
                dist.log_probs[summed],
                f[summed],
                dist.score(summed),
                f[z],
                dist.score([z])[0],
                log_rest=log_rest,
            )
        )
        log_prob.append(dist.log_probs[z] - log_rest)
    return np.array(log_prob), np.array(estimates)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5])
def test_sum_and_sample_is_unbiased_and_never_worse_than_reinforce(problem, k):
    dist, f = problem
    log_prob, estimates = sum_and_sample_space(dist, f, k)
    mean, cov = exact_moments(log_prob, estimates)
    exact = complex_step_gradient(lambda t: expected_value(t, f), dist.logits)
    np.testing.assert_allclose(mean, exact, rtol=0, atol=1e-10)
    # single-sample REINFORCE: g(z) = f(z) score(z), z ~ q
    base = f[:, None] * dist.score(dist.enumerate())
    base_mean, base_cov = exact_moments(dist.log_probs, base)
    np.testing.assert_allclose(base_mean, exact, rtol=0, atol=1e-12)
    assert np.linalg.eigvalsh(base_cov - cov).min() > -1e-12
    if k > 0:
        assert np.trace(cov) < np.trace(base_cov)


def test_summing_everything_is_exact(problem):
    dist, f = problem
    everything = dist.enumerate()
    grad = sum_and_sample_gradient(dist.log_probs, f, dist.score(everything), log_rest=-np.inf)
    exact = complex_step_gradient(lambda t: expected_value(t, f), dist.logits)
    np.testing.assert_allclose(grad, exact, rtol=0, atol=1e-13)


def test_choose_sum_and_sample_takes_top_states_and_samples_the_rest():
    rng = np.random.default_rng(5)
    dist = Categorical([0.1, 2.0, -1.0, 1.5, 0.0])
    counts = np.zeros(dist.n)
    n = 5000
    for _ in range(n):
        summed, z, log_rest = choose_sum_and_sample(dist.log_probs, 2, rng)
        counts[z] += 1
    assert list(summed) == [1, 3]
    assert np.exp(log_rest) == pytest.approx(1.0 - dist.probs[[1, 3]].sum(), abs=1e-15)
    assert counts[[1, 3]].sum() == 0
    rest = [0, 2, 4]
    expected = n * dist.probs[rest] / dist.probs[rest].sum()
    assert stats.chisquare(counts[rest], expected).pvalue > 1e-3
    assert choose_sum_and_sample(dist.log_probs, 5, rng)[1] is None


@pytest.mark.parametrize("k", [1, 2, 4])
def test_stochastic_sum_and_sample_is_unbiased(problem, k):
    dist, f = problem
    orders, log_prob = ordered_samples_without_replacement(dist.log_probs, k)
    values = np.array([stochastic_sum_and_sample(dist.log_probs[b], f[b]) for b in orders])
    grads = np.array(
        [stochastic_sum_and_sample_gradient(dist.log_probs[b], f[b], dist.score(b)) for b in orders]
    )
    assert exact_moments(log_prob, values)[0][0] == pytest.approx(dist.probs @ f, abs=1e-12)
    exact = complex_step_gradient(lambda t: expected_value(t, f), dist.logits)
    np.testing.assert_allclose(exact_moments(log_prob, grads)[0], exact, rtol=0, atol=1e-10)


def test_missing_sample_is_an_input_error():
    with pytest.raises(InputError):
        sum_and_sample(np.log([0.2, 0.3]), np.array([1.0, 2.0]))
    with pytest.raises(InputError):
        sum_and_sample(np.log([0.7, 0.6]), np.array([1.0, 2.0]), 0.0)
    assert logsumexp([0.0]) == 0.0
