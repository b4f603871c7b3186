"""Credible sets of topologies and the credible level of a given topology, exactly.

For a distribution ``p`` over topologies (a fitted SBN, or the sample relative frequencies),
list the topologies in order of decreasing probability ``p_1 >= p_2 >= ...``:

* the **credible set** of level ``a`` is the smallest set of topologies whose probabilities
  add up to at least ``a``: the first ``k`` with ``p_1 + ... + p_k >= a``;
* the **credible level** of a topology ``T`` is the mass of the topologies at least as
  probable as ``T``: ``c(T) = sum_{i: p_i >= p(T)} p_i``, i.e. the level of the smallest
  credible set that contains ``T`` (ties included).  A topology the model cannot produce has
  ``c(T) = 1``.

Both are computed from the exact top-``k`` enumeration of :meth:`SBNModel.top`, with ``k``
grown geometrically until the set is complete (or, for :func:`credible_levels`, until the
``k``-th probability falls below that of every asked topology).  When the enumeration is cut
short (``max_topologies`` or ``max_derivations``), :func:`credible_levels` reports the lower
bound ``c(T) >= p_1 + ... + p_k + p(T)`` (every listed topology is more probable than ``T``)
and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .model import TopTrees

#: Relative tolerance under which two probabilities count as a tie.
TIE = 1e-12


@dataclass
class CredibleSet:
    """The topologies of a credible set, most probable first.

    Attributes
    ----------
    top : TopTrees
        Parent arrays and log probabilities (``top.newick(i)`` writes one).
    cumulative : ndarray
        Running sums of their probabilities.
    level : float
        The level asked for.
    """

    top: TopTrees
    cumulative: np.ndarray
    level: float

    def __len__(self) -> int:
        return len(self.top)

    @property
    def mass(self) -> float:
        return float(self.cumulative[-1]) if len(self) else 0.0


def _top(model, k: int, max_derivations: int) -> TopTrees:
    if model.kind == "sbn":
        return model.top(k, max_derivations=max_derivations)
    return model.top(k)


def credible_set(
    model, level: float = 0.95, max_topologies: int = 1_000_000, max_derivations: int = 2_000_000
) -> CredibleSet:
    """The smallest set of topologies whose probability under ``model`` reaches ``level``.

    ``model`` is an :class:`~phylo.sbn.SBNModel` or :class:`~phylo.sbn.SRFModel` (for the
    sample-frequency version, :func:`phylo.sbn.fit_srf` of the sample).  Raises
    :class:`~phylo.errors.ModelError` when more than ``max_topologies`` would be needed.
    """
    if not 0.0 < level <= 1.0:
        raise ValueError("the level must be in (0, 1]")
    k = min(64, max_topologies)
    while True:
        best = _top(model, k, max_derivations)
        p = np.exp(best.log_prob)
        cum = np.cumsum(p)
        reached = cum.shape[0] > 0 and cum[-1] >= level - 1e-12
        if reached or len(best) < k:
            m = int(np.searchsorted(cum, level - 1e-12) + 1) if reached else len(best)
            sub = TopTrees(best.parents[:m], best.log_prob[:m], best.taxa, best.rooted, m)
            return CredibleSet(sub, cum[:m], level)
        if k >= max_topologies:
            raise ModelError(
                f"the {level:g} credible set has more than {max_topologies} topologies "
                f"(the first {k} hold {cum[-1]:.4g})"
            )
        k = min(4 * k, max_topologies)


@dataclass
class CredibleLevels:
    """Credible levels of given topologies.

    Attributes
    ----------
    log_prob : ndarray
        Each topology's log probability under the model.
    level : ndarray
        Its credible level, or a lower bound of it where ``exact`` is False.
    exact : ndarray of bool
    listed : int
        Topologies enumerated to find them.
    """

    log_prob: np.ndarray
    level: np.ndarray
    exact: np.ndarray
    listed: int


def credible_levels(
    model, trees, max_topologies: int = 100_000, max_derivations: int = 2_000_000
) -> CredibleLevels:
    """The credible level ``c(T)`` of every topology in ``trees`` (see the module docstring).

    ``trees`` is anything :meth:`SBNModel.log_prob` takes.  The enumeration stops at
    ``max_topologies`` (or when an unrooted SBN needs more than ``max_derivations`` rooted
    trees to prove its order); topologies less probable than the last one listed then get
    the lower bound and ``exact = False``.
    """
    logp = np.asarray(model.log_prob(trees), dtype=float)
    m = logp.shape[0]
    level = np.ones(m)
    exact = np.ones(m, bool)
    live = np.isfinite(logp)
    if not live.any():
        return CredibleLevels(logp, level, exact, 0)
    target = float(logp[live].min())
    k = min(64, max_topologies)
    best = None
    complete = False
    while True:
        try:
            best = _top(model, k, max_derivations)
        except ModelError:
            break
        if len(best) < k or best.log_prob[-1] < target - TIE * abs(target) - 1e-300:
            complete = True
            break
        if k >= max_topologies:
            break
        k = min(4 * k, max_topologies)
    if best is None:  # not even the first enumeration succeeded
        level[live] = np.exp(logp[live])
        exact[live] = False
        return CredibleLevels(logp, level, exact, 0)
    lp = best.log_prob
    p = np.exp(lp)
    cum = np.cumsum(p)
    last = lp[-1] if len(lp) else -math.inf
    for i in np.flatnonzero(live):
        # listed topologies at least as probable as this one (ties within TIE)
        thr = logp[i] - TIE * max(1.0, abs(logp[i]))
        j = int(np.searchsorted(-lp, -thr, side="right"))
        if complete or logp[i] > last + TIE * max(1.0, abs(last)):
            level[i] = cum[j - 1] if j else 0.0
            if j == 0:  # cannot happen for an exact model; keep the topology's own mass
                level[i] = math.exp(logp[i])
        else:
            exact[i] = False
            if j and logp[i] >= last - TIE * max(1.0, abs(last)):
                level[i] = cum[j - 1]  # as probable as the last listed: it may be listed
            else:
                level[i] = (cum[-1] if len(cum) else 0.0) + math.exp(logp[i])
    return CredibleLevels(logp, np.minimum(level, 1.0), exact, len(lp))
