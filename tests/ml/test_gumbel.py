"""Gumbel-max, Gumbel-top-k and truncated Gumbels (Kool, van Hoof & Welling 2019)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import softmax

from phylo.errors import InputError
from phylo.ml.gumbel import gumbel_max, gumbel_top_k, sample_gumbel, truncate


def test_gumbel_max_draws_the_softmax():
    rng = np.random.default_rng(1)
    logits = np.array([0.5, -1.0, 1.5, 0.0])
    counts = np.bincount([gumbel_max(logits, rng) for _ in range(8000)], minlength=4)
    assert stats.chisquare(counts, 8000 * softmax(logits)).pvalue > 1e-3


def test_impossible_categories_are_never_drawn():
    rng = np.random.default_rng(2)
    logits = np.array([0.0, -np.inf, 0.3, -np.inf])
    for _ in range(200):
        assert set(gumbel_top_k(logits, 2, rng)) == {0, 2}
    with pytest.raises(InputError):
        gumbel_top_k(logits, 3, rng)


def test_truncate_matches_the_defining_formula_and_keeps_the_order():
    rng = np.random.default_rng(3)
    g = sample_gumbel(rng, np.array([0.2, -0.3, 1.0, 0.5]))
    t = 0.7
    out = truncate(g, t)
    naive = -np.log(np.exp(-t) - np.exp(-g.max()) + np.exp(-g))
    np.testing.assert_allclose(out, naive, rtol=1e-13)
    assert out.max() == t
    np.testing.assert_array_equal(np.argsort(out), np.argsort(g))
    # far out, where exp(-g) underflows and the naive formula fails, truncation still commutes
    # with a common shift of the Gumbels and of the maximum
    shift = 800.0
    far = truncate(g + shift, t + shift)
    np.testing.assert_allclose(far - shift, out, rtol=0, atol=1e-12)
    assert truncate(np.array([0.0, -np.inf]), 1.0)[1] == -np.inf


def test_truncated_gumbels_are_gumbels_conditioned_on_their_maximum():
    """Given max = T and argmax = 0, G_1 is Gumbel(phi_1) truncated to (-inf, T)."""
    rng = np.random.default_rng(4)
    phi = np.array([0.4, -0.2])
    t = 0.3
    g = sample_gumbel(rng, phi, size=(8000, 2))
    keep = g[:, 0] > g[:, 1]
    shifted = np.array([truncate(row, t)[1] for row in g[keep]])
    assert np.all(shifted < t)
    gumbel_cdf = lambda x: np.exp(-np.exp(phi[1] - x))  # noqa: E731
    cdf = lambda x: gumbel_cdf(x) / gumbel_cdf(t)  # noqa: E731
    assert stats.kstest(shifted, cdf).pvalue > 1e-3
