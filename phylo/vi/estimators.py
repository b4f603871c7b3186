r"""Stochastic gradients of variational objectives over topologies and branch lengths.

Every estimator draws a few particles (:func:`phylo.vi.objective.draw_particles`), one
likelihood gradient each, and returns a :class:`Step`: the gradient with respect to the
SBN logits :math:`\phi` (the *topology gradient*) and to the branch-length parameters
:math:`\psi`, of an objective evaluated on the annealed weights :math:`w^{(\beta)}`.
Branch-length gradients are always by reparameterisation.  Let :math:`\tilde w_j =
w_j / \sum_i w_i` be the self-normalised weights.

``vimco`` (default; Mnih & Rezende 2016, as VBPI uses it)
    Objective :math:`L^K`.  :math:`\nabla_\phi L^K \approx \sum_j \big(\hat L -
    \hat L_{-j}\big) \nabla_\phi\log Q_\phi(\tau_j) - \sum_j \tilde w_j \nabla_\phi \log
    Q_\phi(\tau_j)`, with :math:`\hat L_{-j}` the bound with :math:`w_j` replaced by the
    geometric mean of the others (:func:`phylo.ml.score_function.vimco`);
    :math:`\nabla_\psi L^K \approx \sum_j \tilde w_j \nabla_\psi \log w_j`.
``rws`` (reweighted wake-sleep, Bornschein & Bengio 2015, as in VBPI)
    The topology parameters follow the wake-phase update :math:`\sum_j \tilde w_j
    \nabla_\phi \log Q_\phi(\tau_j)`, a self-normalised estimate of
    :math:`-\nabla_\phi \mathrm{KL}(p \,\|\, Q_\phi)` (biased for finite :math:`K`, no
    bound behind it); branch lengths as for ``vimco``.
``unordered-set`` (Kool, van Hoof & Welling 2020)
    Objective: the ELBO :math:`L^1 = \mathbb E_{Q}[\log w]`.  :math:`K` *distinct*
    rooted trees :math:`S` are drawn without replacement by stochastic beam search over
    the SBN's derivations (:func:`phylo.ml.unordered_set.stochastic_beam_search`); with
    :math:`f(s) = \log w(s)` (its own branch-length draw) the estimates are
    :math:`\nabla_\phi L^1 \approx \sum_{s\in S} Q(s) R(S, s)\,(f(s) - b(S, s))
    \nabla_\phi \log Q_\phi(s)` (built-in baseline :math:`b`) and
    :math:`\nabla_\psi L^1 \approx \sum_{s} Q(s) R(S, s) \nabla_\psi f(s)`, unbiased
    (:func:`phylo.ml.unordered_set.unordered_set_gradient`).  Since :math:`f` depends on
    the rooted tree only through its unrooted topology, the gradient over rooted
    derivations is that over topologies.  The term :math:`-\nabla_\phi \log Q(\tau)` of
    :math:`\nabla_\phi f` has expectation zero and is left out.
``sum-and-sample`` (Liu et al. 2019, Rao-Blackwellised)
    Objective: the ELBO.  The :math:`K-1` most probable topologies :math:`C` (exact,
    :meth:`phylo.sbn.SBNModel.top`, recomputed every ``refresh`` steps: any set that
    does not depend on the draw keeps the estimate unbiased) are summed with their exact
    probabilities under the *current* :math:`Q_\phi`, and one topology is drawn from
    :math:`Q_\phi` restricted to the rest (by rejection); the baseline is the
    :math:`Q`-weighted mean of :math:`f` over :math:`C`, which does not depend on the
    draw (:func:`phylo.ml.rao_blackwell.sum_and_sample`).

At equal :math:`K` every estimator costs :math:`K` likelihood gradients per step.

With ``branch_elbo=True`` (used while the topology distribution is held, see
:mod:`phylo.vi.training`) ``vimco`` and ``rws`` take the branch-length gradient of the ELBO,
:math:`\frac1K\sum_j \nabla_\psi \log w_j`, instead of that of :math:`L^K`: every drawn
topology then has its own branch lengths fitted, whereas the self-normalised weights
:math:`\tilde w_j` train mostly the best particle's (the ELBO-based estimators always
do the former).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..ml.unordered_set import (
    log_leave_one_out_ratios,
    unordered_set_gradient,
)
from .family import VariationalFamily
from .objective import NonFiniteError, Particles, Target, draw_particles, logsumexp

#: The estimators of the topology gradient, by name (the first is the default).
ESTIMATORS = ("vimco", "rws", "unordered-set", "sum-and-sample")


@dataclass
class Step:
    """One stochastic gradient.

    Attributes
    ----------
    objective : float
        The estimator's objective at :math:`\\beta = 1` estimated from this step's
        particles (:math:`\\log\\frac1K\\sum_j w_j` for ``vimco`` and ``rws``, an
        unbiased ELBO estimate for the others).
    annealed : float
        The same at the step's :math:`\\beta`.
    grad_phi, grad_psi : ndarray
        Ascent directions for the logits and the branch-length parameters
        (``[mean, log_sd]``).
    evaluations : int
        Likelihood gradients computed.
    max_log_likelihood : float
    """

    objective: float
    annealed: float
    grad_phi: np.ndarray
    grad_psi: np.ndarray
    evaluations: int
    max_log_likelihood: float


def _psi_gradient(family: VariationalFamily, parts: Particles, beta: float, coef) -> np.ndarray:
    d_mu, d_ls = parts.weight_gradients(beta)
    c = np.asarray(coef, dtype=float)[:, None]
    return family.branches.accumulate(parts.topologies.index, c * d_mu, c * d_ls)


def vimco_coefficients(log_w: np.ndarray) -> tuple[float, np.ndarray]:
    """VIMCO with the geometric-mean control variate, as coefficients: returns
    :math:`\\hat L = \\log\\frac1K\\sum_j w_j` and :math:`c_j = (\\hat L - \\hat L_{-j}) -
    \\tilde w_j`, so that the gradient is :math:`\\sum_j c_j \\nabla_\\phi \\log
    Q_\\phi(\\tau_j)` (:func:`phylo.ml.score_function.vimco` with identity scores and
    ``log_weight_grads = -scores``, without its per-call overhead)."""
    k = log_w.shape[0]
    bound = float(logsumexp(log_w)) - math.log(k)
    log_hat = (log_w.sum() - log_w) / (k - 1)
    replaced = np.tile(log_w, (k, 1))
    np.fill_diagonal(replaced, log_hat)
    local = bound - (logsumexp(replaced, axis=1) - math.log(k))
    return bound, local - np.exp(log_w - logsumexp(log_w))


def _check_k(k: int, least: int, name: str) -> int:
    if not isinstance(k, (int, np.integer)) or k < least:
        raise InputError(f"{name} needs at least {least} particles, not {k!r}")
    return int(k)


class VIMCO:
    """VIMCO with ``k`` particles (see the module docstring)."""

    name = "vimco"

    def __init__(self, k: int = 10):
        self.k = _check_k(k, 2, "VIMCO")

    def step(self, family, target, beta, rng, branch_elbo: bool = False) -> Step:
        parts = draw_particles(family, target, self.k, rng)
        lw = parts.log_weights(beta)
        annealed, coef = vimco_coefficients(lw)
        w = np.full(self.k, 1.0 / self.k) if branch_elbo else np.exp(lw - logsumexp(lw))
        lw1 = parts.log_weights(1.0)
        return Step(
            float(logsumexp(lw1) - math.log(self.k)),
            annealed,
            family.score_sum(parts.topologies, coef),
            _psi_gradient(family, parts, beta, w),
            self.k,
            float(parts.log_likelihood.max()),
        )


class RWS:
    """Reweighted wake-sleep with ``k`` particles (see the module docstring)."""

    name = "rws"

    def __init__(self, k: int = 10):
        self.k = _check_k(k, 1, "RWS")

    def step(self, family, target, beta, rng, branch_elbo: bool = False) -> Step:
        parts = draw_particles(family, target, self.k, rng)
        lw = parts.log_weights(beta)
        w = np.exp(lw - logsumexp(lw))
        lw1 = parts.log_weights(1.0)
        return Step(
            float(logsumexp(lw1) - math.log(self.k)),
            float(logsumexp(lw) - math.log(self.k)),
            family.score_sum(parts.topologies, w),
            _psi_gradient(family, parts, beta, np.full(self.k, 1.0 / self.k) if branch_elbo else w),
            self.k,
            float(parts.log_likelihood.max()),
        )


def sample_derivations(
    family: VariationalFamily, k: int, rng: np.random.Generator
) -> tuple[list, np.ndarray, np.ndarray]:
    """``k`` distinct rooted trees of the SBN drawn without replacement by stochastic beam
    search over their derivations (Kool, van Hoof & Welling 2019; compiled, see
    :mod:`phylo.vi._kernels`): their derivations (SBN parameter ids, root split first),
    log probabilities :math:`\\log Q_\\phi(\\tau, r)` and unrooted topologies (canonical
    parent arrays).  Fewer than ``k`` when the support has fewer rooted trees."""
    from ..trees.topology import canonical
    from . import _kernels

    s = family.sbn.support
    n = family.n_taxa
    sizes = np.diff(s.offsets)
    gumbel = rng.gumbel(size=(n - 1, k, int(sizes.max())))
    root = float(rng.gumbel())
    ids = np.empty((k, n - 1), np.int64)
    logp = np.empty(k)
    par = np.empty((k, 2 * n - 1), np.int64)
    found = _kernels.beam_search(
        family.sbn.log_theta,
        s.offsets.astype(np.int64),
        s.param_sub.astype(np.int64),
        s.subsplits.astype(np.int64),
        s.sub_keys,
        s.clade_leaf,
        n,
        k,
        gumbel,
        root,
        ids,
        logp,
        par,
    )
    if found == 0:
        raise InputError("the SBN has a parent with no possible child subsplit")
    return list(ids[:found]), logp[:found], canonical(par[:found], n, False)


class UnorderedSet:
    """The unordered set estimator of the ELBO gradient with ``k`` distinct rooted trees."""

    name = "unordered-set"

    def __init__(self, k: int = 10):
        self.k = _check_k(k, 2, "the unordered set estimator")

    def step(self, family, target, beta, rng, branch_elbo: bool = False) -> Step:
        prefixes, log_p, parents = sample_derivations(family, self.k, rng)
        parts = draw_particles(
            family, target, len(prefixes), rng, topologies=family.topologies(parents)
        )
        f = parts.log_weights(beta)
        ratios = log_leave_one_out_ratios(log_p)
        a = np.exp(log_p + ratios.log_r1)
        coef = unordered_set_gradient(log_p, f, np.eye(len(f)), baseline="builtin")
        return Step(
            float(a @ parts.log_weights(1.0)),
            float(a @ f),
            family.derivation_score_sum(prefixes, coef),
            _psi_gradient(family, parts, beta, a),
            len(f),
            float(parts.log_likelihood.max()),
        )


class SumAndSample:
    """Rao-Blackwellised sum-and-sample: the ``k - 1`` most probable topologies and one
    draw from the rest; the set is recomputed every ``refresh`` steps."""

    name = "sum-and-sample"

    def __init__(self, k: int = 10, refresh: int = 100, max_draws: int = 100_000):
        self.k = _check_k(k, 2, "sum-and-sample")
        self.refresh = int(refresh)
        self.max_draws = int(max_draws)
        self._top = None
        self._age = 0

    def _summed(self, family) -> np.ndarray:
        if self._top is None or self._age >= self.refresh:
            self._top = np.asarray(family.sbn.top(self.k - 1).parents)
            self._keys = {row.tobytes() for row in self._top}
            self._age = 0
        self._age += 1
        return self._top

    def _complement_draw(self, family, rng):
        drawn, batch = 0, 16
        while drawn < self.max_draws:
            draws = family.sbn.sample(batch, rng)[0]
            drawn += batch
            for row in draws:
                if row.tobytes() not in self._keys:
                    return row
            batch = min(4 * batch, self.max_draws)
        raise NonFiniteError(f"no draw outside the {self.k - 1} summed topologies in {drawn} draws")

    def step(self, family, target, beta, rng, branch_elbo: bool = False) -> Step:
        summed = self._summed(family)
        tops = family.topologies(summed)
        log_c = tops.log_q
        total = logsumexp(log_c)
        log_rest = math.log1p(-math.exp(total)) if total < -1e-12 else -np.inf
        rows = summed
        if log_rest > -np.inf:
            rows = np.vstack([summed, self._complement_draw(family, rng)[None, :]])
        parts = draw_particles(
            family, target, rows.shape[0], rng, topologies=family.topologies(rows)
        )
        f = parts.log_weights(beta)
        f1 = parts.log_weights(1.0)
        weights = np.exp(log_c)
        if log_rest > -np.inf:
            weights = np.append(weights, math.exp(log_rest))
        m = len(summed)
        baseline = float(weights[:m] @ f[:m] / weights[:m].sum())
        coef = weights * (f - baseline)
        return Step(
            float(weights @ f1),
            float(weights @ f),
            family.score_sum(parts.topologies, coef),
            _psi_gradient(family, parts, beta, weights),
            len(f),
            float(parts.log_likelihood.max()),
        )


def make_estimator(name: str, k: int = 10):
    """The estimator called ``name`` (one of :data:`ESTIMATORS`) with ``k`` particles."""
    classes = {"vimco": VIMCO, "rws": RWS, "unordered-set": UnorderedSet}
    classes["sum-and-sample"] = SumAndSample
    if name not in classes:
        raise InputError(f"unknown estimator {name!r}: expected one of {', '.join(ESTIMATORS)}")
    return classes[name](k)


def gradient_moments(
    family: VariationalFamily,
    target: Target,
    estimator,
    repeats: int,
    rng: np.random.Generator,
    beta: float = 1.0,
) -> dict:
    """Mean and total variance of an estimator's topology gradient at a fixed point.

    Returns ``mean`` (the average of ``repeats`` independent gradients),
    ``variance`` (:math:`\\mathrm{tr}\\,\\mathrm{Cov}`, the sum over logits of the
    per-coordinate sample variances ``variance_per_coordinate``), ``squared_mean_norm``
    (:math:`\\|\\bar g\\|^2`) and ``squared_norm_unbiased`` (:math:`\\|\\bar g\\|^2 -
    \\mathrm{tr}\\,\\mathrm{Cov}/R`, unbiased for the squared norm of the expected
    gradient), the first two for the branch-length gradient, and the likelihood
    evaluations used."""
    gs, hs, evals = [], [], 0
    for _ in range(int(repeats)):
        s = estimator.step(family, target, beta, rng)
        gs.append(s.grad_phi)
        hs.append(s.grad_psi)
        evals += s.evaluations
    G, H = np.array(gs), np.array(hs)
    return {
        "mean": G.mean(axis=0),
        "variance": float(G.var(axis=0, ddof=1).sum()),
        "variance_per_coordinate": G.var(axis=0, ddof=1),
        "squared_mean_norm": float((G.mean(axis=0) ** 2).sum()),
        "squared_norm_unbiased": float(
            (G.mean(axis=0) ** 2).sum() - G.var(axis=0, ddof=1).sum() / len(G)
        ),
        "branch_variance": float(H.var(axis=0, ddof=1).sum()),
        "branch_squared_mean_norm": float((H.mean(axis=0) ** 2).sum()),
        "evaluations": evals,
        "repeats": int(repeats),
    }
