r"""Score-function (REINFORCE) gradient estimators, their baselines, and VIMCO.

**REINFORCE** (Williams 1992).  For :math:`x \sim q_\theta`,

.. math:: \nabla_\theta \mathbb{E}_{q_\theta}[f(x)]
          = \mathbb{E}_{q_\theta}\big[(f(x) - b)\,\nabla_\theta \log q_\theta(x)\big]

for any baseline :math:`b` that does not depend on :math:`x`, since
:math:`\mathbb{E}[\nabla_\theta \log q_\theta(x)] = 0`.  With :math:`m` independent samples
the *leave-one-out* baseline :math:`b_i = \frac{1}{m-1}\sum_{j\ne i} f(x_j)` is independent of
:math:`x_i` and gives

.. math:: \hat g = \frac{1}{m-1}\sum_{i=1}^m \big(f(x_i) - \bar f\big)\,
          \nabla_\theta \log q_\theta(x_i)

(Kool, van Hoof & Welling 2019, "Buy 4 REINFORCE samples, get a baseline for free!").
A moving average of past values (:class:`MovingAverageBaseline`) is another baseline that does
not depend on the current sample.

**VIMCO** (Mnih & Rezende 2016, "Variational inference for Monte Carlo objectives").  For the
multi-sample objective :math:`\hat L = \log \frac{1}{K}\sum_{j=1}^K w_j`, with
:math:`h_1..h_K \sim q_\theta` independent and weights :math:`w_j = w_\theta(h_j)`,

.. math:: \nabla_\theta \hat L \approx \sum_{j=1}^K \hat L(h_j \mid h_{-j})\,
          \nabla_\theta \log q_\theta(h_j) + \sum_{j=1}^K \tilde w_j\, \nabla_\theta \log w_j,

.. math:: \hat L(h_j \mid h_{-j}) = \hat L - \log \frac{1}{K}\Big(\sum_{i \ne j} w_i
          + \hat f(h_{-j})\Big), \qquad
          \hat f(h_{-j}) = \exp\Big(\frac{1}{K-1}\sum_{i\ne j} \log w_i\Big),

:math:`\tilde w_j = w_j / \sum_i w_i`.  The control variate replaces :math:`w_j` by the
geometric mean of the others; it does not depend on :math:`h_j`, so the estimator stays
unbiased.  The arithmetic mean is offered as an alternative (``control="arithmetic"``).

All estimators take arrays (values, log-weights, score vectors) for samples already drawn, so
they work for any distribution that provides :math:`\nabla_\theta \log q_\theta` (see
:mod:`phylo.ml.discrete`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml._checks import as_float_array


def _values_scores(values, scores):
    values = as_float_array(values, "values", ndim=1)
    scores = as_float_array(scores, "scores", ndim=2)
    if scores.shape[0] != values.size or values.size == 0:
        raise InputError("values, scores: one row per sample expected, at least one sample")
    return values, scores


def reinforce(values, scores, baseline=0.0, value_grads=None) -> np.ndarray:
    r"""REINFORCE estimate :math:`\frac1m \sum_i (f(x_i) - b)\nabla\log q(x_i) [+ \nabla f(x_i)]`.

    Parameters
    ----------
    values
        :math:`f(x_i)` for :math:`m` independent samples, shape ``(m,)``.
    scores
        :math:`\nabla_\theta \log q_\theta(x_i)`, shape ``(m, P)``.
    baseline
        A number, or one number per sample, that must not depend on the sample it is paired
        with (otherwise the estimate is biased).
    value_grads
        :math:`\nabla_\theta f(x_i)` when :math:`f` depends on :math:`\theta` directly.

    Returns
    -------
    ndarray, shape (P,)
    """
    values, scores = _values_scores(values, scores)
    b = as_float_array(baseline, "baseline")
    if b.ndim not in (0, 1) or (b.ndim == 1 and b.size != values.size):
        raise InputError("baseline: expected a number or one number per sample")
    grad = ((values - b) @ scores) / values.size
    if value_grads is not None:
        value_grads = as_float_array(value_grads, "value_grads", ndim=2)
        if value_grads.shape != scores.shape:
            raise InputError("value_grads: expected the shape of scores")
        grad = grad + value_grads.mean(axis=0)
    return grad


def reinforce_leave_one_out(values, scores, value_grads=None) -> np.ndarray:
    r"""REINFORCE with the leave-one-out baseline of the other :math:`m-1` samples.

    .. math:: \hat g = \frac{1}{m-1}\sum_{i=1}^m \big(f(x_i) - \bar f\big)\nabla\log q(x_i)

    Requires :math:`m \ge 2` independent samples (with replacement).
    """
    values, scores = _values_scores(values, scores)
    m = values.size
    if m < 2:
        raise InputError("values: the leave-one-out baseline needs at least two samples")
    grad = ((values - values.mean()) @ scores) / (m - 1)
    if value_grads is not None:
        value_grads = as_float_array(value_grads, "value_grads", ndim=2)
        if value_grads.shape != scores.shape:
            raise InputError("value_grads: expected the shape of scores")
        grad = grad + value_grads.mean(axis=0)
    return grad


class MovingAverageBaseline:
    r"""Exponential moving average of past function values, used as a REINFORCE baseline.

    :math:`b_{t+1} = \beta b_t + (1-\beta)\,\bar f_t`, starting from the first observed mean.
    Use :attr:`value` *before* calling :meth:`update` with the current values, so that the
    baseline does not depend on the current sample.

    Parameters
    ----------
    decay
        :math:`\beta \in [0, 1)`.
    """

    def __init__(self, decay: float = 0.9):
        decay = float(decay)
        if not 0.0 <= decay < 1.0:
            raise InputError(f"decay: expected a number in [0, 1), got {decay!r}")
        self.decay = decay
        self.value = 0.0
        self._started = False

    def update(self, values) -> float:
        """Fold the mean of ``values`` into the average and return the new baseline."""
        mean = float(np.mean(as_float_array(values, "values")))
        if not self._started:
            self.value = mean
            self._started = True
        else:
            self.value = self.decay * self.value + (1.0 - self.decay) * mean
        return self.value


def vimco(log_weights, scores, log_weight_grads=None, control: str = "geometric"):
    r"""VIMCO estimate of :math:`\nabla_\theta \mathbb{E}[\log \frac1K \sum_j w_j]`.

    Parameters
    ----------
    log_weights
        :math:`\log w_j` of :math:`K \ge 2` independent samples, shape ``(K,)``.
    scores
        :math:`\nabla_\theta \log q_\theta(h_j)`, shape ``(K, P)``.
    log_weight_grads
        :math:`\nabla_\theta \log w_j` (the direct dependence of the weights on the
        parameters; for :math:`w = p(x, h)/q_\theta(h)` with respect to the parameters of
        :math:`q` this is :math:`-\nabla_\theta \log q_\theta(h_j)`), shape ``(K, P)``;
        omitted means zero.
    control
        ``"geometric"`` (the paper) or ``"arithmetic"`` mean of the other weights.

    Returns
    -------
    objective : float
        :math:`\hat L = \log \frac1K \sum_j w_j`.
    gradient : ndarray, shape (P,)
    """
    log_w = as_float_array(log_weights, "log_weights", ndim=1, allow_neg_inf=True)
    scores = as_float_array(scores, "scores", ndim=2)
    k = log_w.size
    if k < 2:
        raise InputError("log_weights: VIMCO needs at least two samples")
    if scores.shape[0] != k:
        raise InputError("scores: one row per sample expected")
    if not np.isfinite(log_w).all():
        raise InputError("log_weights: every weight must be positive and finite")
    objective = float(logsumexp(log_w) - np.log(k))
    others = ~np.eye(k, dtype=bool)
    if control == "geometric":
        log_hat = (log_w.sum() - log_w) / (k - 1)
    elif control == "arithmetic":
        log_hat = np.array([logsumexp(log_w[others[j]]) for j in range(k)]) - np.log(k - 1)
    else:
        raise InputError(f"control: expected 'geometric' or 'arithmetic', got {control!r}")
    replaced = np.where(others, log_w[None, :], log_hat[:, None])  # row j: w_j -> f_hat_j
    local = objective - (logsumexp(replaced, axis=1) - np.log(k))
    grad = local @ scores
    if log_weight_grads is not None:
        log_weight_grads = as_float_array(log_weight_grads, "log_weight_grads", ndim=2)
        if log_weight_grads.shape != scores.shape:
            raise InputError("log_weight_grads: expected the shape of scores")
        normalised = np.exp(log_w - logsumexp(log_w))
        grad = grad + normalised @ log_weight_grads
    return objective, grad
