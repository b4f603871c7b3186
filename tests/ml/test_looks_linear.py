"""Looks-linear initialisation of CReLU networks (Balduzzi et al. 2017)."""

from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.ml.looks_linear import LooksLinearNetwork, crelu, looks_linear_weights


@pytest.mark.parametrize("kind", ["orthogonal", "gaussian"])
def test_network_is_a_linear_map_at_initialisation(kind):
    rng = np.random.default_rng(0)
    net = LooksLinearNetwork([6, 8, 8, 8, 3], rng, kind=kind)
    x = rng.normal(size=(100, 6))
    expected = x @ net.linear_map().T
    np.testing.assert_allclose(net.forward(x), expected, rtol=0, atol=1e-12)
    # linearity itself, without reference to the blocks: f(a x + b y) = a f(x) + b f(y)
    y = rng.normal(size=(100, 6))
    np.testing.assert_allclose(
        net.forward(2.0 * x - 3.0 * y), 2.0 * net.forward(x) - 3.0 * net.forward(y), atol=1e-11
    )


def test_moving_the_halves_apart_breaks_linearity():
    rng = np.random.default_rng(1)
    net = LooksLinearNetwork([4, 5, 2], rng)
    net.weights[1][:, :5] += 0.1 * rng.normal(size=(2, 5))
    x = rng.normal(size=(50, 4))
    assert np.abs(net.forward(-x) + net.forward(x)).max() > 1e-3


def test_mirrored_weights_and_orthogonal_blocks():
    rng = np.random.default_rng(2)
    w, block = looks_linear_weights(5, 5, rng)
    np.testing.assert_array_equal(w[:, :5], -w[:, 5:])
    np.testing.assert_allclose(block @ block.T, np.eye(5), atol=1e-12)
    x = rng.normal(size=(20, 5))
    np.testing.assert_allclose(crelu(x) @ w.T, x @ block.T, atol=1e-13)
    assert crelu(np.array([-2.0, 3.0])).tolist() == [0.0, 3.0, 2.0, 0.0]


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        LooksLinearNetwork([3], np.random.default_rng(0))
    with pytest.raises(InputError):
        looks_linear_weights(2, 2, np.random.default_rng(0), kind="uniform")
    net = LooksLinearNetwork([3, 2], np.random.default_rng(0))
    with pytest.raises(InputError):
        net.forward(np.zeros(4))
