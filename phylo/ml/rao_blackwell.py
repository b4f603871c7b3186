r"""Rao–Blackwellised sum-and-sample estimators (Liu, Regier, Tripuraneni, Jordan & McAuliffe
2019, "Rao-Blackwellized Stochastic Gradients for Discrete Distributions", ICML).

Let :math:`g(z)` be any unbiased single-sample estimator, :math:`\mathbb{E}_{q}[g(z)] = \mu`
(for gradients, REINFORCE: :math:`g(z) = f(z)\nabla_\theta \log q_\theta(z)`).  Choose a set
:math:`C` of :math:`k` states that does not depend on the sample — Liu et al. take the
:math:`k` most probable ones — and draw one :math:`\hat z` from :math:`q` restricted to the
complement :math:`C^c`.  The estimator

.. math:: \hat g = \sum_{c \in C} q(c)\, g(c) + q(C^c)\, g(\hat z),
          \qquad \hat z \sim q(\cdot \mid C^c),

is unbiased, and it is the conditional expectation of :math:`g(z)` for
:math:`z \sim q` given :math:`\hat z` (write :math:`z` as :math:`c \in C` with probability
:math:`q(c)`, and :math:`\hat z` otherwise).  By the Rao–Blackwell theorem its covariance is
never larger than that of :math:`g(z)`:
:math:`\mathrm{Cov}[g(z)] - \mathrm{Cov}[\hat g] \succeq 0`.

:func:`stochastic_sum_and_sample` is the variant of Kool, van Hoof & Welling (2020) in which
the summed states are themselves the first :math:`k-1` states of a sample without replacement
:math:`b_1, \dots, b_k`:

.. math:: \hat g = \sum_{j<k} p(b_j)\, g(b_j) + \Big(1 - \sum_{j<k} p(b_j)\Big) g(b_k).

Its conditional expectation given the unordered set :math:`\{b_1..b_k\}` is the unordered set
estimator (:mod:`phylo.ml.unordered_set`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, generator, log1mexp, positive_int


def sum_and_sample(
    summed_log_p, summed_estimates, sample_estimate=None, log_rest: float | None = None
):
    r"""Combine summed states and one complement sample: :math:`\sum_C q(c) g(c) + q(C^c) g(\hat z)`.

    Parameters
    ----------
    summed_log_p
        :math:`\log q(c)` of the :math:`k` summed states, shape ``(k,)``.
    summed_estimates
        :math:`g(c)`, shape ``(k, ...)``.
    sample_estimate
        :math:`g(\hat z)` for :math:`\hat z` drawn from :math:`q` restricted to the complement;
        may be omitted only when the complement has no mass.
    log_rest
        :math:`\log q(C^c)`; computed as :math:`\log(1 - \sum_C q(c))` when omitted.
    """
    log_p = as_float_array(summed_log_p, "summed_log_p", ndim=1)
    est = as_float_array(summed_estimates, "summed_estimates")
    if est.shape[:1] != log_p.shape:
        raise InputError("summed_estimates: one row per summed state expected")
    if log_rest is None:
        total = logsumexp(log_p) if log_p.size else -np.inf
        if total > 1e-12:
            raise InputError("summed_log_p: probabilities sum to more than one")
        log_rest = float(log1mexp(min(total, 0.0)))
    out = np.tensordot(np.exp(log_p), est, axes=1)
    if log_rest > -np.inf:
        if sample_estimate is None:
            raise InputError("sample_estimate: the complement has mass, one sample is needed")
        out = out + np.exp(log_rest) * as_float_array(sample_estimate, "sample_estimate")
    return out


def sum_and_sample_gradient(
    summed_log_p,
    summed_values,
    summed_scores,
    sample_value=None,
    sample_score=None,
    log_rest: float | None = None,
) -> np.ndarray:
    r"""Rao–Blackwellised REINFORCE: :func:`sum_and_sample` with :math:`g(z) = f(z)\nabla\log q(z)`.

    Parameters
    ----------
    summed_log_p, summed_values, summed_scores
        :math:`\log q(c)`, :math:`f(c)` and :math:`\nabla_\theta \log q_\theta(c)` of the summed
        states, shapes ``(k,)``, ``(k,)``, ``(k, P)``.
    sample_value, sample_score
        :math:`f(\hat z)` and :math:`\nabla_\theta \log q_\theta(\hat z)` of the complement
        sample.
    log_rest
        :math:`\log q(C^c)`.
    """
    values = as_float_array(summed_values, "summed_values", ndim=1)
    scores = as_float_array(summed_scores, "summed_scores", ndim=2)
    if scores.shape[0] != values.size:
        raise InputError("summed_scores: one row per summed state expected")
    sample = None
    if sample_score is not None:
        sample = float(sample_value) * as_float_array(sample_score, "sample_score", ndim=1)
    return sum_and_sample(summed_log_p, values[:, None] * scores, sample, log_rest)


def choose_sum_and_sample(log_p, k: int, rng: np.random.Generator):
    r"""For a categorical :math:`q`: the :math:`k` most probable states and one complement sample.

    Parameters
    ----------
    log_p
        Log-probabilities of all categories, shape ``(n,)``.
    k
        Number of summed states, :math:`0 \le k \le n`.
    rng
        Source of randomness.

    Returns
    -------
    summed : ndarray of int, shape (k,)
        Most probable first; ties broken by lower index.
    sample : int or None
        A draw from :math:`q` restricted to the other states (``None`` if they have no mass).
    log_rest : float
        :math:`\log q(C^c)`, summed over the complement.
    """
    rng = generator(rng)
    log_p = as_float_array(log_p, "log_p", ndim=1, allow_neg_inf=True)
    log_p = log_p - logsumexp(log_p)
    if not isinstance(k, (int, np.integer)) or not 0 <= k <= log_p.size:
        raise InputError(f"k: expected an integer in [0, {log_p.size}], got {k!r}")
    order = np.argsort(-log_p, kind="stable")
    summed, rest = order[:k], order[k:]
    rest = rest[np.isfinite(log_p[rest])]
    if rest.size == 0:
        return summed, None, -np.inf
    log_rest = float(logsumexp(log_p[rest]))
    p = np.exp(log_p[rest] - log_rest)
    return summed, int(rest[rng.choice(rest.size, p=p / p.sum())]), log_rest


def stochastic_sum_and_sample(ordered_log_p, estimates):
    r"""Kool et al. (2020): :math:`\sum_{j<k} p(b_j) g(b_j) + (1 - \sum_{j<k} p(b_j))\,g(b_k)`.

    Parameters
    ----------
    ordered_log_p
        :math:`\log p(b_j)` of an ordered sample without replacement, shape ``(k,)``.
    estimates
        :math:`g(b_j)`, shape ``(k, ...)``.
    """
    log_p = as_float_array(ordered_log_p, "ordered_log_p", ndim=1)
    positive_int(log_p.size, "len(ordered_log_p)")
    est = as_float_array(estimates, "estimates")
    if est.shape[:1] != log_p.shape:
        raise InputError("estimates: one row per sampled state expected")
    return sum_and_sample(log_p[:-1], est[:-1], est[-1])


def stochastic_sum_and_sample_gradient(ordered_log_p, values, scores) -> np.ndarray:
    r""":func:`stochastic_sum_and_sample` with :math:`g(b) = f(b)\nabla_\theta\log p_\theta(b)`."""
    values = as_float_array(values, "values", ndim=1)
    scores = as_float_array(scores, "scores", ndim=2)
    if scores.shape[0] != values.size:
        raise InputError("scores: one row per sampled state expected")
    return stochastic_sum_and_sample(ordered_log_p, values[:, None] * scores)
