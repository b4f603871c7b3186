r"""Exact sample spaces of small sampling schemes, for exact means and variances of estimators.

An estimator is a function of the sample it is given.  On a small categorical distribution
every possible sample can be listed with its exact probability, so the estimator's mean and
covariance follow by finite sums, with no Monte Carlo error.  This is how the gradient
estimators of :mod:`phylo.ml` are checked, and how exact variance comparisons between them are
made (as in Kool, van Hoof & Welling 2020, who report exact variances on small problems).

Three schemes are enumerated:

* :func:`samples_with_replacement` — :math:`K` independent draws, probability
  :math:`\prod_j p_{x_j}`;
* :func:`ordered_samples_without_replacement` — sequential sampling without replacement
  (equivalently Gumbel-top-k), the Plackett–Luce probability
  :math:`\prod_{j=1}^k p_{b_j} / (1 - \sum_{l<j} p_{b_l})`;
* :func:`unordered_samples_without_replacement` — the set of the above, with
  :math:`p(S) = \sum_{B \in \mathrm{perm}(S)} p(B)` summed over all :math:`k!` orderings.

The unordered probabilities here deliberately use the brute-force sum over orderings, so that
they are independent of the dynamic programme in :mod:`phylo.ml.unordered_set`.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, positive_int


def _normalised(log_p) -> np.ndarray:
    log_p = as_float_array(log_p, "log_p", ndim=1, allow_neg_inf=True)
    return log_p - logsumexp(log_p)


def plackett_luce_log_prob(log_p, order) -> float:
    r"""Log-probability of drawing the categories ``order`` in that order, without replacement.

    .. math:: \log p(B) = \sum_j \Big[\log p_{b_j} - \log\big(1 - \sum_{l<j} p_{b_l}\big)\Big]

    The remaining mass is accumulated as a sum over the *remaining* categories, never as
    ``1 - sum``, so that it stays accurate when most of the mass is used up.
    """
    log_p = _normalised(log_p)
    return _plackett_luce(log_p, np.asarray(order, dtype=np.int64))


def _plackett_luce(log_p, order) -> float:
    remaining = np.ones(log_p.size, dtype=bool)
    total = 0.0
    for b in order:
        total += log_p[b] - np.logaddexp.reduce(log_p[remaining])
        remaining[b] = False
    return float(total)


def samples_with_replacement(log_p, k: int):
    """All ``k``-tuples of independent draws and their log-probabilities.

    Returns
    -------
    samples : ndarray of int, shape (n**k, k)
    log_prob : ndarray, shape (n**k,)
    """
    log_p = _normalised(log_p)
    k = positive_int(k, "k")
    n = log_p.size
    samples = np.array(list(itertools.product(range(n), repeat=k)), dtype=np.int64)
    return samples, log_p[samples].sum(axis=1)


def ordered_samples_without_replacement(log_p, k: int):
    """All ordered samples of ``k`` distinct categories and their Plackett–Luce log-probabilities.

    Returns
    -------
    samples : ndarray of int, shape (n!/(n-k)!, k)
    log_prob : ndarray
    """
    log_p = _normalised(log_p)
    k = positive_int(k, "k")
    n = log_p.size
    if k > n:
        raise InputError(f"k: cannot draw {k} distinct categories from {n}")
    samples = np.array(list(itertools.permutations(range(n), k)), dtype=np.int64)
    logp = np.array([_plackett_luce(log_p, s) for s in samples])
    return samples, logp


def unordered_samples_without_replacement(log_p, k: int):
    """All sets of ``k`` distinct categories and their probabilities (sum over orderings).

    Returns
    -------
    samples : ndarray of int, shape (C(n, k), k)
        Each set in increasing order.
    log_prob : ndarray
    """
    log_p = _normalised(log_p)
    k = positive_int(k, "k")
    n = log_p.size
    if k > n:
        raise InputError(f"k: cannot draw {k} distinct categories from {n}")
    sets = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
    logp = np.array(
        [
            np.logaddexp.reduce(
                [_plackett_luce(log_p, np.array(order)) for order in itertools.permutations(s)]
            )
            for s in sets
        ]
    )
    return sets, logp


def exact_moments(log_prob, estimates):
    r"""Exact mean and covariance of an estimator over an enumerated sample space.

    Parameters
    ----------
    log_prob
        Log-probabilities of the samples, shape ``(M,)``; they must sum to one.
    estimates
        The estimator's value on each sample, shape ``(M,)`` or ``(M, P)``.

    Returns
    -------
    mean : ndarray, shape (P,)
    covariance : ndarray, shape (P, P)
        :math:`\sum_m p_m (e_m - \bar e)(e_m - \bar e)^T`.
    """
    log_prob = as_float_array(log_prob, "log_prob", ndim=1, allow_neg_inf=True)
    est = as_float_array(estimates, "estimates")
    if est.ndim == 1:
        est = est[:, None]
    if est.shape[0] != log_prob.size:
        raise InputError("estimates: one row per sample expected")
    total = logsumexp(log_prob)
    if abs(total) > 1e-9:
        raise InputError(f"log_prob: probabilities sum to {np.exp(total)!r}, not 1")
    w = np.exp(log_prob - total)
    mean = w @ est
    centred = est - mean
    cov = (centred * w[:, None]).T @ centred
    return mean, cov


__all__ = [
    "plackett_luce_log_prob",
    "samples_with_replacement",
    "ordered_samples_without_replacement",
    "unordered_samples_without_replacement",
    "exact_moments",
]
