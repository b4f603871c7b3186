r"""The unordered set estimator (Kool, van Hoof & Welling 2020, "Estimating Gradients for
Discrete Random Variables by Sampling without Replacement", ICLR).

Let :math:`S` be the *set* of :math:`k` distinct outcomes obtained by sampling without
replacement from :math:`p_\theta` (equivalently, the Gumbel-top-k set).  With
:math:`p^{D \setminus C}` the distribution renormalised to the domain without :math:`C`, define
the leave-one-out ratio

.. math:: R(S, s) = \frac{p^{D\setminus\{s\}}(S \setminus \{s\})}{p(S)}

and the second-order ratio (the leave-one-out ratio inside the domain without :math:`s`)

.. math:: R^{D\setminus\{s\}}(S, s') = \frac{p^{D\setminus\{s, s'\}}(S\setminus\{s, s'\})}
                                             {p^{D\setminus\{s\}}(S \setminus \{s\})},
          \qquad R^{D\setminus\{s\}}(S, s) = 1.

Then

* :math:`e^{US}(S) = \sum_{s \in S} p(s) R(S, s) f(s)` is unbiased for
  :math:`\mathbb{E}_{p}[f(x)]`, for any :math:`f` (Theorem 1), and it is the Rao–Blackwellisation
  of both the single-sample estimator :math:`f(b_1)` and the stochastic sum-and-sample
  estimator given the unordered set;
* the gradient estimator is
  :math:`\sum_{s\in S} \nabla_\theta p(s)\, R(S,s)\,[f(s) - b(S, s)]` with
  :math:`\nabla_\theta p(s) = p(s) \nabla_\theta \log p(s)`;
* the *built-in baseline* is
  :math:`b(S, s) = \sum_{s' \in S} p(s') R^{D\setminus\{s\}}(S, s') f(s')`, which keeps the
  estimator unbiased (for :math:`k \ge 2`).  It is not guaranteed to reduce variance.

**Computing the ratios.**  Only the probabilities of the :math:`k` sampled outcomes and the mass
:math:`q = 1 - \sum_{s\in S} p(s)` outside the sample are needed.  For :math:`T \subseteq S`
let :math:`J(T)` be the probability that sampling without replacement from the domain
:math:`T \cup (D \setminus S)` draws all of :math:`T` first.  Then :math:`p(S) = J(S)`,
:math:`p^{D\setminus\{s\}}(S\setminus\{s\}) = J(S\setminus\{s\})` and
:math:`p^{D\setminus\{s,s'\}}(S\setminus\{s,s'\}) = J(S\setminus\{s,s'\})`, because
renormalising the domain leaves the ratios :math:`p_s / q` unchanged.  Conditioning on the
first draw gives the recursion

.. math:: J(\emptyset) = 1, \qquad
          J(T) = \frac{\sum_{t \in T} p_t\, J(T\setminus\{t\})}{q + \sum_{t\in T} p_t},

a sum of positive terms evaluated in log space over all :math:`2^k` subsets (``method="exact"``,
:math:`O(2^k k)`).  For larger :math:`k` the paper's integral representation is used
(``method="quadrature"``):

.. math:: J(T) = \int_0^1 \prod_{t\in T}\big(1 - u^{p_t/q}\big)\,du
               = \int_{-\infty}^{\infty} \exp\Big(x - e^{x}
                 + \sum_{t \in T} \log\big(1 - e^{-e^{x + \log(p_t/q)}}\big)\Big)\,dx,

the second form (substituting :math:`u = e^{-e^{x}}`) being smooth and decaying on both sides,
so that the trapezoidal rule converges geometrically.

Sequences and other structured domains are sampled without replacement by
:func:`stochastic_beam_search` (Kool, van Hoof & Welling 2019).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml import _kernels
from phylo.ml._checks import as_float_array, generator, log1mexp, positive_int
from phylo.ml.gumbel import gumbel_top_k, truncate

#: Largest sample size for which ``method="auto"`` uses the exact subset recursion.
EXACT_MAX_K = 14
_EXACT_LIMIT = 22


class SetRatios(NamedTuple):
    """Log-probability of an unordered sample and its log leave-one-out ratios."""

    log_prob_set: float
    """:math:`\\log p(S)`."""
    log_r1: np.ndarray
    """Shape ``(k,)``: :math:`\\log R(S, s)`."""
    log_r2: np.ndarray
    """Shape ``(k, k)``: ``[s, s']`` is :math:`\\log R^{D\\setminus\\{s\\}}(S, s')`, diagonal 0."""


def _check_set(log_p, log_rest):
    log_p = as_float_array(log_p, "log_p", ndim=1)
    if log_p.size == 0:
        raise InputError("log_p: the sample is empty")
    if log_rest is None:
        total = logsumexp(log_p)
        if total > 1e-12:
            raise InputError(
                "log_p: the sampled outcomes have probability summing to "
                f"{np.exp(total)!r} > 1; pass normalised log-probabilities"
            )
        log_rest = float(log1mexp(min(total, 0.0)))
    else:
        log_rest = float(log_rest)
        if np.isnan(log_rest) or log_rest == np.inf:
            raise InputError("log_rest: expected a log-probability (or -inf)")
    return log_p, log_rest


def log_leave_one_out_ratios(
    log_p, log_rest: float | None = None, method: str = "auto"
) -> SetRatios:
    r"""Log-probability of the unordered sample and its first- and second-order ratios.

    Parameters
    ----------
    log_p
        :math:`\log p(s)` of the :math:`k` distinct sampled outcomes, shape ``(k,)``.
    log_rest
        :math:`\log(1 - \sum_{s\in S} p(s))`, the log-mass outside the sample.  Computed from
        ``log_p`` when omitted; pass it when it is known more accurately (for example as a sum
        over the complement), or when ``log_p`` is not normalised.
    method
        ``"exact"`` (subset recursion, :math:`k \le 22`), ``"quadrature"`` (integral
        representation) or ``"auto"`` (exact for :math:`k \le 14`, where it is the faster).

    Returns
    -------
    SetRatios
    """
    log_p, log_rest = _check_set(log_p, log_rest)
    k = log_p.size
    if method == "auto":
        method = "exact" if k <= EXACT_MAX_K else "quadrature"
    if method not in ("exact", "quadrature"):
        raise InputError(f"method: expected 'exact', 'quadrature' or 'auto', got {method!r}")
    if log_rest == -np.inf:
        # The sample is the whole support: p(S) = 1 and every ratio is 1.
        return SetRatios(0.0, np.zeros(k), np.zeros((k, k)))
    if method == "exact":
        if k > _EXACT_LIMIT:
            raise InputError(f"method='exact' handles k <= {_EXACT_LIMIT}, got k={k}")
        return _ratios_exact(log_p, log_rest)
    return _ratios_quadrature(log_p, log_rest)


def _ratios_exact(log_p, log_rest) -> SetRatios:
    k = log_p.size
    log_j = _kernels.subset_log_probabilities(log_p, log_rest)
    full = (1 << k) - 1
    bits = 1 << np.arange(k)
    log_s1 = log_j[full ^ bits]
    log_r1 = log_s1 - log_j[full]
    log_r2 = np.zeros((k, k))
    if k >= 2:
        pair = full ^ bits[:, None] ^ bits[None, :]
        log_r2 = log_j[pair] - log_s1[:, None]
        np.fill_diagonal(log_r2, 0.0)
    return SetRatios(float(log_j[full]), log_r1, log_r2)


def _ratios_quadrature(log_p, log_rest, step: float = 0.05) -> SetRatios:
    k = log_p.size
    c = log_p - log_rest
    lo = min(-c.max(), 0.0) - 45.0
    hi = np.log(2.0 * (k + 1) + 60.0)
    x = np.arange(lo, hi + step, step)
    with np.errstate(under="ignore"):
        terms = log1mexp(-np.exp(c[None, :] + x[:, None]))  # (npts, k)
    total = x - np.exp(x) + terms.sum(axis=1)
    log_step = np.log(step)
    log_s = log_step + logsumexp(total)
    without = total[:, None] - terms  # (npts, k)
    log_s1 = log_step + logsumexp(without, axis=0)
    log_r2 = np.zeros((k, k))
    for s in range(k):
        log_pair = log_step + logsumexp(without[:, s, None] - terms, axis=0)
        log_r2[s] = log_pair - log_s1[s]
        log_r2[s, s] = 0.0
    return SetRatios(float(log_s), log_s1 - log_s, log_r2)


def unordered_set_estimate(log_p, values, log_rest: float | None = None, method: str = "auto"):
    r"""The unordered set estimate :math:`\sum_{s\in S} p(s) R(S, s) f(s)` of :math:`\mathbb{E}[f]`.

    Parameters
    ----------
    log_p
        Log-probabilities of the :math:`k` distinct sampled outcomes, shape ``(k,)``.
    values
        :math:`f(s)`, shape ``(k,)`` or ``(k, ...)``.
    log_rest, method
        As for :func:`log_leave_one_out_ratios`.
    """
    log_p, log_rest = _check_set(log_p, log_rest)
    values = as_float_array(values, "values")
    if values.shape[:1] != log_p.shape:
        raise InputError("values: one entry per sampled outcome expected")
    ratios = log_leave_one_out_ratios(log_p, log_rest, method)
    weights = np.exp(log_p + ratios.log_r1)
    return np.tensordot(weights, values, axes=1)


def builtin_baseline(log_p, values, ratios: SetRatios) -> np.ndarray:
    r"""The built-in baseline :math:`b(S, s) = \sum_{s'\in S} p(s') R^{D\setminus\{s\}}(S, s') f(s')`.

    For :math:`k = 1` there is no other sample to build it from and the baseline is zero.
    """
    log_p = np.asarray(log_p, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if log_p.size == 1:
        return np.zeros(1)
    return np.exp(log_p[None, :] + ratios.log_r2) @ values


def unordered_set_gradient(
    log_p,
    values,
    scores,
    baseline="builtin",
    log_rest: float | None = None,
    value_grads=None,
    method: str = "auto",
) -> np.ndarray:
    r"""Unordered set policy-gradient estimate of :math:`\nabla_\theta \mathbb{E}_{p_\theta}[f]`.

    .. math:: \hat g(S) = \sum_{s \in S} p(s) R(S, s) \Big[\nabla_\theta \log p(s)\,
              \big(f(s) - b(S, s)\big) + \nabla_\theta f(s)\Big]

    Parameters
    ----------
    log_p
        :math:`\log p_\theta(s)` of the :math:`k` distinct sampled outcomes, shape ``(k,)``.
    values
        :math:`f(s)`, shape ``(k,)``.
    scores
        :math:`\nabla_\theta \log p_\theta(s)`, shape ``(k, P)``.
    baseline
        ``"builtin"`` (the paper's built-in baseline, zero for :math:`k = 1`), ``None``, or a
        number that does not depend on the sample.
    log_rest
        Log-mass outside the sample (see :func:`log_leave_one_out_ratios`).
    value_grads
        :math:`\nabla_\theta f(s)`, shape ``(k, P)``, when :math:`f` depends on
        :math:`\theta` directly.
    method
        How the ratios are computed (see :func:`log_leave_one_out_ratios`).

    Returns
    -------
    ndarray, shape (P,)
    """
    log_p, log_rest = _check_set(log_p, log_rest)
    k = log_p.size
    values = as_float_array(values, "values", ndim=1)
    scores = as_float_array(scores, "scores", ndim=2)
    if values.size != k or scores.shape[0] != k:
        raise InputError("values, scores: one row per sampled outcome expected")
    ratios = log_leave_one_out_ratios(log_p, log_rest, method)
    weights = np.exp(log_p + ratios.log_r1)
    if isinstance(baseline, str):
        if baseline != "builtin":
            raise InputError(f"baseline: expected 'builtin', None or a number, got {baseline!r}")
        b = builtin_baseline(log_p, values, ratios)
    elif baseline is None:
        b = np.zeros(k)
    else:
        b = np.full(k, float(baseline))
    grad = (weights * (values - b)) @ scores
    if value_grads is not None:
        value_grads = as_float_array(value_grads, "value_grads", ndim=2)
        if value_grads.shape != scores.shape:
            raise InputError("value_grads: expected the shape of scores")
        grad = grad + weights @ value_grads
    return grad


def sample_categorical_set(log_p, k: int, rng: np.random.Generator):
    r"""A Gumbel-top-k sample from a categorical distribution with its exact outside mass.

    Returns
    -------
    indices : ndarray of int, shape (k,)
    log_rest : float
        :math:`\log \sum_{x \notin S} p(x)`, computed over the complement.
    """
    log_p = as_float_array(log_p, "log_p", ndim=1, allow_neg_inf=True)
    idx = gumbel_top_k(log_p, k, rng)
    mask = np.ones(log_p.size, dtype=bool)
    mask[idx] = False
    rest = log_p[mask]
    log_rest = float(logsumexp(rest)) if rest.size else -np.inf
    return idx, log_rest - float(logsumexp(log_p))


@dataclass
class BeamSample:
    """Result of :func:`stochastic_beam_search`, ordered by decreasing key."""

    sequences: list
    """The sampled complete sequences (tuples of tokens)."""
    log_probs: np.ndarray
    """Their log-probabilities under the model."""
    keys: np.ndarray
    """Their Gumbel-perturbed log-probabilities, decreasing."""


def stochastic_beam_search(
    expand: Callable, k: int, rng: np.random.Generator, root: tuple = (), tolerance: float = 1e-9
) -> BeamSample:
    r"""Sample :math:`k` distinct complete sequences without replacement (Kool et al. 2019).

    A sequence model assigns :math:`p(y) = \prod_t p(y_t \mid y_{<t})`.  Stochastic beam
    search perturbs the log-probability of every partial sequence with a Gumbel that is the
    maximum of its descendants' Gumbels: the root gets :math:`G \sim \mathrm{Gumbel}(0)`, and
    the children of a node with perturbed value :math:`T` get
    :math:`G_c \sim \mathrm{Gumbel}(\log p(y_c))` shifted by :func:`~phylo.ml.gumbel.truncate`
    so that their maximum is :math:`T`.  Keeping the :math:`k` largest keys at every step then
    returns exactly the Gumbel-top-k set of complete sequences, i.e. a sample without
    replacement, while expanding only :math:`k` nodes per step.

    Parameters
    ----------
    expand
        ``expand(prefix) -> (tokens, log_probs)``: the possible next tokens after ``prefix``
        and their conditional log-probabilities (which must sum to one).  Empty ``tokens``
        means ``prefix`` is a complete sequence.  A complete sequence that may also be
        extended needs an explicit end token.
    k
        Number of sequences; fewer are returned if the model has fewer.
    rng
        Source of randomness.
    root
        The empty prefix.
    tolerance
        Allowed deviation of :math:`\sum \exp(\text{log\_probs})` from 1.

    Returns
    -------
    BeamSample
    """
    rng = generator(rng)
    k = positive_int(k, "k")
    # beam entries: (prefix, log_prob, key, complete)
    beam = [(tuple(root), 0.0, float(rng.gumbel()), False)]
    while not all(item[3] for item in beam):
        candidates = []
        for prefix, log_prob, key, complete in beam:
            if complete:
                candidates.append((prefix, log_prob, key, True))
                continue
            tokens, log_q = expand(prefix)
            tokens = list(tokens)
            if not tokens:
                candidates.append((prefix, log_prob, key, True))
                continue
            log_q = as_float_array(log_q, "expand(...) log_probs", ndim=1, allow_neg_inf=True)
            if log_q.size != len(tokens):
                raise InputError(
                    f"expand{prefix!r}: {len(tokens)} tokens but {log_q.size} log-probabilities"
                )
            top = log_q.max()
            total = top + np.log(np.sum(np.exp(log_q - top))) if top > -np.inf else -np.inf
            if not abs(total) <= tolerance:
                raise InputError(
                    f"expand{prefix!r}: conditional probabilities sum to {np.exp(total)!r}, not 1"
                )
            keep = np.isfinite(log_q)
            phi = log_prob + log_q[keep]
            child_keys = truncate(phi + rng.gumbel(size=phi.size), key)
            for token, ph, g in zip((t for t, ok in zip(tokens, keep) if ok), phi, child_keys):
                candidates.append((prefix + (token,), float(ph), float(g), False))
        candidates.sort(key=lambda item: -item[2])
        beam = candidates[:k]
    return BeamSample(
        [b[0] for b in beam], np.array([b[1] for b in beam]), np.array([b[2] for b in beam])
    )
