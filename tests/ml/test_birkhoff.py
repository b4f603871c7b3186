"""Birkhoff-polytope relaxations of permutations (Linderman et al. 2018)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logit
from scipy.stats import norm

from phylo.errors import InputError
from phylo.ml.birkhoff import (
    inverse_stick_breaking,
    round_to_permutation,
    rounding_log_density,
    sample_rounding,
    sample_stick_breaking,
    sinkhorn,
    stick_breaking,
    stick_breaking_from_gaussian,
    stick_breaking_log_density,
)


def assert_doubly_stochastic(x, atol=1e-12):
    np.testing.assert_allclose(x.sum(axis=-1), 1.0, rtol=0, atol=atol)
    np.testing.assert_allclose(x.sum(axis=-2), 1.0, rtol=0, atol=atol)
    assert x.min() >= -atol


def test_sinkhorn_finds_the_diagonal_scaling():
    rng = np.random.default_rng(0)
    la = rng.normal(size=(3, 5, 5))
    x = sinkhorn(la)
    assert_doubly_stochastic(x)
    # Sinkhorn's theorem: X = D1 A D2, i.e. log X - log A = r_i + c_j
    resid = np.log(x) - la
    resid = (
        resid
        - resid.mean(axis=2, keepdims=True)
        - resid.mean(axis=1, keepdims=True)
        + resid.mean(axis=(1, 2), keepdims=True)
    )
    assert np.abs(resid).max() < 1e-12
    np.testing.assert_allclose(sinkhorn(la[0], temperature=0.25), sinkhorn(4.0 * la[0]), atol=1e-12)


def test_stick_breaking_samples_are_doubly_stochastic_and_invertible():
    rng = np.random.default_rng(1)
    beta = rng.uniform(size=(50, 5, 5))
    x, logdet = stick_breaking(beta)
    assert x.shape == (50, 6, 6)
    assert_doubly_stochastic(x)
    back, logdet_back = inverse_stick_breaking(x)
    np.testing.assert_allclose(back, beta, rtol=0, atol=1e-9)
    np.testing.assert_allclose(logdet_back, logdet, rtol=0, atol=1e-9)
    xs, _ = sample_stick_breaking(rng.normal(size=(4, 4)), np.full((4, 4), 2.0), 0.3, rng, size=100)
    assert_doubly_stochastic(xs)
    corners, _ = stick_breaking(np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(corners, np.eye(3), atol=1e-15)


def numerical_log_det(fun, z, h=1e-6):
    """log|det| of the Jacobian of z -> fun(z)[:-1, :-1] by central differences."""
    d = z.size
    jac = np.empty((d, d))
    for i in range(d):
        e = np.zeros(d)
        e[i] = h
        up = fun((z.ravel() + e).reshape(z.shape))[:-1, :-1].ravel()
        down = fun((z.ravel() - e).reshape(z.shape))[:-1, :-1].ravel()
        jac[:, i] = (up - down) / (2 * h)
    sign, logdet = np.linalg.slogdet(jac)
    assert sign != 0
    return logdet


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_log_det_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.05, 0.95, size=(4, 4))
    x, logdet = stick_breaking(beta)
    assert logdet == pytest.approx(
        numerical_log_det(lambda b: stick_breaking(b)[0], beta), abs=1e-6
    )
    psi, tau = rng.normal(size=(4, 4)), 0.7
    _, logdet_psi = stick_breaking_from_gaussian(psi, tau)
    assert logdet_psi == pytest.approx(
        numerical_log_det(lambda p: stick_breaking_from_gaussian(p, tau)[0], psi), abs=1e-6
    )


def test_stick_breaking_density_for_two_items_is_logit_normal():
    """For N = 2 the matrix is fixed by x_11 = sigmoid(psi / tau), psi ~ N(mu, sigma^2)."""
    mu, sigma, tau = np.array([[0.4]]), np.array([[1.3]]), 0.6
    for x11 in [0.05, 0.5, 0.83]:
        x = np.array([[x11, 1 - x11], [1 - x11, x11]])
        psi = tau * logit(x11)
        expected = norm.logpdf(psi, mu[0, 0], sigma[0, 0]) + np.log(tau / (x11 * (1 - x11)))
        assert stick_breaking_log_density(x, mu, sigma, tau) == pytest.approx(expected, abs=1e-12)
    rng = np.random.default_rng(5)
    xs, logq = sample_stick_breaking(mu, sigma, tau, rng, size=10)
    np.testing.assert_allclose(stick_breaking_log_density(xs, mu, sigma, tau), logq, atol=1e-9)


def test_hungarian_rounding_matches_brute_force():
    rng = np.random.default_rng(6)
    perms = [np.eye(4)[list(p)] for p in itertools.permutations(range(4))]
    for _ in range(30):
        psi = rng.normal(size=(4, 4))
        best = max(perms, key=lambda p: np.sum(p * psi))
        np.testing.assert_array_equal(round_to_permutation(psi), best)


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
def test_rounding_keeps_the_nearest_permutation(tau):
    rng = np.random.default_rng(7)
    m, v = np.exp(rng.normal(size=(5, 5))), np.full((5, 5), 0.4)
    x, psi = sample_rounding(m, v, tau, rng, size=200)
    np.testing.assert_array_equal(round_to_permutation(x), round_to_permutation(psi))
    logq = rounding_log_density(x, m, v, tau)
    m_ds = sinkhorn(np.log(m))
    gauss = norm.logpdf(psi, m_ds, v).sum(axis=(1, 2))
    np.testing.assert_allclose(logq, gauss - 25 * np.log(tau), rtol=0, atol=1e-9)


def test_rounding_density_vanishes_off_its_image_and_integrates_to_one():
    tau = 0.5
    m, v = np.array([[2.0, 1.0], [1.0, 2.0]]), np.full((2, 2), 0.5)
    hole = np.array([[0.6, 0.4], [0.4, 0.6]])  # round(X) = I but round(Psi) = swap
    assert rounding_log_density(hole, m, v, tau) == -np.inf
    # Monte Carlo integral of q over R^{2x2}, proposal: Gaussians around the two permutations
    rng = np.random.default_rng(8)
    n, scale = 40000, 0.35
    centres = np.array([np.eye(2), np.eye(2)[::-1]])
    pts = centres[rng.integers(2, size=n)] + scale * rng.standard_normal((n, 2, 2))
    log_r = np.logaddexp(*[norm.logpdf(pts, c, scale).sum(axis=(1, 2)) for c in centres]) - np.log(
        2.0
    )
    ratio = np.exp(rounding_log_density(pts, m, v, tau) - log_r)
    se = ratio.std() / np.sqrt(n)
    assert se < 0.02
    assert abs(ratio.mean() - 1.0) < 5 * se


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        stick_breaking(np.array([[1.5]]))
    with pytest.raises(InputError):
        sample_rounding(np.ones((2, 2)), np.ones((2, 2)), 1.5, np.random.default_rng(0))
    with pytest.raises(InputError):
        sinkhorn(np.ones((2, 3)))
