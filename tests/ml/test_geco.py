"""GECO (Rezende & Viola 2018) on a problem with a known KKT point."""

from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.ml.geco import Geco


def solve_toy(geco, learning_rate, steps, theta=0.0):
    """min theta^2  s.t.  (theta - 3)^2 <= 1; the KKT point is theta* = lambda* = 2."""
    for _ in range(steps):
        lam, _ = geco.step((theta - 3.0) ** 2 - 1.0)
        theta -= learning_rate * (2.0 * theta + lam * 2.0 * (theta - 3.0))
    return theta, float(geco.multiplier)


@pytest.mark.parametrize("theta0", [0.0, 3.0, 5.0])
def test_paper_update_reaches_the_kkt_point(theta0):
    theta, lam = solve_toy(Geco(alpha=0.99, step_size=0.003), 0.05, 6000, theta0)
    assert theta == pytest.approx(2.0, abs=1e-6)
    assert lam == pytest.approx(2.0, abs=1e-6)


def test_clamped_every_k_steps_variant_reaches_the_kkt_point():
    geco = Geco(alpha=0.99, step_size=1.0, update_every=10, factor_bounds=(0.9, 1.05))
    theta, lam = solve_toy(geco, 0.05, 20000)
    assert theta == pytest.approx(2.0, abs=1e-6)
    assert lam == pytest.approx(2.0, abs=1e-6)


def test_one_step_follows_algorithm_one():
    geco = Geco(alpha=0.5, step_size=0.1, lambda_init=2.0)
    s0 = geco.step(3.0)  # t = 0: the moving average starts at C_0
    assert s0.multiplier == 2.0 and s0.constraint_ma == 3.0
    assert geco.multiplier == pytest.approx(2.0 * np.exp(0.1 * 3.0))
    s1 = geco.step(-1.0)  # C_ma = 0.5 * 3 + 0.5 * (-1) = 1
    assert s1.multiplier == pytest.approx(2.0 * np.exp(0.3))
    assert s1.constraint_ma == pytest.approx(1.0)
    assert geco.multiplier == pytest.approx(2.0 * np.exp(0.3) * np.exp(0.1))
    assert geco.lagrangian(5.0, s1) == pytest.approx(5.0 + 2.0 * np.exp(0.3) * 1.0)


def test_public_variant_updates_every_k_steps_with_clamped_factors_after_warmup():
    geco = Geco(alpha=0.0, step_size=1.0, update_every=3, factor_bounds=(0.9, 1.05), warmup=2)
    history = []
    for c in [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, -5.0]:
        geco.step(c)
        history.append(float(geco.multiplier))
    # t = 0, 1: warm-up; t = 3, 6: updates (t = 2 is not a multiple of 3)
    assert history == pytest.approx([1.0, 1.0, 1.0, 1.05, 1.05, 1.05, 1.05 * 0.9])


def test_vector_constraints_and_bounds():
    geco = Geco(alpha=0.0, step_size=1.0, lambda_init=[1.0, 1.0], lambda_bounds=(0.5, 2.0))
    geco.step([10.0, -10.0])
    np.testing.assert_allclose(geco.multiplier, [2.0, 0.5])
    with pytest.raises(InputError):
        geco.step([1.0, 2.0, 3.0])
    with pytest.raises(InputError):
        Geco(alpha=1.0)
