r"""Discrete distributions as the gradient estimators see them.

The score function :math:`\nabla_\theta \log q_\theta(x)` is what the likelihood-ratio
(REINFORCE) identity :math:`\nabla_\theta \mathbb{E}_{q_\theta}[f] =
\mathbb{E}_{q_\theta}[f(x)\nabla_\theta \log q_\theta(x)]` needs (Williams 1992, "Simple
statistical gradient-following algorithms for connectionist reinforcement learning").

The score-function estimators (:mod:`phylo.ml.score_function`), the unordered set estimator
(:mod:`phylo.ml.unordered_set`) and the sum-and-sample estimators
(:mod:`phylo.ml.rao_blackwell`) work on *arrays*: for the outcomes they were given, the
log-probabilities :math:`\log q_\theta(x)`, the function values :math:`f(x)` and the score
vectors :math:`\nabla_\theta \log q_\theta(x)`.  Any distribution that can produce these fits;
:class:`DiscreteDistribution` writes the contract down, and :class:`Categorical` fulfils it for
a categorical distribution parameterised by its logits.

A distribution over a structured domain (for example tree topologies under a subsplit Bayesian
network) plugs in by implementing the same four methods: sampling, ``log_prob``, ``score``
(the gradient of ``log_prob`` with respect to its own parameter vector), and, for sampling
without replacement, a sequential factorisation usable by
:func:`phylo.ml.unordered_set.stochastic_beam_search`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, generator, positive_int
from phylo.ml.gumbel import gumbel_top_k


@runtime_checkable
class DiscreteDistribution(Protocol):
    r"""What the gradient estimators need from a discrete distribution :math:`q_\theta`.

    ``outcomes`` is whatever the distribution uses to name outcomes (integers for a
    categorical, arrays of choices for a structured domain); the estimators never look inside.
    """

    def sample(self, rng: np.random.Generator, size: int) -> Any:
        """``size`` independent outcomes."""

    def log_prob(self, outcomes) -> np.ndarray:
        r""":math:`\log q_\theta(x)` for each outcome, shape ``(m,)``."""

    def score(self, outcomes) -> np.ndarray:
        r""":math:`\nabla_\theta \log q_\theta(x)` for each outcome, shape ``(m, P)``."""


class Categorical:
    r"""Categorical distribution :math:`q_\theta(i) = e^{\theta_i} / \sum_j e^{\theta_j}`.

    The parameter vector is the logits :math:`\theta`, so the score is
    :math:`\nabla_\theta \log q_\theta(i) = e_i - q_\theta`.

    Parameters
    ----------
    logits
        Shape ``(n,)``; ``-inf`` marks impossible categories.
    """

    def __init__(self, logits):
        logits = as_float_array(logits, "logits", ndim=1, allow_neg_inf=True)
        if logits.size == 0 or not np.isfinite(logits).any():
            raise InputError("logits: need at least one category with finite logit")
        self.logits = logits
        self.log_probs = logits - logsumexp(logits)
        self.probs = np.exp(self.log_probs)

    @property
    def n(self) -> int:
        """Number of categories."""
        return self.logits.size

    def _indices(self, outcomes) -> np.ndarray:
        x = np.asarray(outcomes)
        if x.dtype.kind not in "iu":
            raise InputError("outcomes: expected integer category indices")
        if x.size and (x.min() < 0 or x.max() >= self.n):
            raise InputError(f"outcomes: category indices must lie in [0, {self.n})")
        return x.astype(np.int64)

    def enumerate(self) -> np.ndarray:
        """All categories, ``0 .. n-1``."""
        return np.arange(self.n)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent categories (inverse-CDF sampling)."""
        rng = generator(rng)
        size = positive_int(size, "size")
        return rng.choice(self.n, size=size, p=self.probs)

    def log_prob(self, outcomes) -> np.ndarray:
        r""":math:`\log q_\theta(x)`."""
        return self.log_probs[self._indices(outcomes)]

    def score(self, outcomes) -> np.ndarray:
        r""":math:`e_x - q_\theta`, shape ``(m, n)``."""
        x = np.atleast_1d(self._indices(outcomes))
        out = np.tile(-self.probs, (x.size, 1))
        out[np.arange(x.size), x] += 1.0
        return out

    def sample_without_replacement(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` distinct categories in draw order, by the Gumbel-top-k trick."""
        return gumbel_top_k(self.log_probs, k, rng)

    def log_mass_outside(self, outcomes) -> float:
        r""":math:`\log(1 - \sum_{x \in S} q(x))`, summed over the complement (no cancellation)."""
        mask = np.ones(self.n, dtype=bool)
        mask[self._indices(outcomes)] = False
        if not mask.any():
            return -np.inf
        return float(logsumexp(self.log_probs[mask]))

    def top_k(self, k: int) -> np.ndarray:
        """The ``k`` most probable categories, most probable first (ties: lower index first)."""
        k = positive_int(k, "k")
        if k > self.n:
            raise InputError(f"k: only {self.n} categories")
        return np.argsort(-self.log_probs, kind="stable")[:k]

    def sample_outside(self, rng: np.random.Generator, excluded) -> int:
        """One category from :math:`q` restricted to the complement of ``excluded``."""
        rng = generator(rng)
        mask = np.ones(self.n, dtype=bool)
        mask[self._indices(excluded)] = False
        mask &= np.isfinite(self.log_probs)
        if not mask.any():
            raise InputError("excluded: no possible category is left to sample")
        idx = np.flatnonzero(mask)
        p = np.exp(self.log_probs[idx] - logsumexp(self.log_probs[idx]))
        return int(idx[rng.choice(idx.size, p=p)])
