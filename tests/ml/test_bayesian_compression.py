"""Bayesian compression (Louizos, Ullrich & Welling 2017): KL terms and bit precision."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from phylo.errors import InputError
from phylo.ml.bayesian_compression import (
    kl_group_horseshoe,
    kl_group_normal_jeffreys,
    kl_lognormal_gamma,
    kl_lognormal_inverse_gamma,
    kl_standard_normal,
    layer_bit_precision,
    posterior_weight_moments,
    round_to_bits,
    significand_bits,
)
from phylo.ml.sparse_vd import kl_approximation


def kl_by_quadrature(mu, sigma2, log_prior_pdf):
    """KL(LN(mu, sigma2) || prior), integrated over y = log x."""
    s = np.sqrt(sigma2)

    def integrand(y):
        log_q = stats.norm.logpdf(y, mu, s)
        log_p = log_prior_pdf(np.exp(y)) + y  # density of log X under the prior
        return np.exp(log_q) * (log_q - log_p)

    return integrate.quad(integrand, mu - 40 * s, mu + 40 * s, epsabs=1e-12, limit=200)[0]


@pytest.mark.parametrize(
    "mu,sigma2,shape,rate", [(0.0, 1.0, 0.5, 1.0), (-1.3, 0.2, 0.5, 25.0), (2.0, 0.05, 1.7, 0.3)]
)
def test_lognormal_gamma_kl_matches_quadrature(mu, sigma2, shape, rate):
    prior = stats.gamma(shape, scale=1.0 / rate)
    expected = kl_by_quadrature(mu, sigma2, prior.logpdf)
    assert kl_lognormal_gamma(mu, np.log(sigma2), shape, rate) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "mu,sigma2,shape,scale", [(0.0, 1.0, 0.5, 1.0), (1.1, 0.3, 0.5, 1.0), (-0.5, 0.02, 2.5, 4.0)]
)
def test_lognormal_inverse_gamma_kl_matches_quadrature(mu, sigma2, shape, scale):
    prior = stats.invgamma(shape, scale=scale)
    expected = kl_by_quadrature(mu, sigma2, prior.logpdf)
    assert kl_lognormal_inverse_gamma(mu, np.log(sigma2), shape, scale) == pytest.approx(
        expected, abs=1e-9
    )


def test_standard_normal_kl_matches_quadrature():
    mu, s2 = 0.7, 0.3
    f = lambda w: (
        stats.norm.pdf(w, mu, np.sqrt(s2))
        * (  # noqa: E731
            stats.norm.logpdf(w, mu, np.sqrt(s2)) - stats.norm.logpdf(w)
        )
    )
    expected = integrate.quad(f, -20, 20, epsabs=1e-13)[0]
    assert kl_standard_normal(mu, np.log(s2)) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("tau", [0.1, 1.0, 3.0])
def test_gamma_inverse_gamma_split_gives_the_half_cauchy(tau):
    """sqrt(a b) ~ C+(0, tau) for a ~ Gamma(1/2, rate 1/tau^2), b ~ InvGamma(1/2, scale 1)."""
    a, b = stats.gamma(0.5, scale=tau**2), stats.invgamma(0.5, scale=1.0)
    for x in [0.3 * tau, tau, 4.0 * tau]:
        cdf = integrate.quad(
            lambda v: b.pdf(v) * a.cdf(x * x / v), 0, np.inf, epsabs=1e-12, limit=200
        )[0]
        assert cdf == pytest.approx(2.0 / np.pi * np.arctan(x / tau), abs=1e-8)


def test_layer_kls_are_the_sums_of_their_terms():
    rng = np.random.default_rng(0)
    z_mu, z_ls2 = rng.normal(1.0, 0.1, size=4), rng.normal(-4.0, 1.0, size=4)
    w_mu, w_ls2 = rng.normal(size=(3, 4)), rng.normal(-3.0, 1.0, size=(3, 4))
    la = z_ls2 - np.log(z_mu**2 + 1e-8)
    by_hand = np.sum(
        -(0.63576 / (1 + np.exp(-(1.87320 + 1.48695 * la))) - 0.5 * np.log1p(np.exp(-la)) - 0.63576)
    )
    by_hand += np.sum(-0.5 * w_ls2 + 0.5 * (np.exp(w_ls2) + w_mu**2) - 0.5)
    assert kl_group_normal_jeffreys(z_mu, z_ls2, w_mu, w_ls2) == pytest.approx(by_hand, rel=1e-13)
    assert np.sum(kl_approximation(la)) < by_hand
    parts = dict(
        sa_mu=0.1,
        sa_log_sigma2=-2.0,
        sb_mu=-0.2,
        sb_log_sigma2=-1.0,
        alpha_mu=z_mu,
        alpha_log_sigma2=z_ls2,
        beta_mu=-z_mu,
        beta_log_sigma2=z_ls2,
        w_mu=w_mu,
        w_log_sigma2=w_ls2,
    )
    total = kl_group_horseshoe(**parts, tau0=1e-3)
    expected = (
        kl_lognormal_gamma(0.1, -2.0, 0.5, 1e6)
        + kl_lognormal_inverse_gamma(-0.2, -1.0, 0.5, 1.0)
        + kl_lognormal_gamma(z_mu, z_ls2, 0.5, 1.0).sum()
        + kl_lognormal_inverse_gamma(-z_mu, z_ls2, 0.5, 1.0).sum()
        + kl_standard_normal(w_mu, w_ls2).sum()
    )
    assert total == pytest.approx(float(expected), rel=1e-13)


def test_posterior_weight_moments_match_sampling():
    rng = np.random.default_rng(1)
    z_mu, z_var, w_mu, w_var = 0.9, 0.04, -1.5, 0.09
    mean, var = posterior_weight_moments(z_mu, z_var, w_mu, w_var)
    n = 200000
    w = rng.normal(z_mu, np.sqrt(z_var), n) * rng.normal(w_mu, np.sqrt(w_var), n)
    assert abs(w.mean() - mean) < 5 * np.sqrt(var / n)
    assert var == pytest.approx((z_mu**2 + z_var) * (w_mu**2 + w_var) - mean**2, rel=1e-14)
    assert abs(w.var() / var - 1.0) < 0.02


def test_bit_precision_rule_by_hand():
    # u(t) = 2^-t; bits = #{t : 2V < 2^-t}
    assert significand_bits(2.0**-6) == 4  # 2V = 2^-5: t = 1..4
    assert significand_bits(0.99 * 2.0**-6) == 5
    assert significand_bits(0.0) == 23
    assert significand_bits(0.25) == 0
    np.testing.assert_array_equal(significand_bits(np.array([2.0**-6, 2.0**-9, 1.0])), [4, 7, 0])
    assert layer_bit_precision([2.0**-6, 2.0**-9], max_abs_weight=3.0) == (6, 3)
    assert layer_bit_precision([2.0**-6, 2.0**-9], 0.5, reduce="max") == (7, 1)
    assert round_to_bits(0.3, 2) == 0.25
    assert round_to_bits(-0.3, 3) == -0.25
    with pytest.raises(InputError):
        layer_bit_precision([0.1], 1.0, reduce="median")
