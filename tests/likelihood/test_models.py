"""Rate matrices, transition probabilities and discrete Gamma categories."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from phylo.errors import InputError
from phylo.likelihood import GTR, HKY, JC69, K80, gamma_rates, parse_model


def test_jc69_closed_form():
    m = JC69()
    for t in (1e-5, 0.1, 1.0, 5.0):
        p = m.transition_matrix(t)
        same = 0.25 + 0.75 * np.exp(-4 * t / 3)
        assert np.allclose(np.diag(p), same, atol=1e-14)
        assert np.allclose(p[0, 1], 0.25 - 0.25 * np.exp(-4 * t / 3), atol=1e-14)


def test_k80_closed_form():
    kappa, t = 3.0, 0.3
    p = K80(kappa).transition_matrix(t)
    # Kimura (1980) with alpha = kappa beta and alpha + 2 beta = 1 substitution per unit
    beta = 1.0 / (kappa + 2.0)
    e1 = np.exp(-4 * beta * t)
    e2 = np.exp(-2 * beta * (kappa + 1) * t)
    assert np.isclose(p[0, 2], 0.25 + 0.25 * e1 - 0.5 * e2)  # transition A->G
    assert np.isclose(p[0, 1], 0.25 - 0.25 * e1)  # transversion A->C


@pytest.mark.parametrize(
    "model",
    [
        HKY(2.0, [0.1, 0.2, 0.3, 0.4]),
        GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], [0.3, 0.2, 0.15, 0.35]),
    ],
)
def test_gtr_expm_and_reversibility(model):
    q = model.rate_matrix()
    pi = model.frequencies
    assert np.allclose(q.sum(axis=1), 0)
    assert np.isclose(-(pi * np.diag(q)).sum(), 1.0)  # one substitution per unit
    assert np.allclose(pi[:, None] * q, (pi[:, None] * q).T)  # detailed balance
    assert np.allclose(pi @ q, 0)
    for t in (0.01, 0.5, 3.0):
        assert np.allclose(model.transition_matrix(t), expm(q * t), atol=1e-13)
    lam, v, vinv = model.eigen()
    assert np.allclose(v @ vinv, np.eye(4))
    assert np.allclose(v @ np.diag(lam) @ vinv, q)


def test_hky_exchangeabilities():
    m = HKY(4.0, [0.1, 0.2, 0.3, 0.4])
    assert np.allclose(m.exchangeabilities, [1, 4, 1, 1, 4, 1])


def test_gamma_rates_published_values():
    # PhyML 3.3 reports these for alpha = 0.5, 4 mean categories (Yang 1994)
    assert np.allclose(gamma_rates(0.5, 4), [0.03339, 0.25192, 0.82027, 2.89443], atol=1e-5)
    for alpha in (0.1, 1.0, 7.0):
        for median in (False, True):
            r = gamma_rates(alpha, 6, median)
            assert np.isclose(r.mean(), 1.0) and np.all(np.diff(r) > 0)


def test_gamma_mean_rates_are_category_means():
    alpha, k = 0.8, 4
    rng = np.random.default_rng(1)
    x = np.sort(rng.gamma(alpha, 1 / alpha, size=400_000))
    means = x.reshape(k, -1).mean(axis=1)
    assert np.allclose(gamma_rates(alpha, k), means, rtol=0.02)


def test_invariant_sites_keep_mean_rate_one():
    m = JC69(alpha=0.5, categories=4, pinv=0.25)
    assert np.isclose((1 - m.pinv) * (m.category_weights() * m.category_rates()).sum(), 1.0)


def test_parse_model():
    m = parse_model(
        "GTR+G4+I", rates=[1, 2, 3, 4, 5, 6], frequencies=[0.1, 0.2, 0.3, 0.4], alpha=0.3, pinv=0.2
    )
    assert m.name == "GTR" and m.n_categories == 4 and m.pinv == 0.2 and m.alpha == 0.3
    assert parse_model("HKY").frequencies == "empirical"
    assert parse_model("JC69").n_categories == 1
    assert parse_model("K80", kappa=5).exchangeabilities[1] == 5


@pytest.mark.parametrize(
    "call",
    [
        lambda: parse_model("WAG"),
        lambda: GTR([1, 1, 1, 1, 1], [0.25] * 4),
        lambda: HKY(2.0, [0.5, 0.5, 0.5, 0.5]),
        lambda: HKY(-1.0, [0.25] * 4),
        lambda: JC69(alpha=-1.0),
        lambda: JC69(pinv=1.0),
        lambda: parse_model("JC69", kappa=2.0),
    ],
)
def test_bad_parameters(call):
    with pytest.raises(InputError):
        call()
