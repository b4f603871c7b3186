"""The sampler: ESS against AR(1) processes, HMC draws against exact (power) posterior
moments of the 3-taxon problem, the gradient of the power-posterior target, determinism."""

import numpy as np
import pytest

from phylo.marglik.estimators.power import IndependentGammas, beta_temperatures
from phylo.marglik.mcmc import (
    PowerTarget,
    effective_sample_size,
    power_posterior_chains,
    sample_posterior,
)

from .exact import EXAMPLE, exact_posterior_moments, example_posterior, exponential_log_prior


def ar1(phi, n, rng):
    e = rng.standard_normal(n)
    from scipy.signal import lfilter

    e[1:] *= np.sqrt(1 - phi * phi)
    return lfilter([1.0], [1.0, -phi], e)  # x_i = phi x_{i-1} + e_i, stationary start


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9, -0.5])
def test_ess_of_ar1(phi):
    # integrated autocorrelation time of AR(1): (1 + phi) / (1 - phi)
    n = 200_000
    expected = n * (1 - phi) / (1 + phi)
    ess = np.mean([effective_sample_size(ar1(phi, n, np.random.default_rng(s))) for s in range(3)])
    assert abs(ess / expected - 1) < 0.08


def test_ess_columns_and_constant():
    rng = np.random.default_rng(0)
    X = np.column_stack([ar1(0.0, 5000, rng), ar1(0.8, 5000, rng)])
    e = effective_sample_size(X)
    assert e.shape == (2,) and e[0] > 3 * e[1]
    assert effective_sample_size(np.ones(100)) == 100


def _check_moments(samples, beta):
    mean, second = exact_posterior_moments(EXAMPLE, exponential_log_prior(10.0), beta=beta)
    T = np.exp(samples)
    ess = effective_sample_size(T)
    sd = np.sqrt(second - mean**2)
    z = (T.mean(axis=0) - mean) / (sd / np.sqrt(ess))
    assert np.all(np.abs(z) < 4.5), z
    z2 = (np.mean(T * T, axis=0) - second) / (np.std(T * T, axis=0) / np.sqrt(ess))
    assert np.all(np.abs(z2) < 4.5), z2
    assert np.all(ess > 500)


def test_hmc_matches_exact_posterior_moments():
    post, _ = example_posterior()
    chain = sample_posterior(post, np.random.default_rng(3), samples=6000, warmup=500, n_leapfrog=5)
    assert 0.5 < chain.acceptance <= 1.0
    _check_moments(chain.samples, 1.0)
    # the recorded log-likelihoods are the likelihoods of the draws
    assert np.allclose(chain.records[:5], post.log_likelihood_batch(np.exp(chain.samples[:5])))


def test_hmc_matches_exact_power_posterior_moments():
    post, _ = example_posterior()
    chain = sample_posterior(
        post, np.random.default_rng(4), samples=6000, warmup=500, n_leapfrog=5, beta=0.3
    )
    _check_moments(chain.samples, 0.3)


def test_warm_started_power_chains_match_exact_moments():
    post, _ = example_posterior()
    betas = beta_temperatures(5)
    runs = power_posterior_chains(
        post, betas, np.random.default_rng(5), samples=4000, burnin=200, warmup=500, n_leapfrog=5
    )
    for k in (1, 2, 3):
        assert runs[k]["chain"] is not None
        _check_moments(runs[k]["chain"].samples, betas[k])
    assert runs[0]["chain"] is None and runs[0]["records"].shape == (4000,)


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("with_reference", [False, True])
def test_power_target_gradient(beta, with_reference):
    post, _ = example_posterior()
    ref = IndependentGammas([2.0, 3.0, 1.5], [30.0, 20.0, 10.0]) if with_reference else None
    target = PowerTarget(post, beta, ref)
    x = np.log([0.05, 0.12, 0.2])
    v, g, rec = target(x)
    h = 1e-6
    num = np.array([(target(x + h * e)[0] - target(x - h * e)[0]) / (2 * h) for e in np.eye(3)])
    assert np.allclose(g, num, rtol=1e-5, atol=1e-6)
    # the value is beta*(log L + log p) + (1 - beta)*log r + sum x
    t = np.exp(x)
    ll = post.log_likelihood(t)
    lp = post.prior.log_pdf(t)
    lr = ref.log_pdf(t) if ref is not None else lp
    assert np.isclose(v, beta * (ll + lp) + (1 - beta) * lr + x.sum())
    assert np.isclose(rec, ll + lp - lr)


def test_gamma_reference_fit_recovers_parameters():
    rng = np.random.default_rng(0)
    T = np.column_stack([rng.gamma(4.0, 1 / 50.0, 200_000), rng.gamma(1.5, 1 / 5.0, 200_000)])
    ref = IndependentGammas.fit(T)
    assert np.allclose(ref.shape, [4.0, 1.5], rtol=0.03)
    assert np.allclose(ref.rate, [50.0, 5.0], rtol=0.03)
    from scipy import stats

    t = np.array([0.07, 0.3])
    assert np.isclose(ref.log_pdf(t), stats.gamma.logpdf(t, ref.shape, scale=1 / ref.rate).sum())


def test_temperatures_are_beta_quantiles():
    from scipy import stats

    b = beta_temperatures(50, 0.3)
    assert b[0] == 0 and b[-1] == 1 and len(b) == 50
    assert np.allclose(b, stats.beta.ppf(np.arange(50) / 49, 0.3, 1.0))


def test_same_seed_same_chain():
    post, _ = example_posterior()
    a = sample_posterior(post, np.random.default_rng(9), samples=50, warmup=60)
    b = sample_posterior(post, np.random.default_rng(9), samples=50, warmup=60)
    assert np.array_equal(a.samples, b.samples) and a.step_size == b.step_size
