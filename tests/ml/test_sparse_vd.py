"""Sparse variational dropout (Molchanov et al. 2017)."""

from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.ml.sparse_vd import (
    K1,
    K2,
    K3,
    dense_forward,
    keep_mask,
    kl_approximation,
    kl_numerical,
    log_alpha,
)


def test_constants_are_the_papers():
    assert (K1, K2, K3) == (0.63576, 1.87320, 1.48695)


def test_kl_approximation_is_within_001_of_the_integrated_kl():
    la = np.linspace(-8.0, 8.0, 161)
    err = np.abs(kl_approximation(la) - kl_numerical(la))
    assert err.max() < 0.01
    # and it is a good approximation, not merely a bounded one
    assert np.mean(err) < 0.005


def test_numerical_kl_matches_the_closed_form():
    """E log|X| for X ~ N(mu, s^2) = log s - (gamma + log 2)/2 + z 2F2(1,1;3/2,2;-z),
    z = mu^2/2s^2."""
    mpmath = pytest.importorskip("mpmath")
    for la in [-6.0, -1.0, 0.0, 2.5, 7.0]:
        s2 = np.exp(la)
        z = 1.0 / (2.0 * s2)
        e_log = 0.5 * la - (mpmath.euler + mpmath.log(2)) / 2 + z * mpmath.hyp2f2(1, 1, 1.5, 2, -z)
        kl = -0.5 * la + float(e_log) + 0.5 * (float(mpmath.euler) + np.log(2.0))
        assert kl_numerical(la) == pytest.approx(kl, abs=1e-10)


def test_kl_limits():
    assert kl_numerical(20.0) == pytest.approx(0.0, abs=1e-4)
    assert kl_approximation(20.0) == pytest.approx(0.0, abs=1e-8)
    # alpha -> 0: KL ~ -log(alpha)/2 + (gamma + log 2)/2, the approximation ~ -log(alpha)/2 + k1
    assert kl_approximation(-30.0) - 15.0 == pytest.approx(K1, abs=1e-12)


def test_log_alpha_clipping_and_threshold():
    theta = np.array([1.0, 1.0, 0.1, 0.0])
    log_sigma2 = np.array([2.0, 20.0, np.log(0.01) + 2.9, -1.0])
    la = log_alpha(theta, log_sigma2)
    assert la[0] == pytest.approx(2.0)
    assert la[1] == 8.0 and la[3] == 8.0
    assert la[2] == pytest.approx(2.9, abs=1e-5)
    np.testing.assert_array_equal(keep_mask(la), [True, False, True, False])
    assert not keep_mask(3.0) and keep_mask(2.999999)


def test_local_reparameterisation_matches_weight_noise():
    rng = np.random.default_rng(9)
    theta = rng.normal(size=(3, 2))
    log_sigma2 = rng.normal(size=(3, 2)) - 1.0
    x = rng.normal(size=3)
    n = 20000
    local = dense_forward(np.tile(x, (n, 1)), theta, log_sigma2, rng)
    alpha = np.exp(log_alpha(theta, log_sigma2))
    w = theta + np.sqrt(alpha) * np.abs(theta) * rng.standard_normal((n, 3, 2))
    direct = np.einsum("i,nij->nj", x, w)
    mean, var = x @ theta, (x**2) @ (alpha * theta**2)
    for sample in (local, direct):
        assert np.all(np.abs(sample.mean(axis=0) - mean) < 5 * np.sqrt(var / n))
        assert np.all(np.abs(sample.var(axis=0) / var - 1.0) < 5 * np.sqrt(2.0 / n))
    test_time = dense_forward(x, theta, log_sigma2)
    np.testing.assert_allclose(
        test_time, x @ np.where(keep_mask(log_alpha(theta, log_sigma2)), theta, 0.0)
    )


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        dense_forward(np.zeros(4), np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(InputError):
        log_alpha([1.0], [np.nan])
