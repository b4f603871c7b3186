r"""GECO: generalised ELBO with constrained optimisation (Rezende & Viola 2018, "Taming VAEs").

GECO minimises an objective :math:`O(\theta)` (the KL term of a VAE) subject to an inequality
constraint :math:`\mathbb{E}[C(\theta)] \le 0` (for example a reconstruction error below a
tolerance :math:`\kappa^2`: :math:`C = \lVert x - \hat x\rVert^2 - \kappa^2`) through the
Lagrangian :math:`\mathcal{L}_\lambda = O + \lambda^T C`, a gradient step on
:math:`\theta` and a multiplicative update of :math:`\lambda \ge 0`.  Algorithm 1 of the
paper, at step :math:`t` with batch constraint :math:`\hat C_t`:

.. math::
   \hat C^{ma}_t &= \hat C_t \quad (t = 0), \qquad
   \hat C^{ma}_t = \alpha\,\hat C^{ma}_{t-1} + (1-\alpha)\,\hat C_t \quad (t > 0), \\
   \hat C_t &\leftarrow \hat C_t + \mathrm{StopGradient}(\hat C^{ma}_t - \hat C_t), \\
   \theta &\leftarrow \mathrm{optimiser}(\theta, \nabla_\theta \mathcal{L}_{\lambda_{t-1}}), \\
   \lambda_t &= \lambda_{t-1} \exp(\eta\, \hat C^{ma}_t).

The stop-gradient line means the Lagrangian takes the *value* of the moving average but the
*gradient* of the current batch: :math:`\nabla_\theta \mathcal{L} = \nabla_\theta O +
\lambda_{t-1}^T \nabla_\theta \hat C_t`.  The multiplier grows while the constraint is violated
and shrinks while it is satisfied; at a fixed point :math:`\hat C^{ma} = 0` (an active
constraint) and :math:`\lambda` is the KKT multiplier.

Widely used public implementations differ in three ways, available here as options: the
multiplier is updated only every ``update_every`` steps; the multiplicative factor
:math:`\exp(\eta \hat C^{ma})` is clamped (``factor_bounds``, e.g. ``(0.9, 1.05)``); and no
update happens during the first ``warmup`` steps.  ``lambda_bounds`` clamps :math:`\lambda`
itself.  The defaults reproduce the paper.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, positive_int, positive_scalar


class GecoStep(NamedTuple):
    """What one :meth:`Geco.step` returns."""

    multiplier: np.ndarray
    """:math:`\\lambda_{t-1}`, the multiplier to use in this step's gradient."""
    constraint_ma: np.ndarray
    """:math:`\\hat C^{ma}_t`, the value the Lagrangian takes for the constraint."""


def _bounds(value, name):
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a pair (low, high)") from None
    if not (0.0 <= lo <= hi):
        raise InputError(f"{name}: expected 0 <= low <= high, got {value!r}")
    return lo, hi


class Geco:
    r"""The GECO Lagrange-multiplier state machine.

    Parameters
    ----------
    alpha
        Moving-average decay :math:`\alpha \in [0, 1)` (the paper uses 0.99).
    step_size
        :math:`\eta` in :math:`\lambda \leftarrow \lambda \exp(\eta \hat C^{ma})`.
    lambda_init
        Initial multiplier(s) :math:`\lambda_0 > 0` (the paper uses 1).
    update_every
        Update :math:`\lambda` only at steps :math:`t` that are multiples of this.
    factor_bounds
        Clamp the factor :math:`\exp(\eta \hat C^{ma})` to ``(low, high)``.
    lambda_bounds
        Clamp :math:`\lambda` to ``(low, high)`` after each update.
    warmup
        Number of initial steps without multiplier updates.

    Examples
    --------
    >>> geco = Geco(alpha=0.9, step_size=0.5)
    >>> theta = 0.0
    >>> for _ in range(3):
    ...     lam, c_ma = geco.step((theta - 3.0) ** 2 - 1.0)
    ...     theta -= 0.05 * (2 * theta + lam * 2 * (theta - 3.0))
    """

    def __init__(
        self,
        alpha: float = 0.99,
        step_size: float = 1.0,
        lambda_init=1.0,
        update_every: int = 1,
        factor_bounds=None,
        lambda_bounds=None,
        warmup: int = 0,
    ):
        alpha = float(alpha)
        if not 0.0 <= alpha < 1.0:
            raise InputError(f"alpha: expected a number in [0, 1), got {alpha!r}")
        self.alpha = alpha
        self.step_size = positive_scalar(step_size, "step_size")
        lam = as_float_array(lambda_init, "lambda_init")
        if (lam <= 0).any():
            raise InputError("lambda_init: multipliers must be positive")
        self.multiplier = lam.copy()
        self.update_every = positive_int(update_every, "update_every")
        self.factor_bounds = _bounds(factor_bounds, "factor_bounds")
        self.lambda_bounds = _bounds(lambda_bounds, "lambda_bounds")
        if not isinstance(warmup, (int, np.integer)) or warmup < 0:
            raise InputError(f"warmup: expected a non-negative integer, got {warmup!r}")
        self.warmup = int(warmup)
        self.t = 0
        self.constraint_ma = None

    def step(self, constraint) -> GecoStep:
        r"""Fold in this step's batch constraint :math:`\hat C_t` and update :math:`\lambda`.

        Returns the multiplier :math:`\lambda_{t-1}` to use in this step's gradient,
        :math:`\nabla_\theta O + \lambda_{t-1}^T \nabla_\theta \hat C_t`, and the moving
        average :math:`\hat C^{ma}_t`.
        """
        c = as_float_array(constraint, "constraint")
        try:
            compatible = c.shape == np.broadcast_shapes(c.shape, self.multiplier.shape)
        except ValueError:
            compatible = False
        if not compatible or (
            self.constraint_ma is not None and c.shape != self.constraint_ma.shape
        ):
            raise InputError(
                f"constraint: shape {c.shape} does not match the multipliers "
                f"{self.multiplier.shape}"
            )
        if self.constraint_ma is None:
            self.constraint_ma = c.copy()
        else:
            self.constraint_ma = self.alpha * self.constraint_ma + (1.0 - self.alpha) * c
        used = np.broadcast_to(self.multiplier, c.shape).copy()
        if self.t >= self.warmup and self.t % self.update_every == 0:
            factor = np.exp(self.step_size * self.constraint_ma)
            if self.factor_bounds is not None:
                factor = np.clip(factor, *self.factor_bounds)
            new = used * factor
            if self.lambda_bounds is not None:
                new = np.clip(new, *self.lambda_bounds)
            self.multiplier = new
        self.t += 1
        return GecoStep(used, self.constraint_ma.copy())

    def lagrangian(self, objective: float, step: GecoStep) -> float:
        r"""The value :math:`O + \lambda_{t-1}^T \hat C^{ma}_t` of this step's Lagrangian."""
        return float(objective + np.sum(step.multiplier * step.constraint_ma))
