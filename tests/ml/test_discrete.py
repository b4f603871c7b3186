"""The categorical distribution as the gradient estimators see it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from phylo.errors import InputError
from phylo.ml.discrete import Categorical, DiscreteDistribution


def test_score_is_the_gradient_of_the_log_probability():
    theta = np.array([0.3, -1.2, 0.8, 0.0])
    dist = Categorical(theta)
    for x in range(4):
        grad = np.empty(4)
        for j in range(4):
            t = theta.astype(complex)
            t[j] += 1e-30j
            lse = np.log(np.sum(np.exp(t)))
            grad[j] = (t[x] - lse).imag / 1e-30
        np.testing.assert_allclose(dist.score([x])[0], grad, rtol=0, atol=1e-15)
    assert isinstance(dist, DiscreteDistribution)


def test_sampling_top_k_and_complement_mass():
    rng = np.random.default_rng(0)
    dist = Categorical([1.0, 2.0, 1.0, -np.inf])
    assert list(dist.top_k(3)) == [1, 0, 2]
    assert dist.log_mass_outside([1]) == pytest.approx(np.log(1 - dist.probs[1]), abs=1e-15)
    assert dist.log_mass_outside([0, 1, 2, 3]) == -np.inf
    x = dist.sample(rng, 6000)
    assert stats.chisquare(np.bincount(x, minlength=3)[:3], 6000 * dist.probs[:3]).pvalue > 1e-3
    for _ in range(50):
        assert dist.sample_outside(rng, [1, 2]) == 0
    s = dist.sample_without_replacement(rng, 3)
    assert sorted(s) == [0, 1, 2]


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        Categorical([-np.inf, -np.inf])
    with pytest.raises(InputError):
        Categorical([[0.0, 1.0]])
    dist = Categorical([0.0, 1.0])
    with pytest.raises(InputError):
        dist.log_prob([2])
    with pytest.raises(InputError):
        dist.log_prob([0.5])
