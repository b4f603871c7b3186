"""Exact sample spaces, checked on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml.enumeration import (
    exact_moments,
    ordered_samples_without_replacement,
    plackett_luce_log_prob,
    samples_with_replacement,
    unordered_samples_without_replacement,
)

P = np.array([0.5, 0.3, 0.2])


def test_plackett_luce_by_hand():
    assert np.exp(plackett_luce_log_prob(np.log(P), [0, 1])) == pytest.approx(0.5 * 0.3 / 0.5)
    assert np.exp(plackett_luce_log_prob(np.log(P), [2, 1, 0])) == pytest.approx(
        0.2 * 0.3 / 0.8 * 1.0
    )


def test_unordered_pairs_by_hand():
    sets, lp = unordered_samples_without_replacement(np.log(P), 2)
    by_hand = {
        (0, 1): 0.5 * 0.3 / 0.5 + 0.3 * 0.5 / 0.7,
        (0, 2): 0.5 * 0.2 / 0.5 + 0.2 * 0.5 / 0.8,
        (1, 2): 0.3 * 0.2 / 0.7 + 0.2 * 0.3 / 0.8,
    }
    for s, l in zip(sets, lp):
        assert np.exp(l) == pytest.approx(by_hand[tuple(s)], rel=1e-14)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_every_scheme_sums_to_one(k):
    log_p = np.log(np.array([0.1, 0.4, 0.2, 0.3]))
    for scheme in (
        samples_with_replacement,
        ordered_samples_without_replacement,
        unordered_samples_without_replacement,
    ):
        _, lp = scheme(log_p, k)
        assert logsumexp(lp) == pytest.approx(0.0, abs=1e-14)


def test_exact_moments_by_hand():
    mean, cov = exact_moments(np.log([0.25, 0.75]), np.array([[0.0, 1.0], [4.0, 1.0]]))
    np.testing.assert_allclose(mean, [3.0, 1.0])
    np.testing.assert_allclose(cov, [[0.25 * 9 + 0.75 * 1, 0.0], [0.0, 0.0]])
    with pytest.raises(InputError):
        exact_moments(np.log([0.5, 0.6]), np.zeros(2))
