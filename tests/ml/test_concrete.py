"""The Concrete / Gumbel-softmax relaxation (Maddison et al. 2017; Jang et al. 2017)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import expit, log_expit, log_softmax, logit, softmax

from phylo.errors import InputError
from phylo.ml.concrete import (
    binary_concrete_log_density,
    concrete_log_density,
    concrete_vjp,
    hard_one_hot,
    relaxed_one_hot,
    sample_binary_concrete,
    sample_concrete,
    straight_through,
    straight_through_gradient,
)


@pytest.mark.parametrize("lam", [0.4, 1.0, 2.5])
def test_binary_density_integrates_to_one(lam):
    phi = np.array([0.7, -0.4])

    def integrand(t):  # x = sigmoid(t), dx = x (1 - x) dt
        log_x = np.array([log_expit(t), log_expit(-t)])
        return np.exp(concrete_log_density(None, phi, lam, log_x=log_x) + log_x.sum())

    total, err = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, limit=400)
    assert total == pytest.approx(1.0, abs=1e-9)


def _simplex_grid(lam):
    """Trapezoid nodes in t = (t1, t2), x = softmax(t1, t2, 0); |dx_{1:2}/dt| = x1 x2 x3.

    The integrand varies on the scale 1/lam, is smooth and decays exponentially in t, so the
    trapezoidal rule on a wide grid converges geometrically (far below the tolerances used here).
    """
    bound, step = 40.0 / lam, 0.1 / lam
    t = np.arange(-bound, bound + step, step)
    t1, t2 = np.meshgrid(t, t, indexing="ij")
    log_x = log_softmax(np.stack([t1, t2, np.zeros_like(t1)], axis=-1), axis=-1)
    return log_x, step * step


@pytest.mark.parametrize("lam", [0.5, 1.0, 2.0])
def test_three_category_density_integrates_to_one(lam):
    phi = np.array([0.3, -0.5, 0.9])
    log_x, area = _simplex_grid(lam)
    dens = np.exp(concrete_log_density(None, phi, lam, log_x=log_x) + log_x.sum(axis=-1))
    assert dens.sum() * area == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("lam", [0.3, 1.0, 3.0])
def test_binary_concrete_density_and_cdf_are_consistent(lam):
    phi = 0.8
    x = np.array([0.05, 0.3, 0.5, 0.9])
    two = concrete_log_density(np.stack([x, 1.0 - x], axis=1), np.array([phi, 0.0]), lam)
    np.testing.assert_allclose(binary_concrete_log_density(x, phi, lam), two, rtol=1e-12)
    for xi in x:  # P(X <= x) = sigmoid(lam * logit(x) - phi)
        mass = integrate.quad(
            lambda u: np.exp(binary_concrete_log_density(u, phi, lam)), 0.0, xi, epsabs=1e-13
        )[0]
        assert mass == pytest.approx(expit(lam * logit(xi) - phi), abs=1e-8)


def test_samplers_follow_the_binary_concrete_law():
    rng = np.random.default_rng(17)
    phi, lam = 0.6, 0.7
    cdf = lambda x: expit(lam * logit(x) - phi)  # noqa: E731
    xb = sample_binary_concrete(phi, lam, rng, size=4000)
    assert stats.kstest(xb, cdf).pvalue > 1e-3
    x = sample_concrete(np.array([phi + 1.0, 1.0]), lam, rng, size=4000)
    np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-14)
    assert stats.kstest(x[:, 0], cdf).pvalue > 1e-3


def test_three_category_sampler_matches_density_moments():
    rng = np.random.default_rng(23)
    phi, lam = np.array([0.3, -0.5, 0.9]), 0.8
    log_x, area = _simplex_grid(lam)
    dens = np.exp(concrete_log_density(None, phi, lam, log_x=log_x) + log_x.sum(axis=-1))
    exact = np.sum(np.exp(2 * log_x[..., 0]) * dens) * area
    x = sample_concrete(phi, lam, rng, size=20000)
    se = (x[:, 0] ** 2).std() / np.sqrt(len(x))
    assert abs(np.mean(x[:, 0] ** 2) - exact) < 4 * se


def test_argmax_of_the_relaxation_is_the_gumbel_max_sample():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=5)
    g = rng.gumbel(size=(200, 5))
    hard = np.argmax(phi + g, axis=1)
    for lam in [0.05, 0.5, 1.0, 10.0]:
        np.testing.assert_array_equal(np.argmax(relaxed_one_hot(phi, lam, g), axis=1), hard)
    # as lam -> 0 the relaxation approaches the one-hot vector: every other coordinate is
    # at most exp(-gap / lam), gap being the distance between the two largest perturbed logits
    lam = 1e-2
    cold = relaxed_one_hot(phi, lam, g)
    top2 = np.sort(phi + g, axis=1)[:, -2:]
    bound = 4 * np.exp(-(top2[:, 1] - top2[:, 0]) / lam)
    err = np.abs(cold - hard_one_hot(cold)).max(axis=1)
    assert np.all(err <= bound * (1 + 1e-9) + 1e-300)
    np.testing.assert_array_equal(hard_one_hot(cold).argmax(axis=1), hard)


def test_vjp_matches_finite_differences():
    rng = np.random.default_rng(4)
    phi, lam = rng.normal(size=4), 0.6
    g = rng.gumbel(size=4)
    u = rng.normal(size=4)
    x = relaxed_one_hot(phi, lam, g)
    h = 1e-6
    fd = np.array(
        [
            (u @ relaxed_one_hot(phi + h * e, lam, g) - u @ relaxed_one_hot(phi - h * e, lam, g))
            / (2 * h)
            for e in np.eye(4)
        ]
    )
    np.testing.assert_allclose(concrete_vjp(x, lam, u), fd, rtol=0, atol=1e-9)
    assert straight_through_gradient(x, lam, u) == pytest.approx(concrete_vjp(x, lam, u))


def test_straight_through_hard_samples_are_categorical():
    rng = np.random.default_rng(8)
    phi = np.array([1.0, 0.2, -0.5])
    counts = np.zeros(3)
    for _ in range(6000):
        hard, soft = straight_through(phi, 0.5, rng)
        assert hard.sum() == 1.0 and hard[np.argmax(soft)] == 1.0
        counts += hard
    assert stats.chisquare(counts, 6000 * softmax(phi)).pvalue > 1e-3


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        concrete_log_density(np.array([0.5, 0.6]), np.zeros(2), 1.0)
    with pytest.raises(InputError):
        sample_concrete(np.zeros(3), 0.0, np.random.default_rng(0))
    with pytest.raises(InputError):
        sample_concrete(np.zeros(3), 1.0, 42)
