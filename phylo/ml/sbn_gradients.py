r"""Gradients of expectations over tree topologies under a subsplit Bayesian network.

For a fitted SBN :math:`q_\phi` (:class:`phylo.sbn.SBNModel`) with logits :math:`\phi`
(:math:`\theta = \mathrm{softmax}(\phi)` within each parameter group, see
:meth:`phylo.sbn.SBNModel.with_logits`) and a function :math:`f` of unrooted topologies, the
estimators of :mod:`phylo.ml.score_function`, :mod:`phylo.ml.unordered_set` and
:mod:`phylo.ml.rao_blackwell` give unbiased estimates of

.. math:: \nabla_\phi\, \mathbb{E}_{T\sim q_\phi}[f(T)]
          = \mathbb{E}_{T\sim q_\phi}\big[f(T)\,\nabla_\phi \log q_\phi(T)\big],

and VIMCO (Mnih & Rezende 2016) the gradient of the multi-sample variational bound
:math:`\mathbb{E}[\log \frac1K\sum_j \tilde p(T_j)/q_\phi(T_j)]`: the base of variational
inference over tree topologies (Zhang & Matsen 2019, "Variational Bayesian phylogenetic
inference").

Two views of the same distribution are used:

* **unrooted topologies** (:meth:`SBNDistribution.sample`, :meth:`~SBNDistribution.log_prob`,
  :meth:`~SBNDistribution.score`): :math:`q(T) = \sum_{\text{rootings } r} q(T, r)`, exact
  sampling and the score :math:`\nabla_\phi \log q(T)` (expected parameter counts over the
  rootings, :meth:`phylo.sbn.SBNModel.grad_log_prob`).  REINFORCE, VIMCO and the
  Rao-Blackwellised sum-and-sample estimator (summing over the exact top-:math:`k` topologies
  of :meth:`phylo.sbn.SBNModel.top`) work here.
* **rooted derivations** (:meth:`SBNDistribution.expand`): the sequence of parameters chosen
  top-down (root split, then one subsplit per unresolved clade, depth first), whose product is
  :math:`q(T, r)`.  Sampling *without replacement* of distinct topologies has no sequential
  form (a topology has many derivations), so the unordered set estimator (Kool, van Hoof &
  Welling 2020) draws :math:`k` distinct *rooted* trees by stochastic beam search.  Since
  :math:`f` ignores the root, :math:`\mathbb E_{(T,r)}[f(T)] = \mathbb E_T[f(T)]` and the
  gradient is the same.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import logsumexp

from phylo.errors import InputError

from ._checks import generator, positive_int
from .rao_blackwell import sum_and_sample_gradient as _sum_and_sample
from .score_function import reinforce, reinforce_leave_one_out, vimco
from .unordered_set import stochastic_beam_search
from .unordered_set import unordered_set_gradient as _unordered_set


class SBNDistribution:
    r"""An unrooted SBN as a distribution with logits :math:`\phi`.

    Parameters
    ----------
    model
        A fitted unrooted :class:`phylo.sbn.SBNModel` (its support is kept).
    phi
        Logits, one per parameter (default: the model's ``log_theta``).
    """

    def __init__(self, model, phi: np.ndarray | None = None):
        if getattr(model, "kind", None) != "sbn":
            raise InputError("an SBN model is needed (not an SRF or CCD table)")
        if model.rooted:
            raise InputError("the topology view needs an unrooted SBN")
        base = model if phi is None else model.with_logits(np.asarray(phi, dtype=float))
        self.model = base
        self.phi = base.log_theta.copy() if phi is None else np.asarray(phi, dtype=float)
        s = base.support
        self._offsets = s.offsets
        self._param_key = s.param_key.astype(np.int64)
        self._param_sub = s.param_sub.astype(np.int64)
        self._sub_keys = s.sub_keys
        self._subsplits = s.subsplits.astype(np.int64)
        self._leaf = s.clade_leaf
        self.n_taxa = base.n_taxa

    @property
    def n_params(self) -> int:
        return self.model.n_params

    def with_logits(self, phi: np.ndarray) -> SBNDistribution:
        return SBNDistribution(self.model, phi)

    # -- unrooted topologies ---------------------------------------------------------------
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` exact draws: canonical parent arrays ``(size, 2n-2)``."""
        return self.model.sample(positive_int(size, "size"), generator(rng))[0]

    def log_prob(self, parents) -> np.ndarray:
        r""":math:`\log q_\phi(T)` of unrooted topologies (canonical parent arrays)."""
        return self.model.log_prob(np.atleast_2d(parents))

    def score(self, parents) -> np.ndarray:
        r""":math:`\nabla_\phi \log q_\phi(T)`, shape ``(m, n_params)``."""
        return self.model.grad_log_prob(np.atleast_2d(parents), wrt="logits")

    # -- rooted derivations ----------------------------------------------------------------
    def _open_keys(self, prefix) -> list[int]:
        """Parent keys still to be resolved after the choices in ``prefix`` (a stack)."""
        stack = [0]
        for m in prefix:
            k = stack.pop()
            if self._param_key[m] != k:
                raise InputError(f"parameter {m} does not belong to the open clade")
            s = self._param_sub[m]
            for j in (1, 0):
                kk = self._sub_keys[s, j]
                if kk >= 0:
                    stack.append(int(kk))
                elif kk == -2:
                    raise InputError("the derivation needs a parent key outside the support")
        return stack

    def expand(self, prefix) -> tuple[list[int], np.ndarray]:
        """Next choices after a derivation prefix and their conditional log probabilities
        (for :func:`phylo.ml.unordered_set.stochastic_beam_search`); none when complete.
        Choices whose subtrees cannot be completed in the support are left out (the group
        is renormalised only if some are; a fitted SBN has none)."""
        stack = self._open_keys(prefix)
        if not stack:
            return [], np.empty(0)
        k = stack[-1]
        a, b = self._offsets[k], self._offsets[k + 1]
        ids = np.arange(a, b)
        lt = self.model.log_theta[a:b]
        ok = np.isfinite(lt) & np.all(self._sub_keys[self._param_sub[ids]] != -2, axis=1)
        ids, lt = ids[ok], lt[ok]
        if ids.size == 0:
            raise InputError("the SBN has a parent with no possible child subsplit")
        return [int(i) for i in ids], lt - logsumexp(lt)

    def derivation_log_prob(self, prefixes) -> np.ndarray:
        r""":math:`\log q_\phi(T, r)` of complete derivations."""
        lt = self.model.log_theta
        return np.array([lt[list(p)].sum() for p in prefixes])

    def derivation_score(self, prefixes) -> np.ndarray:
        r""":math:`\nabla_\phi \log q_\phi(T, r)`: parameter counts minus :math:`\theta` times
        the counts of their groups."""
        theta = np.exp(self.model.log_theta)
        sizes = np.diff(self._offsets)
        out = np.zeros((len(prefixes), self.n_params))
        for i, p in enumerate(prefixes):
            c = np.bincount(np.asarray(p, dtype=np.int64), minlength=self.n_params)
            tot = np.add.reduceat(c, self._offsets[:-1])
            tot = np.where(sizes > 0, tot, 0)
            out[i] = c - theta * np.repeat(tot, sizes)
        return out

    def derivation_topology(self, prefixes) -> np.ndarray:
        """Canonical unrooted parent arrays of complete derivations."""
        from phylo.trees.topology import canonical

        n = self.n_taxa
        par = np.empty((len(prefixes), 2 * n - 1), np.int32)
        for t, p in enumerate(prefixes):
            stack = [n]  # nodes whose subsplit comes next, depth first
            nxt = n + 1
            par[t, n] = -1
            for m in p:
                node = stack.pop()
                s = self._param_sub[m]
                pushed = []
                for j in (0, 1):
                    c = self._subsplits[s, j]
                    leaf = self._leaf[c]
                    if leaf >= 0:
                        par[t, leaf] = node
                    else:
                        par[t, nxt] = node
                        pushed.append(nxt)
                        nxt += 1
                # match _open_keys: clade 0's key is on top of the stack
                stack.extend(reversed(pushed))
        return canonical(par, n, False)


# -- estimators ----------------------------------------------------------------------------


def _values(f: Callable, parents) -> np.ndarray:
    v = np.asarray(f(parents), dtype=np.float64).reshape(-1)
    if v.shape[0] != len(parents):
        raise InputError("f must return one value per topology")
    return v


def reinforce_gradient(
    dist: SBNDistribution,
    f: Callable,
    n_samples: int,
    rng: np.random.Generator,
    baseline="leave-one-out",
) -> np.ndarray:
    r"""REINFORCE estimate of :math:`\nabla_\phi \mathbb{E}_{q_\phi}[f(T)]` from
    ``n_samples`` exact draws; ``baseline`` is ``"leave-one-out"`` or a number."""
    return reinforce_from_samples(dist, f, dist.sample(rng, n_samples), baseline)


def reinforce_from_samples(
    dist: SBNDistribution, f: Callable, parents, baseline="leave-one-out"
) -> np.ndarray:
    """:func:`reinforce_gradient` for given independent draws (canonical parent arrays)."""
    parents = np.atleast_2d(parents)
    values = _values(f, parents)
    scores = dist.score(parents)
    if isinstance(baseline, str):
        if baseline != "leave-one-out":
            raise InputError("baseline: 'leave-one-out' or a number")
        return reinforce_leave_one_out(values, scores)
    return reinforce(values, scores, baseline)


def vimco_gradient(
    dist: SBNDistribution, log_target: Callable, n_samples: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    r"""VIMCO estimate of the multi-sample bound and its gradient.

    .. math:: L_K(\phi) = \mathbb{E}\Big[\log \frac1K \sum_{j=1}^K
              \frac{\tilde p(T_j)}{q_\phi(T_j)}\Big], \quad T_j \sim q_\phi,

    for an unnormalised target :math:`\log \tilde p` given by ``log_target(parents)``.
    Returns the bound's estimate :math:`\log \frac1K\sum_j w_j` and the gradient.
    """
    return vimco_from_samples(dist, log_target, dist.sample(rng, n_samples))


def vimco_from_samples(
    dist: SBNDistribution, log_target: Callable, parents
) -> tuple[float, np.ndarray]:
    """:func:`vimco_gradient` for given independent draws."""
    parents = np.atleast_2d(parents)
    scores = dist.score(parents)
    log_w = _values(log_target, parents) - dist.log_prob(parents)
    return vimco(log_w, scores, log_weight_grads=-scores)


def unordered_set_gradient(
    dist: SBNDistribution, f: Callable, k: int, rng: np.random.Generator, baseline="builtin"
) -> np.ndarray:
    r"""Unordered set estimate of :math:`\nabla_\phi \mathbb{E}_{q_\phi}[f(T)]` from ``k``
    distinct rooted trees drawn without replacement by stochastic beam search."""
    beam = stochastic_beam_search(dist.expand, positive_int(k, "k"), generator(rng))
    return unordered_set_from_derivations(dist, f, [tuple(p) for p in beam.sequences], baseline)


def unordered_set_from_derivations(
    dist: SBNDistribution, f: Callable, prefixes, baseline="builtin"
) -> np.ndarray:
    """:func:`unordered_set_gradient` for a given set of distinct complete derivations."""
    log_p = dist.derivation_log_prob(prefixes)
    values = _values(f, dist.derivation_topology(prefixes))
    scores = dist.derivation_score(prefixes)
    return _unordered_set(log_p, values, scores, baseline=baseline)


def sum_and_sample_gradient(
    dist: SBNDistribution, f: Callable, k: int, rng: np.random.Generator, max_draws: int = 1_000_000
) -> np.ndarray:
    r"""Rao-Blackwellised estimate (Liu et al. 2019): the exact sum over the ``k`` most
    probable topologies (:meth:`phylo.sbn.SBNModel.top`) plus one draw from the rest (by
    rejection: exact draws until one falls outside the top ``k``)."""
    rng = generator(rng)
    top = dist.model.top(positive_int(k, "k"))
    summed = np.asarray(top.parents)
    keys = {row.tobytes() for row in summed}
    if complement_log_mass(top.log_prob) == -np.inf:
        return sum_and_sample_from(dist, f, summed, top.log_prob, None)
    drawn = 0
    batch = 64
    while drawn < max_draws:
        draws = dist.sample(rng, batch)
        drawn += batch
        for row in draws:
            if row.tobytes() not in keys:
                return sum_and_sample_from(dist, f, summed, top.log_prob, row)
        batch = min(4 * batch, max_draws)
    raise InputError(
        f"no draw outside the top {k} topologies in {drawn} draws (their mass is "
        f"{np.exp(complement_log_mass(top.log_prob)):.3g}); use a smaller k"
    )


def complement_log_mass(summed_log_p) -> float:
    r""":math:`\log(1 - \sum_C q(c))`, ``-inf`` when the summed states hold all the mass."""
    total = logsumexp(np.asarray(summed_log_p, dtype=float))
    return float(np.log1p(-np.exp(total))) if total < 0 else -np.inf


def sum_and_sample_from(
    dist: SBNDistribution, f: Callable, summed, summed_log_p, sample
) -> np.ndarray:
    """:func:`sum_and_sample_gradient` for given summed topologies and one complement draw
    (``None`` when the summed topologies hold all the mass)."""
    summed = np.atleast_2d(summed)
    log_p = np.asarray(summed_log_p, dtype=float)
    log_rest = complement_log_mass(log_p)
    values = _values(f, summed)
    scores = dist.score(summed)
    if sample is None:
        if log_rest > -np.inf:
            raise InputError(
                "a complement draw is needed: the summed topologies do not hold all the mass"
            )
        return _sum_and_sample(log_p, values, scores, log_rest=-np.inf)
    z = np.atleast_2d(sample)
    return _sum_and_sample(
        log_p, values, scores, float(_values(f, z)[0]), dist.score(z)[0], log_rest
    )
