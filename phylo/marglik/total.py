"""The marginal likelihood of an alignment over all topologies: SBN-stratified sampling.

**The quantity.**  For an alignment ``D`` of ``n`` taxa, a substitution model and an i.i.d.
branch-length prior,

.. math::

    Z = p(D) = \\sum_\\tau p(\\tau) Z_\\tau, \\qquad
    Z_\\tau = p(D \\mid \\tau) = \\int L(t, \\tau)\\, p(t)\\, dt,

with the uniform prior over the ``U_n = (2n-5)!!`` unrooted topologies,
``p(tau) = 1 / U_n`` (MrBayes's default).  Each ``Z_tau`` is estimated by a fixed-topology
estimator of :mod:`phylo.marglik.estimators` (``glis`` by default) on the posterior of
:mod:`phylo.marglik.posterior`, which reports ``log Z^_tau`` and the standard error ``s_tau``
of it.

**The proposal.**  ``q`` is a tree distribution with exact probabilities and exact sampling:
an SBN fitted to a tree sample of the posterior (:mod:`phylo.sbn`).  It picks the
topologies worth computing exactly and serves as the importance distribution over the rest.

**The stratified estimator.**  Let ``S_K`` be ``K`` topologies (the ``K`` topologies of the
tree sample most probable under ``q``), ``Q_K = sum_{tau in S_K} q(tau)``, and ``q_R`` the
distribution ``q`` restricted to the complement, ``q_R(tau) = q(tau) / (1 - Q_K)`` for
``tau`` outside ``S_K``.  Split

.. math::

    Z = E_K + R_K, \\qquad E_K = \\sum_{\\tau \\in S_K} p(\\tau) Z_\\tau, \\qquad
    R_K = \\sum_{\\tau \\notin S_K} p(\\tau) Z_\\tau .

The *exact part* ``E^ = sum_{S_K} p(tau) Z^_tau`` uses one estimate per topology.  The
*remainder* is estimated by importance sampling: ``tau_1 .. tau_N`` are the first ``N``
exact draws from ``q`` that fall outside ``S_K`` (so they are independent draws from
``q_R``), and

.. math::

    \\hat R = \\frac1N \\sum_{j=1}^N w_j, \\qquad
    w_j = \\frac{p(\\tau_j) \\hat Z_{\\tau_j}}{q_R(\\tau_j)}
        = (1 - Q_K) \\frac{p(\\tau_j) \\hat Z_{\\tau_j}}{q(\\tau_j)},

where draws of the same topology share one estimate ``Z^_tau`` (each distinct topology is
estimated once).  ``E^ + R^`` estimates ``Z`` restricted to the support of ``q`` plus
``S_K``; topologies outside both have no way to be counted (see *Support* below).

**Its variance.**  With ``Var(Z^_tau) ~ (Z^_tau s_tau)^2`` (delta method) and the errors of
different topologies independent (each has its own random stream):

.. math::

    \\mathrm{Var}(\\hat E) = \\sum_{\\tau \\in S_K} (p(\\tau) \\hat Z_\\tau s_\\tau)^2, \\qquad
    \\mathrm{Var}(\\hat R) = \\frac{s_w^2}{N}
        + \\sum_u \\frac{c_u (c_u - 1)\\, (w_u s_u)^2}{N (N - 1)},

where ``s_w^2`` is the sample variance of the ``w_j`` and the sum runs over the distinct
remainder topologies ``u``, drawn ``c_u`` times with weight ``w_u``.  The sample variance
already holds the estimates' errors as if every draw had its own (``E[s_w^2]`` is the
variance of the exact weights plus ``(A - B/N)/(N-1)``, with ``A = sum_u c_u v_u``,
``B = sum_u c_u^2 v_u``, ``v_u = (w_u s_u)^2``), while ``R^`` holds ``B / N^2`` of them;
the second term is the difference, zero when no topology is drawn twice.  The reported
standard error of ``log Z^`` is ``sqrt(Var(E^) + Var(R^)) / (E^ + R^)``.  The *share of the
exact part* is ``E^ / (E^ + R^)``; the remainder's share in nats is ``log(E^ + R^) - log
E^``.

**How K is chosen.**  In stages ``s = 0, 1, ...`` with ``K_s = k_0 2^s`` exact topologies
and ``N_s = n_0 2^s`` remainder draws (``K`` at most the number of sampled topologies),
each stage computing only the topologies no earlier stage computed (remainder draws are taken
from one fixed stream of draws, so later stages mostly reuse earlier ones).  The first stage
at which both the remainder's share (nats) and the standard error of ``log Z^`` are at most
the tolerance is the answer.  On a flat posterior the share falls slowly as ``K`` doubles;
once the standard error is within the tolerance, ``K`` stops growing when the share, falling
at the rate of the last doubling, would need more doublings than the budget of topologies
allows (a warning gives the share).  Every stage is a deterministic function of ``q``, the seed
and the estimates of earlier stages, so the answer does not depend on how the topologies'
estimates were computed (processes, Dask, shards).  A budget of distinct topologies ends the
growth (the last stage is shrunk to fit it), with a warning when the tolerance is not met.
``K`` (or the top mass ``Q_K``) can instead be fixed, for one stage of ``n_0`` draws.

**Diagnostics.**  The remainder's effective sample size ``(sum w)^2 / sum w^2`` and the
Pareto ``k^`` of its weights (:func:`pareto_khat`): above 0.7 the weights' variance is not
to be trusted (Vehtari et al., "Pareto smoothed importance sampling", JMLR 2024), and a
warning says so; another warns when the remainder holds most of ``Z``.

**Support.**  An SBN fitted to a short run gives probability zero to topologies needing
subsplits the run never visited, and their posterior mass is silently missing from ``E^ +
R^``.  :func:`phylo.sbn.widen.fit_widened` widens the support to the NNI neighbours of the
sampled topologies; the difference between the two estimates measures what was missing.

**The joint importance sampler** (:func:`joint_estimate`, for comparison) draws ``(tau_j,
t_j)`` from ``q(tau) g_tau(t)``, ``g_tau`` the product of the Gamma-Laplus densities of
``tau`` (the ``glis`` proposal), and averages
``w_j = p(tau_j) L(t_j, tau_j) p(t_j) / (q(tau_j) g_{tau_j}(t_j))``; its standard error is
the sample standard deviation of the ``w_j`` over ``sqrt(N)``, on the log scale divided by
the mean.

**Tasks.**  The estimate of one topology (or the joint weights of one topology's draws) is a
task keyed by the topology (:func:`topology_key`, on the alignment's taxon order), whose
random stream comes from :func:`phylo.execution.task_rng` and the seed: the same topology
gets the same estimate in every run with the same alignment, model, prior, method, settings
and seed, whichever ``q``, ``K`` or tolerance asked for it.  :func:`stratified_estimate`
takes an ``evaluate`` function that returns the estimates of a list of topologies; the
command line's runs them on the executor of :mod:`phylo.execution` (processes, Dask, shards,
resumable tables), :class:`LocalEvaluator` in this process.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from ..errors import InputError

__all__ = [
    "log_topology_count",
    "topology_key",
    "key_parent",
    "TopologyEstimate",
    "Candidates",
    "candidates",
    "DrawStream",
    "Stage",
    "TotalEstimate",
    "JointEstimate",
    "combine",
    "stratified_estimate",
    "joint_estimate",
    "pareto_khat",
    "TaskContext",
    "setup",
    "run_task",
    "LocalEvaluator",
    "TableEvaluator",
    "TaxonOrders",
    "read_results",
    "results_identity",
    "read_sample",
    "fit_proposal",
    "total_marginal_likelihood",
    "SUMMARY_COLUMNS",
    "MIN_TREES",
]

#: fewest trees (after burn-in) a raw sample must hold for an SBN to be fitted to it
MIN_TREES = 20
#: a remainder share (of Z) above which the remainder is said to dominate
DOMINANT_SHARE = 0.5
#: Pareto k-hat above which importance weights' variance is not to be trusted
KHAT_LIMIT = 0.7


# -- topologies ------------------------------------------------------------------------------


def log_topology_count(n_taxa: int) -> float:
    """``log (2n-5)!!``, the log number of unrooted binary topologies of ``n`` taxa
    (``(2n-4)! / (2^(n-2) (n-2)!)``)."""
    n = int(n_taxa)
    if n < 3:
        raise ValueError("unrooted topologies need at least 3 taxa")
    return math.lgamma(2 * n - 3) - (n - 2) * math.log(2.0) - math.lgamma(n - 1)


def topology_key(parent: np.ndarray) -> str:
    """A short text naming a canonical unrooted parent array: ``"a"`` + base64 of its bytes
    (one byte per node up to 128 taxa, ``"b"`` and two bytes per node beyond)."""
    p = np.asarray(parent)
    if p.max() < 256:
        return "a" + base64.urlsafe_b64encode(p.astype(np.uint8).tobytes()).decode().rstrip("=")
    raw = p.astype("<u2").tobytes()
    return "b" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def key_parent(key: str) -> np.ndarray:
    """The parent array named by :func:`topology_key` (``int32``; the root's ``-1``
    restored)."""
    kind, body = key[:1], key[1:]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    dtype = {"a": np.uint8, "b": np.dtype("<u2")}.get(kind)
    if dtype is None:
        raise ValueError(f"not a topology key: {key[:20]!r}")
    p = np.frombuffer(raw, dtype=dtype).astype(np.int32)
    p[-1] = -1
    return p


def _keys(parents: np.ndarray) -> list[str]:
    return [topology_key(p) for p in parents]


@dataclass
class TopologyEstimate:
    """The estimate of ``log Z_tau`` of one topology, with its standard error (NaN when the
    method has none), seconds and likelihood evaluations."""

    log_ml: float
    se: float = math.nan
    seconds: float = 0.0
    evaluations: int = 0
    ess: float = math.nan


class TaxonOrders:
    """Parent arrays between the model's taxon order and the alignment's."""

    def __init__(self, model_taxa, alignment_taxa):
        from ..sbn.topologies import permutation
        from ..trees import Taxa

        mine = model_taxa if isinstance(model_taxa, Taxa) else Taxa(list(model_taxa))
        theirs = alignment_taxa if isinstance(alignment_taxa, Taxa) else Taxa(list(alignment_taxa))
        if not mine.same_set(theirs):
            extra = sorted(set(mine.keys) - set(theirs.keys))
            missing = sorted(set(theirs.keys) - set(mine.keys))
            parts = []
            if extra:
                parts.append("not in the alignment: " + ", ".join(extra[:5]))
            if missing:
                parts.append("missing from the model: " + ", ".join(missing[:5]))
            raise InputError(
                "the SBN model is for other taxa than the alignment's (" + "; ".join(parts) + ")"
            )
        self.to_alignment = permutation(mine, theirs)
        self.to_model = permutation(theirs, mine)

    def alignment(self, parents: np.ndarray) -> np.ndarray:
        from ..sbn.topologies import relabel

        return parents if self.to_alignment is None else relabel(parents, self.to_alignment, False)

    def model(self, parents: np.ndarray) -> np.ndarray:
        from ..sbn.topologies import relabel

        return parents if self.to_model is None else relabel(parents, self.to_model, False)


# -- the exact part's candidates and the stream of draws --------------------------------------


@dataclass
class Candidates:
    """Topologies for the exact part, most probable under ``q`` first: parent arrays on the
    alignment's taxa, their keys and ``log q``."""

    parents: np.ndarray
    keys: list[str]
    log_q: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def prefix_for_mass(self, mass: float) -> int:
        """The smallest ``K`` whose first ``K`` candidates hold ``q`` mass ``>= mass`` (all of
        them when they hold less)."""
        cum = np.cumsum(np.exp(self.log_q))
        return int(min(len(self), np.searchsorted(cum, mass * (1 - 1e-12)) + 1))


def candidates(q, parents: np.ndarray, orders: TaxonOrders | None = None) -> Candidates:
    """The distinct topologies of ``parents`` (alignment order) sorted by decreasing ``log q``
    (ties by key)."""
    parents = np.unique(np.ascontiguousarray(parents, dtype=np.int32), axis=0)
    model_parents = parents if orders is None else orders.model(parents)
    log_q = q.log_prob(model_parents)
    keys = _keys(parents)
    order = sorted(range(len(keys)), key=lambda i: (-log_q[i], keys[i]))
    return Candidates(parents[order], [keys[i] for i in order], log_q[order])


class DrawStream:
    """Exact draws from ``q``, in batches: batch ``b`` comes from
    :func:`phylo.execution.task_rng` keyed by ``(label, b)``, so the ``j``-th draw depends on
    ``q``, the seed and ``label`` only."""

    def __init__(self, q, seed: int, label: str, orders: TaxonOrders | None = None, batch=2048):
        self.q = q
        self.seed = int(seed)
        self.label = label
        self.orders = orders
        self.batch = int(batch)
        self._batches: list[tuple[list[str], np.ndarray]] = []

    def _get(self, b: int) -> tuple[list[str], np.ndarray]:
        from ..execution import task_rng

        while len(self._batches) <= b:
            rng = task_rng(self.seed, ("draws", self.label, len(self._batches)))
            parents, log_q = self.q.sample(self.batch, rng)
            if self.orders is not None:
                parents = self.orders.alignment(parents)
            self._batches.append((_keys(parents), np.asarray(log_q, dtype=np.float64)))
        return self._batches[b]

    def first(self, n: int) -> tuple[list[str], np.ndarray]:
        """The first ``n`` draws: keys and ``log q``."""
        keys: list[str] = []
        logs: list[np.ndarray] = []
        b = 0
        while len(keys) < n:
            k, lq = self._get(b)
            take = min(len(k), n - len(keys))
            keys += k[:take]
            logs.append(lq[:take])
            b += 1
        return keys, np.concatenate(logs) if logs else np.empty(0)

    def first_outside(
        self, excluded: set, n: int, max_draws: int
    ) -> tuple[list[str], np.ndarray, int]:
        """The first ``n`` draws not in ``excluded`` among the first ``max_draws`` draws:
        keys, ``log q`` and the number of draws looked at (fewer than ``n`` are returned
        when ``max_draws`` runs out)."""
        keys: list[str] = []
        logs: list[float] = []
        seen = 0
        b = 0
        while len(keys) < n and seen < max_draws:
            k, lq = self._get(b)
            for i in range(len(k)):
                if seen >= max_draws or len(keys) >= n:
                    break
                seen += 1
                if k[i] not in excluded:
                    keys.append(k[i])
                    logs.append(float(lq[i]))
            b += 1
        return keys, np.array(logs, dtype=np.float64), seen


# -- combining estimates -------------------------------------------------------------------


def pareto_khat(log_w: np.ndarray) -> float:
    """The Pareto ``k^`` of importance weights (given as logs): the shape of a generalized
    Pareto distribution fitted to the ``M = min(N/5, 3 sqrt(N))`` largest weights.

    The largest weights minus the ``(M+1)``-th largest are the exceedances ``x_1..x_M``.  With
    the generalized Pareto density ``f(x) = sigma^-1 (1 + k x / sigma)^(-1/k - 1)`` and
    ``theta = k / sigma``, the likelihood maximised over ``k`` for fixed ``theta`` is at
    ``k(theta) = mean_i log(1 + theta x_i)``, giving the profile log likelihood
    ``l(theta) = M [log(theta / k(theta)) - k(theta) - 1]``.  Following Zhang and Stephens
    (Technometrics 51, 2009), ``theta`` is averaged over ``m = 30 + floor(sqrt(M))`` grid
    points ``theta_j = -1/x_max + (sqrt(m / (j - 1/2)) - 1) / (3 x_quartile)`` with weights
    proportional to ``exp(l(theta_j))``, and ``k^ = k(theta^)``, shrunk towards 0.5 by ten
    pseudo-observations as in Vehtari et al. (JMLR 2024): ``(M k^ + 5) / (M + 10)``.

    NaN when there are fewer than 5 tail weights (``N < 25``) or they are all equal.
    """
    lw = np.asarray(log_w, dtype=np.float64)
    lw = lw[np.isfinite(lw)]
    N = lw.shape[0]
    M = int(min(math.ceil(0.2 * N), math.ceil(3 * math.sqrt(N))))
    if M < 5 or N <= M:
        return math.nan
    srt = np.sort(lw)
    top = srt[-M:]
    cut = srt[-M - 1]
    x = np.exp(top - top[-1]) - math.exp(cut - top[-1])  # exceedances, largest scaled to ~1
    if not x[-1] > 0 or np.all(x == x[0]):
        return math.nan
    m = 30 + int(math.sqrt(M))
    quartile = x[max(0, int(M / 4 + 0.5) - 1)]
    if not quartile > 0:
        quartile = x[x > 0][0]
    j = np.arange(1, m + 1, dtype=np.float64)
    theta = -1.0 / x[-1] + (np.sqrt(m / (j - 0.5)) - 1.0) / (3.0 * quartile)
    theta = theta[theta != 0]
    k_of = np.log1p(theta[:, None] * x[None, :]).mean(axis=1)
    ok = (k_of != 0) & np.isfinite(k_of)
    theta, k_of = theta[ok], k_of[ok]
    prof = M * (np.log(theta / k_of) - k_of - 1.0)
    weights = np.exp(prof - logsumexp(prof))
    theta_hat = float(np.sum(weights * theta))
    k_hat = float(np.mean(np.log1p(theta_hat * x)))
    return (M * k_hat + 10 * 0.5) / (M + 10)


def _ess(log_w: np.ndarray) -> float:
    lw = np.asarray(log_w, dtype=np.float64)
    if lw.size == 0 or not np.isfinite(lw).any():
        return 0.0
    return float(math.exp(2 * logsumexp(lw) - logsumexp(2 * lw)))


@dataclass
class Stage:
    """One estimate of ``log Z``: ``K`` exact topologies and ``N`` remainder draws (the
    standard error's three parts are each given as a standard error of ``log Z``)."""

    k: int
    draws: int  # remainder draws (found outside the exact part)
    attempts: int  # draws from q looked at to find them
    topologies: int  # distinct topologies this estimate uses
    top_mass: float  # Q_K
    log_z: float
    se: float
    log_exact: float
    log_remainder: float
    exact_share: float
    remainder_nats: float
    se_exact: float
    se_sampling: float
    se_remainder_estimates: float
    remainder_topologies: int
    ess: float
    khat: float
    failed: int = 0  # topologies whose estimate is not a number (left out, with a warning)
    no_se: int = 0  # topologies whose method gave no standard error


def combine(
    n_taxa: int,
    exact: Sequence[TopologyEstimate],
    exact_log_q: np.ndarray,
    remainder: Sequence[TopologyEstimate],
    remainder_log_q: np.ndarray,
    remainder_keys: Sequence[str] | None = None,
) -> dict:
    """The stratified estimate (see the module docstring) from the estimates of the exact
    part and of the remainder draws (one entry per draw, repeats included; ``remainder_keys``
    say which draws share a topology, by default all draws are distinct).

    Returns a dict with ``log_z``, ``se``, ``log_exact``, ``log_remainder``, ``exact_share``,
    ``remainder_nats``, the three standard-error parts, ``ess``, ``khat``, ``draws``,
    ``remainder_topologies``, ``failed``.
    """
    log_p = -log_topology_count(n_taxa)
    ez = np.array([e.log_ml for e in exact], dtype=np.float64)
    es = np.array([e.se for e in exact], dtype=np.float64)
    rz = np.array([e.log_ml for e in remainder], dtype=np.float64)
    rs = np.array([e.se for e in remainder], dtype=np.float64)
    exact_log_q = np.asarray(exact_log_q, dtype=np.float64)
    remainder_log_q = np.asarray(remainder_log_q, dtype=np.float64)
    failed = int(np.isnan(ez).sum())
    keys = list(remainder_keys) if remainder_keys is not None else list(range(len(remainder)))
    bad = np.isnan(rz)
    failed += len({keys[i] for i in np.flatnonzero(bad)})
    no_se = int(np.sum(np.isnan(es) & np.isfinite(ez)) + np.sum(np.isnan(rs) & np.isfinite(rz)))
    ez_ok = ez[~np.isnan(ez)]
    es_ok = np.nan_to_num(es[~np.isnan(ez)], nan=0.0)
    # exact part, on the log scale
    log_e = float(logsumexp(log_p + ez_ok)) if ez_ok.size else -math.inf
    with np.errstate(divide="ignore"):
        log_var_e = (
            float(logsumexp(2 * (log_p + ez_ok) + 2 * np.log(es_ok))) if ez_ok.size else -math.inf
        )
    # remainder: 1 - Q_K, then the weights of the draws
    log_q_in = float(logsumexp(exact_log_q)) if exact_log_q.size else -math.inf
    out_mass = -math.expm1(log_q_in) if log_q_in < 0 else 0.0
    log_out = math.log(out_mass) if out_mass > 0 else -math.inf
    N = int((~bad).sum())
    if N > 0 and log_out > -math.inf:
        lw = log_out + log_p + rz[~bad] - remainder_log_q[~bad]
        k_ok = [keys[i] for i in np.flatnonzero(~bad)]
        s_ok = np.nan_to_num(rs[~bad], nan=0.0)
        log_r = float(logsumexp(lw) - math.log(N))
        if N > 1:
            # sample variance of the weights, computed relative to their mean
            scale = lw.max()
            w = np.exp(lw - scale)
            var_w = float(np.var(w, ddof=1)) / N
            log_var_s = (math.log(var_w) + 2 * scale) if var_w > 0 else -math.inf
        else:
            log_var_s = math.inf  # one draw: no variance estimate
        # draws that repeat a topology share its estimate's error, which the sample variance
        # counts as independent: add sum_u c_u (c_u - 1) (w_u s_u)^2 / (N (N - 1))
        first: dict = {}
        counts: dict = {}
        for i, kk in enumerate(k_ok):
            first.setdefault(kk, i)
            counts[kk] = counts.get(kk, 0) + 1
        idx = np.array([first[kk] for kk in counts])
        c = np.array([counts[kk] for kk in counts], dtype=np.float64)
        rep = c > 1
        if N > 1 and rep.any():
            with np.errstate(divide="ignore"):
                terms = (
                    np.log(c[rep] * (c[rep] - 1))
                    + 2 * (lw[idx[rep]] + np.log(s_ok[idx[rep]]))
                    - math.log(N * (N - 1))
                )
            log_var_z = float(logsumexp(terms))
        else:
            log_var_z = -math.inf
        ess = _ess(lw)
        khat = pareto_khat(lw)
        n_topo = len(counts)
    else:
        log_r = -math.inf
        log_var_s = log_var_z = -math.inf
        ess, khat, n_topo = 0.0, math.nan, 0
    log_z = float(np.logaddexp(log_e, log_r))
    parts = [log_var_e, log_var_s, log_var_z]
    if not np.isfinite(log_z):
        se = math.nan
        part_se = [math.nan] * 3
    else:
        se = math.exp(0.5 * float(logsumexp(parts)) - log_z) if max(parts) < math.inf else math.inf
        part_se = [math.exp(0.5 * v - log_z) if v < math.inf else math.inf for v in parts]
    share = math.exp(log_e - log_z) if np.isfinite(log_z) else math.nan
    return {
        "log_z": log_z,
        "se": se,
        "log_exact": log_e,
        "log_remainder": log_r,
        "exact_share": share,
        "remainder_nats": log_z - log_e if np.isfinite(log_e) else math.inf,
        "se_exact": part_se[0],
        "se_sampling": part_se[1],
        "se_remainder_estimates": part_se[2],
        "draws": N,
        "remainder_topologies": n_topo,
        "ess": ess,
        "khat": khat,
        "failed": failed,
        "no_se": no_se,
        "top_mass": math.exp(log_q_in) if log_q_in > -math.inf else 0.0,
    }


# -- the stratified driver -------------------------------------------------------------------

Evaluate = Callable[[list[str]], dict[str, TopologyEstimate]]


@dataclass
class TotalEstimate:
    """The marginal likelihood over topologies, as :func:`stratified_estimate` found it.

    ``status`` is ``"complete"``, or ``"incomplete"`` when ``evaluate`` could not give every
    estimate a stage needed (a shard of a split run: ``missing`` topologies are left to the
    other shards).  ``stages`` lists every stage's estimate, the last one being the answer.
    """

    log_z: float
    se: float
    stage: Stage | None
    stages: list[Stage]
    topologies: int  # distinct topologies estimated for all stages
    seconds: float  # estimator seconds summed over those topologies
    evaluations: int
    converged: bool
    warnings: list[str] = field(default_factory=list)
    status: str = "complete"
    missing: int = 0
    method: str = ""
    n_taxa: int = 0
    wall_seconds: float = math.nan

    def record(self) -> dict:
        """The reported numbers, as one table row (:data:`SUMMARY_COLUMNS`)."""
        s = self.stage
        return {
            "estimator": "stratified",
            "log_z": self.log_z,
            "se": self.se,
            "exact_share": None if s is None else s.exact_share,
            "remainder_nats": None if s is None else s.remainder_nats,
            "k": None if s is None else s.k,
            "top_mass": None if s is None else s.top_mass,
            "topologies": self.topologies,
            "remainder_draws": None if s is None else s.draws,
            "remainder_topologies": None if s is None else s.remainder_topologies,
            "ess": None if s is None else s.ess,
            "khat": None if s is None else s.khat,
            "se_exact": None if s is None else s.se_exact,
            "se_sampling": None if s is None else s.se_sampling,
            "se_remainder_estimates": None if s is None else s.se_remainder_estimates,
            "seconds": self.seconds,
            "wall_seconds": self.wall_seconds,
            "evaluations": self.evaluations,
            "converged": self.converged,
            "warnings": " | ".join(self.warnings) if self.warnings else None,
        }


def _stage_warnings(st: Stage, tolerance: float | None, share_noted: bool = False) -> list[str]:
    out = []
    if st.failed:
        out.append(
            f"{st.failed} topologies got no estimate from the method (left out; their "
            f"contribution is unknown)"
        )
    if st.draws and np.isfinite(st.khat) and st.khat > KHAT_LIMIT:
        out.append(
            f"the remainder's importance weights are heavy-tailed (Pareto k-hat {st.khat:.2f} > "
            f"{KHAT_LIMIT}; ESS {st.ess:.1f} of {st.draws} draws): its standard error is not "
            f"reliable"
        )
    rem = 1 - st.exact_share if np.isfinite(st.exact_share) else math.nan
    if rem > DOMINANT_SHARE:
        out.append(
            f"the remainder dominates: it holds {100 * rem:.1f}% of Z (ESS {st.ess:.1f} of "
            f"{st.draws} draws, k-hat {st.khat:.2f})"
        )
    if st.draws == 1:
        out.append("the remainder rests on one draw: its variance is unknown")
    if st.draws == 0 and st.top_mass < 1 - 1e-9 and st.attempts > 0:
        out.append(
            f"no draw of q fell outside the {st.k} exact topologies in {st.attempts} draws "
            f"(q mass outside {1 - st.top_mass:.3g}): the remainder is taken as 0"
        )
    if st.no_se:
        out.append(
            f"the method gives no standard error for {st.no_se} topologies: the standard "
            f"error counts only the sampling of topologies for them"
        )
    if tolerance is not None and st.se > tolerance:
        out.append(f"the standard error {st.se:.3g} is above the tolerance {tolerance:g}")
    if tolerance is not None and st.remainder_nats > tolerance and not share_noted:
        out.append(
            f"the remainder's share ({st.remainder_nats:.3g} nats) is above the tolerance "
            f"{tolerance:g}"
        )
    return out


def stratified_estimate(
    q,
    cands: Candidates,
    evaluate: Evaluate,
    seed: int,
    n_taxa: int,
    *,
    k: int | None = None,
    top_mass: float | None = None,
    tolerance: float = 0.05,
    k_start: int = 16,
    draws: int = 128,
    max_topologies: int = 2000,
    max_attempts: int = 1 << 18,
    orders: TaxonOrders | None = None,
    on_stage: Callable[[Stage], None] | None = None,
) -> TotalEstimate:
    """Estimate ``log Z`` by stratified sampling (see the module docstring).

    Parameters
    ----------
    q
        The tree distribution (an unrooted :class:`phylo.sbn.SBNModel`).
    cands
        Topologies for the exact part, most probable first (:func:`candidates`).
    evaluate
        ``evaluate(keys) -> {key: TopologyEstimate}`` for topology keys
        (:func:`topology_key`); keys it leaves out make the result ``"incomplete"``.
    seed
        The user's seed (the remainder draws come from :class:`DrawStream` keyed by it).
    n_taxa
        Taxa of the alignment.
    k, top_mass
        Fix the exact part: ``K`` topologies, or the fewest holding ``q`` mass ``top_mass``;
        one stage of ``draws`` remainder draws.  Default: ``K`` grows (module docstring).
    tolerance
        In nats: the growth stops when the remainder's share and the standard error of
        ``log Z`` are both at most this.
    k_start, draws
        ``k_0`` and ``n_0``, the first stage's exact topologies and remainder draws.
    max_topologies
        Budget of distinct topologies over all stages.
    max_attempts
        Draws from ``q`` looked at per stage to find the remainder draws.
    orders
        Taxon orders of ``q`` and of the alignment, when they differ.
    on_stage
        Called with each finished stage.
    """
    if k is not None and top_mass is not None:
        raise InputError("give K or a top mass, not both")
    if k is not None and k < 0:
        raise InputError(f"K must be 0 or more, not {k}")
    if top_mass is not None and not 0 < top_mass <= 1:
        raise InputError(f"the top mass must be in (0, 1], not {top_mass}")
    if not tolerance > 0:
        raise InputError(f"the tolerance must be positive, not {tolerance}")
    if k_start < 0 or draws < 0 or max_topologies < 1:
        raise InputError("k-start and draws must be 0 or more, the budget at least 1")
    t_start = time.perf_counter()
    stream = DrawStream(q, seed, "remainder", orders)
    fixed = k is not None or top_mass is not None
    if top_mass is not None:
        k = cands.prefix_for_mass(top_mass)
    used: set[str] = set()
    known: dict[str, TopologyEstimate] = {}

    def plan(kk: int, nn: int):
        kk = min(kk, len(cands))
        exact_keys = cands.keys[:kk]
        outside = -math.expm1(float(logsumexp(cands.log_q[:kk]))) if kk else 1.0
        if outside < 1e-12:  # q has (next to) nothing outside the exact part
            return kk, exact_keys, [], np.empty(0), 0
        dk, dlq, attempts = stream.first_outside(set(exact_keys), nn, max_attempts)
        return kk, exact_keys, dk, dlq, attempts

    def size_with(p) -> int:
        return len(used | set(p[1]) | set(p[2]))

    stages: list[Stage] = []
    warnings: list[str] = []
    converged = False
    scale = 1.0
    last = False
    while True:
        if fixed:
            p = plan(int(k), draws)
        else:
            p = plan(int(round(k_start * scale)), int(round(draws * scale)))
            if size_with(p) > max_topologies:
                # shrink this stage to fit the budget: bisect the scale between the last
                # stage's and this one's
                lo, hi = (scale / 2 if stages else 0.0), scale
                best = None
                for _ in range(12):
                    mid = 0.5 * (lo + hi)
                    pm = plan(int(round(k_start * mid)), int(round(draws * mid)))
                    if size_with(pm) <= max_topologies:
                        best, lo = pm, mid
                    else:
                        hi = mid
                if best is None:
                    warnings.append(
                        f"the budget of {max_topologies} topologies ended the growth of K"
                    )
                    break
                p, last = best, True
            if stages and (p[0], len(p[2])) == (stages[-1].k, stages[-1].draws):
                if last:
                    warnings.append(
                        f"the budget of {max_topologies} topologies ended the growth of K"
                    )
                else:
                    warnings.append(
                        "K and the remainder cannot grow further: every sampled topology is in "
                        "the exact part and q gives no other draws"
                    )
                break
        kk, exact_keys, dk, dlq, attempts = p
        need = list(dict.fromkeys(exact_keys + dk))
        got = evaluate([x for x in need if x not in known])
        known.update(got)
        missing = [x for x in need if x not in known]
        used |= set(need)
        if missing:
            out = _result(stages, known, used, False, warnings, "incomplete", len(missing), n_taxa)
            out.wall_seconds = time.perf_counter() - t_start
            return out
        res = combine(
            n_taxa,
            [known[x] for x in exact_keys],
            cands.log_q[:kk],
            [known[x] for x in dk],
            dlq,
            dk,
        )
        res.pop("draws")
        st = Stage(k=kk, draws=len(dk), attempts=attempts, topologies=len(need), **res)
        stages.append(st)
        if on_stage is not None:
            on_stage(st)
        if fixed:
            converged = st.se <= tolerance
            break
        if st.se <= tolerance and st.remainder_nats <= tolerance:
            converged = True
            break
        if st.se <= tolerance and len(stages) >= 2:
            stop = _share_out_of_reach(stages, tolerance, len(used), max_topologies)
            if stop:
                warnings.append(stop)
                break
        if last:
            warnings.append(f"the budget of {max_topologies} topologies ended the growth of K")
            break
        scale *= 2
    out = _result(stages, known, used, converged, warnings, "complete", 0, n_taxa, tolerance)
    out.wall_seconds = time.perf_counter() - t_start
    return out


def _share_out_of_reach(stages, tolerance, used: int, budget: int) -> str | None:
    """When the standard error is within the tolerance but the remainder's share is not:
    a reason to stop if, falling at the rate of the last doubling of K, the share would reach
    the tolerance only beyond the budget of topologies."""
    a, b = stages[-2].remainder_nats, stages[-1].remainder_nats
    if not (a > 0 and np.isfinite(a) and np.isfinite(b)):
        return None
    rate = b / a
    if rate < 1:
        more = math.ceil(math.log(tolerance / b) / math.log(rate))
        projected = used * 2.0**more
        if projected <= budget:
            return None
        why = (
            f"{more} more doublings of K (about {projected:.3g} topologies, beyond the budget "
            f"of {budget})"
        )
    else:
        why = "doubling K did not lower it"
    return (
        f"the remainder's share ({b:.3g} nats, {a:.3g} at half the K) would reach the "
        f"tolerance only after {why}: K stopped growing with the standard error "
        f"({stages[-1].se:.3g}) within the tolerance"
    )


def _result(stages, known, used, converged, warnings, status, missing, n_taxa, tolerance=None):
    done = [known[x] for x in used if x in known]
    st = stages[-1] if stages else None
    w = list(warnings)
    if st is not None:
        noted = any("remainder's share" in x for x in w)
        w = _stage_warnings(st, tolerance if not converged else None, noted) + w
    return TotalEstimate(
        log_z=st.log_z if st is not None else math.nan,
        se=st.se if st is not None else math.nan,
        stage=st,
        stages=list(stages),
        topologies=len(done),
        seconds=float(sum(e.seconds for e in done)),
        evaluations=int(sum(e.evaluations for e in done)),
        converged=converged,
        warnings=w,
        status=status,
        missing=missing,
        n_taxa=n_taxa,
    )


# -- joint importance sampling ----------------------------------------------------------------


@dataclass
class JointTask:
    """What the joint sampler needs from one topology drawn ``c`` times: the log of the sum
    and of the sum of squares of its ``c`` branch-length weights ``L p / g``, and the
    largest of their logs (for the Pareto fit)."""

    log_sum: float
    log_sum_sq: float
    tail: np.ndarray
    seconds: float = 0.0
    evaluations: int = 0


@dataclass
class JointEstimate:
    """The plain joint importance sampler's estimate (see the module docstring)."""

    log_z: float
    se: float
    draws: int
    topologies: int
    ess: float
    khat: float
    seconds: float
    evaluations: int
    warnings: list[str] = field(default_factory=list)
    status: str = "complete"
    missing: int = 0
    wall_seconds: float = math.nan

    def record(self) -> dict:
        return {
            "estimator": "joint",
            "log_z": self.log_z,
            "se": self.se,
            "exact_share": 0.0,
            "remainder_nats": None,
            "k": 0,
            "top_mass": 0.0,
            "topologies": self.topologies,
            "remainder_draws": self.draws,
            "remainder_topologies": self.topologies,
            "ess": self.ess,
            "khat": self.khat,
            "se_exact": None,
            "se_sampling": self.se,
            "se_remainder_estimates": None,
            "seconds": self.seconds,
            "wall_seconds": self.wall_seconds,
            "evaluations": self.evaluations,
            "converged": None,
            "warnings": " | ".join(self.warnings) if self.warnings else None,
        }


def tail_size(n_draws: int) -> int:
    """Weights kept per topology for the Pareto fit of ``n_draws`` joint draws."""
    return int(min(math.ceil(0.2 * n_draws), math.ceil(3 * math.sqrt(n_draws)))) + 1


def joint_estimate(
    q,
    evaluate: Callable[[list[tuple[str, int]], int], dict[str, JointTask]],
    seed: int,
    n_taxa: int,
    draws: int,
    orders: TaxonOrders | None = None,
) -> JointEstimate:
    """Joint importance sampling over (topology, branch lengths) with ``draws`` draws from
    ``q(tau) g_tau(t)`` (see the module docstring).  ``evaluate([(key, count), ...],
    draws)`` gives each drawn topology's :class:`JointTask`."""
    if draws < 2:
        raise InputError("the joint sampler needs at least 2 draws")
    t_start = time.perf_counter()
    stream = DrawStream(q, seed, "joint", orders)
    keys, log_q = stream.first(draws)
    counts: dict[str, int] = {}
    lq: dict[str, float] = {}
    for kk, v in zip(keys, log_q):
        counts[kk] = counts.get(kk, 0) + 1
        lq[kk] = float(v)
    asked = list(counts.items())
    got = evaluate(asked, draws)
    missing = [kk for kk, _ in asked if kk not in got]
    if missing:
        return JointEstimate(
            math.nan, math.nan, draws, len(counts), math.nan, math.nan, 0.0, 0, [], "incomplete",
            len(missing),
        )  # fmt: skip
    log_p = -log_topology_count(n_taxa)
    a = np.array([log_p - lq[kk] + got[kk].log_sum for kk, _ in asked])
    b = np.array([2 * (log_p - lq[kk]) + got[kk].log_sum_sq for kk, _ in asked])
    tails = np.concatenate([log_p - lq[kk] + got[kk].tail for kk, _ in asked])
    log_sum = float(logsumexp(a))
    log_sum_sq = float(logsumexp(b))
    log_mean = log_sum - math.log(draws)
    # sample variance of the weights from their sums: (sum w^2 - N mean^2) / (N - 1)
    rel = math.exp(log_sum_sq - math.log(draws) - 2 * log_mean) - 1.0  # E[w^2]/mean^2 - 1
    var_rel = max(rel, 0.0) * draws / (draws - 1)
    se = math.sqrt(var_rel / draws)
    ess = math.exp(2 * log_sum - log_sum_sq)
    khat = pareto_khat_from_tail(tails, draws)
    warnings = []
    if np.isfinite(khat) and khat > KHAT_LIMIT:
        warnings.append(
            f"the joint importance weights are heavy-tailed (Pareto k-hat {khat:.2f} > "
            f"{KHAT_LIMIT}; ESS {ess:.1f} of {draws}): the standard error is not reliable"
        )
    done = [got[kk] for kk, _ in asked]
    return JointEstimate(
        log_z=log_mean,
        se=se,
        draws=draws,
        topologies=len(counts),
        ess=ess,
        khat=khat,
        seconds=float(sum(t.seconds for t in done)),
        evaluations=int(sum(t.evaluations for t in done)),
        warnings=warnings,
        wall_seconds=time.perf_counter() - t_start,
    )


def pareto_khat_from_tail(tail_log_w: np.ndarray, n_draws: int) -> float:
    """:func:`pareto_khat` of ``n_draws`` weights of which only the largest are given (at
    least :func:`tail_size` of them): the fit only looks at those."""
    t = np.sort(np.asarray(tail_log_w, dtype=np.float64))
    keep = tail_size(n_draws)
    t = t[-keep:]
    # pad with -inf stand-ins for the smaller weights, which the fit never reads
    M = keep - 1
    N = n_draws
    if M < 5:
        return math.nan
    filler = np.full(N - t.size, t[0] - 1.0) if N > t.size else np.empty(0)
    return pareto_khat(np.concatenate([filler, t]))


# -- tasks: one topology's estimate ----------------------------------------------------------

COLUMNS = (
    "topology",
    "task",
    "log_ml",
    "se",
    "seconds",
    "evaluations",
    "ess",
    "log_sum_sq",
    "tail",
    "diagnostics",
)
N_KEY = 2
TIMING_COLUMNS = ("seconds",)

#: the columns of the summary table (one row per estimator)
SUMMARY_COLUMNS = (
    "estimator",
    "log_z",
    "se",
    "exact_share",
    "remainder_nats",
    "k",
    "top_mass",
    "topologies",
    "remainder_draws",
    "remainder_topologies",
    "ess",
    "khat",
    "se_exact",
    "se_sampling",
    "se_remainder_estimates",
    "seconds",
    "wall_seconds",
    "evaluations",
    "converged",
    "warnings",
)


class TaskContext:
    """What the tasks of one run share in a process: the alignment, model, prior, method,
    its settings and the seed."""

    def __init__(
        self,
        alignment,
        model_spec: dict,
        prior_spec: str | None,
        method: str,
        settings: dict,
        seed: int,
        batch_threads: int | None = None,
        family_path: str | None = None,
    ):
        from ..likelihood import read_alignment
        from ..trees import Taxa

        self.alignment = read_alignment(alignment) if isinstance(alignment, str) else alignment
        self.taxa = Taxa(list(self.alignment.taxa))
        self.model_spec = dict(model_spec)
        self.prior_spec = prior_spec
        self.method = method
        self.settings = dict(settings)
        self.seed = int(seed)
        self.batch_threads = batch_threads
        self.family_path = family_path
        self._family = None

    def family(self):
        """The variational family of ``sbn vi`` (method ``vi-is``), read once per process."""
        if self._family is None:
            from ..vi import load_family

            self._family = load_family(self.family_path)
        return self._family

    def model_prior(self):
        """The model with priors on the parameters its spec does not fix, and the
        branch-length prior (:func:`phylo.marglik.parameters.model_prior`)."""
        from .parameters import model_prior

        return model_prior(self.model_spec, self.prior_spec)

    def posterior(self, key: str, tree=None):
        from ..trees import Tree
        from .posterior import Posterior

        if tree is None:
            tree = Tree(self.taxa, key_parent(key), None, False)
        return Posterior(self.alignment, tree, self.model_prior(), batch_threads=self.batch_threads)


def setup(*args) -> TaskContext:
    return TaskContext(*args)


def run_task(ctx: TaskContext, key: tuple) -> dict:
    """Task ``(topology key, "z")``: estimate ``log Z_tau`` with the run's method; task
    ``(topology key, "joint:c")``: ``c`` joint draws of branch lengths from the
    Gamma-Laplus proposal of the topology (sum, sum of squares and tail of their weights)."""
    from ..execution import task_rng
    from .compare import _diagnostics_text
    from .estimators import run

    topo, task = key
    post = ctx.posterior(topo)
    if task == "z":
        rng = task_rng(ctx.seed, ("total", topo))
        if ctx.method == VI_METHOD:
            est = vi_importance_sampling(ctx, topo, rng)
        else:
            est = run(ctx.method, post, rng, **ctx.settings)
        ess = est.diagnostics.get("ess", est.diagnostics.get("min_ess"))
        return {
            "topology": topo,
            "task": task,
            "log_ml": float(est.log_ml),
            "se": None if est.se is None or math.isnan(est.se) else float(est.se),
            "seconds": round(est.seconds, 4),
            "evaluations": int(est.n_evaluations),
            "ess": None if ess is None else float(ess),
            "log_sum_sq": None,
            "tail": None,
            "diagnostics": _diagnostics_text(est.diagnostics),
        }
    if not task.startswith("joint:"):
        raise ValueError(f"unknown task {task!r}")
    count, n_draws = (int(x) for x in task.split(":")[1].split("/"))
    from .estimators.laplace import gamma_laplus, gamma_proposal_log_weights
    from .optimize import map_estimate

    rng = task_rng(ctx.seed, ("joint", topo, count))
    t0 = time.perf_counter()
    opt = map_estimate(post)
    shape, rate, _ = gamma_laplus(post, opt, ctx.settings.get("boundary", "expansion"))
    lw = gamma_proposal_log_weights(post, shape, rate, count, rng)
    keep = np.sort(lw)[-tail_size(n_draws) :]
    return {
        "topology": topo,
        "task": task,
        "log_ml": float(logsumexp(lw)),
        "se": None,
        "seconds": round(time.perf_counter() - t0, 4),
        "evaluations": int(post.n_evaluations),
        "ess": _ess(lw),
        "log_sum_sq": float(logsumexp(2 * lw)),
        "tail": ",".join(repr(float(x)) for x in keep),
        "diagnostics": "",
    }


#: The per-topology estimator that draws branch lengths from the learnt distribution of
#: an ``sbn vi`` model (:func:`vi_importance_sampling`).
VI_METHOD = "vi-is"

#: Its draws per topology (about the likelihood evaluations ``glis`` spends by default).
VI_DRAWS = 10_000


def vi_importance_sampling(ctx: TaskContext, topo: str, rng: np.random.Generator):
    r"""``log Z_tau`` by importance sampling of branch lengths from the branch-length
    distribution an ``sbn vi`` model learnt for the topology,
    :math:`g_\tau(t) = \prod_i \mathrm{LogNormal}(t_i; \mu_i, \sigma_i^2)`:

    .. math::

        \hat Z_\tau = \frac1M \sum_{j=1}^M \frac{L(t_j, \tau)\, p(t_j)}{g_\tau(t_j)},
        \qquad t_j \sim g_\tau,

    with standard error of ``log Z^`` the sample standard deviation of the weights over
    ``sqrt(M)`` and their mean.  A topology whose splits lie outside the model's support has
    no learnt distribution; it falls back to ``glis`` (the diagnostics say so).
    """
    from ..trees import Taxa, Tree
    from .estimators import Estimate, run

    family = ctx.family()
    names = Tree(ctx.taxa, key_parent(topo), None, False).to_newick(lengths=False)
    parents, table = family.sbn.param_table(names)
    if np.any(table[0] >= family.sbn.n_params):
        post = ctx.posterior(topo)
        est = run("glis", post, rng)
        est.diagnostics["vi_fallback"] = "outside_support"
        return est
    g = family.branch_distribution(names)
    post = ctx.posterior(topo, Tree(Taxa(list(family.taxa)), parents[0], None, False))
    if post.n_params:
        raise InputError(f"{VI_METHOD} integrates over branch lengths only: fix every model "
                         "parameter (e.g. --kappa, or --prior kappa=fixed:2)")  # fmt: skip
    draws = int(ctx.settings.get("draws", VI_DRAWS))
    t0 = time.perf_counter()
    lw = []
    for start in range(0, draws, 1000):
        T = g.sample(min(1000, draws - start), rng)
        lw.append(post.log_likelihood_batch(T) + post.prior.log_pdf_rows(T) - g.log_pdf(T))
    lw = np.concatenate(lw)
    log_ml = float(logsumexp(lw) - math.log(draws))
    w = np.exp(lw - lw.max())
    se = float(w.std(ddof=1) / math.sqrt(draws) / w.mean())
    return Estimate(
        log_ml,
        se,
        diagnostics={"ess": _ess(lw), "khat": pareto_khat(lw)},
        seconds=time.perf_counter() - t0,
        n_evaluations=post.n_evaluations,
    )


def _diagnostic(row: dict, name: str) -> float | None:
    """A number from a row's ``diagnostics`` text (``key=value;...``), or None."""
    for item in str(row.get("diagnostics") or "").split(";"):
        key, _, value = item.partition("=")
        if key == name:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def parse_row(row: dict) -> TopologyEstimate | JointTask:
    """A task's row (as written to a results table, or as returned) back as numbers."""
    from ..tables import parse_float

    def num(x):
        if x is None:
            return math.nan
        return float(x) if not isinstance(x, str) else parse_float(x)

    if str(row["task"]).startswith("joint:"):
        tail = row.get("tail") or ""
        return JointTask(
            log_sum=num(row["log_ml"]),
            log_sum_sq=num(row["log_sum_sq"]),
            tail=np.array([float(x) for x in str(tail).split(",") if x], dtype=np.float64),
            seconds=num(row.get("seconds")),
            evaluations=int(num(row.get("evaluations")) or 0),
        )
    ev = num(row.get("evaluations"))
    return TopologyEstimate(
        log_ml=num(row["log_ml"]),
        se=num(row.get("se")),
        seconds=num(row.get("seconds")) if row.get("seconds") not in (None, "") else 0.0,
        evaluations=0 if math.isnan(ev) else int(ev),
        ess=num(row.get("ess")),
    )


def joint_task_name(count: int, n_draws: int) -> str:
    return f"joint:{int(count)}/{int(n_draws)}"


class LocalEvaluator:
    """Estimates topologies in this process, one after the other, keeping every result
    (so stages and repeated calls never estimate a topology twice)."""

    def __init__(self, ctx: TaskContext, progress=None):
        self.ctx = ctx
        self.rows: dict[tuple, dict] = {}
        self.progress = progress

    def __call__(self, keys: list[str]) -> dict[str, TopologyEstimate]:
        out = {}
        for kk in keys:
            key = (kk, "z")
            if key not in self.rows:
                self.rows[key] = run_task(self.ctx, key)
                if self.progress is not None:
                    self.progress(len(self.rows))
            out[kk] = parse_row(self.rows[key])
        return out

    def joint(self, asked: list[tuple[str, int]], n_draws: int) -> dict[str, JointTask]:
        out = {}
        for kk, c in asked:
            key = (kk, joint_task_name(c, n_draws))
            if key not in self.rows:
                self.rows[key] = run_task(self.ctx, key)
            out[kk] = parse_row(self.rows[key])
        return out


# -- everything in one call ------------------------------------------------------------------


def read_sample(paths, alignment_taxa, burnin=None, thin: int = 1):
    """The tree sample of ``paths`` on the alignment's taxa; an :class:`InputError` naming the
    taxa when they differ, or when the sample is too small for an SBN (fewer than
    :data:`MIN_TREES` trees of a raw sample after burn-in)."""
    from ..trees import Taxa, read_trees

    taxa = alignment_taxa if isinstance(alignment_taxa, Taxa) else Taxa(list(alignment_taxa))
    names = paths if isinstance(paths, str) else ", ".join(str(p) for p in paths)
    try:
        sample = read_trees(paths, burnin=burnin, thin=thin, taxa=taxa)
    except InputError as first:
        try:
            plain = read_trees(paths, burnin=burnin, thin=thin)
        except InputError:
            raise first from None
        if not plain.taxa.same_set(taxa):
            extra = sorted(set(plain.taxa.keys) - set(taxa.keys))
            missing = sorted(set(taxa.keys) - set(plain.taxa.keys))
            parts = []
            if extra:
                parts.append("not in the alignment: " + ", ".join(extra[:5]))
            if missing:
                parts.append("missing from the trees: " + ", ".join(missing[:5]))
            raise InputError(
                f"the taxa of the tree sample ({names}) differ from the alignment's ("
                + "; ".join(parts)
                + ")"
            ) from None
        raise
    check_sample(sample, names)
    return sample


def check_sample(sample, names: str = "the tree sample") -> None:
    """An :class:`InputError` when a sample is too small to fit an SBN to."""
    if sample.n_topologies == 0 or sample.counts.sum() <= 0:
        raise InputError(f"no trees left in {names} (after burn-in) to fit an SBN to")
    if not sample.weighted and sample.n_trees < MIN_TREES:
        raise InputError(
            f"{names} holds {sample.n_trees} trees after burn-in: too few to fit an SBN to "
            f"(at least {MIN_TREES}; give more trees or a smaller burn-in)"
        )
    if sample.n_taxa < 4:
        raise InputError("a marginal likelihood over topologies needs at least 4 taxa")


def total_marginal_likelihood(
    alignment,
    trees,
    sbn=None,
    *,
    method: str = "glis",
    settings: dict | None = None,
    model: str | dict = "JC69",
    prior: str | None = "exp:10",
    seed: int = 0,
    burnin=None,
    widen: float = 0.0,
    sbn_method: str = "em-alpha",
    evaluate: Evaluate | None = None,
    **options,
) -> TotalEstimate:
    """``log p(D)`` over all topologies, by SBN-stratified sampling, in this process.

    Parameters
    ----------
    alignment
        An :class:`~phylo.likelihood.Alignment` or a path.
    trees
        Tree files (paths) or a :class:`~phylo.trees.TreeSample` on the alignment's taxa: the
        candidates of the exact part, and the sample the SBN is fitted to.
    sbn
        A fitted unrooted :class:`~phylo.sbn.SBNModel` (default: fitted to ``trees`` with
        ``sbn_method``, widened by ``widen`` when positive; :func:`phylo.sbn.fit_widened`).
    method, settings
        The fixed-topology estimator and its settings.
    model, prior
        A model name (or ``{"model": name, ...}`` with its parameters, as
        :func:`phylo.likelihood.parse_model` takes them) and a branch-length prior
        (``exp:RATE``, ``gamma:SHAPE,RATE``).
    seed
        Seeds every random stream.
    options
        :func:`stratified_estimate`'s (``k``, ``top_mass``, ``tolerance``, ``k_start``,
        ``draws``, ``max_topologies``).
    """
    from ..likelihood import read_alignment
    from ..trees import TreeSample
    from .estimators import get, parse_settings

    aln = read_alignment(alignment) if isinstance(alignment, str) else alignment
    spec = get(method)
    opts = parse_settings(spec, settings or {})
    model_spec = dict(model) if isinstance(model, dict) else {"model": model}
    ctx = TaskContext(aln, model_spec, prior, method, opts, seed)
    if isinstance(trees, TreeSample):
        sample = trees
        check_sample(sample)
    else:
        sample = read_sample(trees, ctx.taxa, burnin)
    q = sbn if sbn is not None else fit_proposal(sample, sbn_method, widen)
    orders = TaxonOrders(q.taxa, ctx.taxa)
    from ..sbn.topologies import topology_arrays

    cands = candidates(q, topology_arrays(sample, ctx.taxa, False), orders)
    ev = evaluate if evaluate is not None else LocalEvaluator(ctx)
    est = stratified_estimate(q, cands, ev, seed, len(ctx.taxa), orders=orders, **options)
    est.method = method
    return est


def fit_proposal(sample, sbn_method: str = "em-alpha", widen: float = 0.0):
    """The SBN used as ``q``: fitted to ``sample`` (widened to NNI neighbours with
    pseudo-count ``widen`` when positive)."""
    from ..sbn import fit

    if sbn_method in ("srf", "ccd"):
        raise InputError(f"the proposal must be an SBN (sa, em or em-alpha), not {sbn_method!r}")
    if widen and widen > 0:
        from ..sbn.widen import fit_widened

        return fit_widened(sample, widen, sbn_method)
    return fit(sample, sbn_method)


# -- the executor: topology tasks in a resumable results table --------------------------------


def results_identity(
    alignment_path: str, model_spec: dict, prior: str | None, method: str, settings: dict, seed
) -> list[str]:
    """The ``name=value`` entries that define a run's topology results: a topology's estimate
    depends on these and on the topology only (not on ``q``, ``K`` or the tolerance), so a
    results table serves every run that shares them."""

    from ..provenance import file_digest
    from .compare import _settings_text as text
    from .compare import prior_identity

    return [
        f"alignment={file_digest(alignment_path)[:16]}",
        f"model={text(model_spec)}",
        f"prior={prior if prior is None or isinstance(prior, str) else prior_identity(prior)}",
        f"method={method}",
        f"settings={text(settings)}",
        f"seed={seed}",
    ]


def read_results(paths: Sequence[str], identity: Sequence[str]) -> dict[tuple, dict]:
    """Rows of results tables of the same run (other shards, earlier runs): ``{task key:
    row}``.  Tables of another run (different identity, the shard aside) are an
    :class:`InputError`; damaged lines (a table still being written) are skipped."""
    from ..execution import SHARD, _checksum

    want = sorted(x for x in identity if not x.startswith(f"{SHARD}="))
    out: dict[tuple, dict] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read results table: {exc.strerror}", path) from None
        lines = text.split("\n")
        ident = sorted(
            ln[len("# identity: ") :]
            for ln in lines
            if ln.startswith("# identity: ") and not ln.startswith(f"# identity: {SHARD}=")
        )
        if ident != want:
            mine = dict(x.split("=", 1) for x in want)
            theirs = dict(x.split("=", 1) for x in ident if "=" in x)
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise InputError(
                f"written by another run ({', '.join(diff) or 'settings'} differ)", path
            )
        body = [ln for ln in lines if ln and not ln.startswith("#")]
        if not body:
            continue
        cols = body[0].split("\t")
        if cols != list(COLUMNS) + ["check"]:
            raise InputError("not a results table of `marglik total`", path)
        for ln in body[1:]:
            cells = ln.split("\t")
            if len(cells) != len(cols) or _checksum(cells[:-1]) != cells[-1]:
                continue
            row = dict(zip(COLUMNS, cells[:-1]))
            out[(row["topology"], row["task"])] = row
    return out


class TableEvaluator:
    """Estimates topologies as tasks on :mod:`phylo.execution`'s executor, recording each in
    a results table as it finishes (resumable; ``path=None`` keeps them in memory).

    Parameters
    ----------
    path
        The results table (:class:`phylo.execution.ResultStore`).
    identity, header
        What defines the run (:func:`results_identity`; the shard is added here) and the
        table's provenance lines.
    setup_args
        Arguments of :func:`setup` (picklable: paths and plain values).
    shard
        ``(i, n)``: only the tasks of shard ``i`` run here; the others' estimates must come
        from ``merged`` (tables of the other shards) or the result is incomplete.
    merged
        Rows of other tables of the same run (:func:`read_results`).
    executor
        ``jobs``, ``executor``, ``scheduler``, ``scheduler_file`` of
        :func:`phylo.execution.run_tasks`.
    progress
        ``progress(description) -> Progress`` for each batch of tasks, or ``None``.
    """

    def __init__(
        self,
        path: str | None,
        identity: Sequence[str],
        header: Sequence[str],
        setup_args: tuple,
        shard: tuple[int, int] | None = None,
        merged: dict | None = None,
        progress=None,
        **executor,
    ):
        import hashlib

        from ..execution import SHARD

        self.path = path
        self.identity = list(identity)
        self.token = hashlib.sha256("|".join(self.identity).encode()).hexdigest()
        if shard is not None:
            self.identity.append(f"{SHARD}={shard[0]}/{shard[1]}")
        self.header = list(header)
        self.setup_args = setup_args
        self.shard = shard
        self.merged = dict(merged or {})
        self.progress = progress
        self.executor = executor
        self.memory: dict[tuple, dict] = {}
        self.ran = 0
        self.dropped = 0
        self.batches = 0
        #: Pareto k-hat of each topology estimate that reports one (vi-is), by topology key
        self.khats: dict[str, float] = {}
        if path is not None and shard is None and self.merged:
            # a run that joins shards keeps every row in its own table
            store = self._store()
            try:
                for key, row in self.merged.items():
                    if not store.done(key):
                        store.append(row)
            finally:
                store.finish()

    def _store(self):
        from ..execution import ResultStore

        store = ResultStore(self.path, COLUMNS, N_KEY, header=self.header, identity=self.identity)
        self.dropped += store.dropped
        return store

    def _run(self, task_keys: list[tuple]) -> dict[tuple, dict]:
        from ..execution import run_into, select_shard

        store = self._store()
        for key, row in self.memory.items():
            if self.path is None and not store.done(key):
                store.rows[store.key_text(key)] = _row_of(row)
        todo = [k for k in task_keys if not store.done(k) and k not in self.merged]
        if self.shard is not None:
            mine = set(select_shard(task_keys, self.shard))
            todo = [k for k in todo if k in mine]
        self.batches += 1
        bar = self.progress(f"batch {self.batches}") if self.progress is not None else None
        try:
            self.ran += run_into(
                store, todo, run_task, setup, self.setup_args, progress=bar,
                token=self.token, **self.executor,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        rows = {(r["topology"], r["task"]): r for r in store.records()}
        if self.path is None:
            self.memory.update(rows)
        out = {}
        for k in task_keys:
            row = rows.get(k) or self.merged.get(k)
            if row is not None:
                out[k] = row
        return out

    def __call__(self, keys: list[str]) -> dict[str, TopologyEstimate]:
        rows = self._run([(k, "z") for k in keys])
        for (k, _), r in rows.items():
            khat = _diagnostic(r, "khat")
            if khat is not None:
                self.khats[k] = khat
        return {k: parse_row(r) for (k, _), r in rows.items()}

    def joint(self, asked: list[tuple[str, int]], n_draws: int) -> dict[str, JointTask]:
        rows = self._run([(k, joint_task_name(c, n_draws)) for k, c in asked])
        return {k: parse_row(r) for (k, _), r in rows.items()}


def _row_of(row: dict):
    from ..execution import Row, _format

    return Row(tuple(_format(row.get(c)) for c in COLUMNS))


# -- one run of the command line's ``marglik total`` ------------------------------------------


def results_path_for(output: str | None, results: str | None) -> str | None:
    """The per-topology results table: ``results``, else beside ``output`` (``total.tsv`` ->
    ``total.topologies.tsv``); ``None`` (kept in memory) when neither is a file."""
    if results:
        return results
    if output and output != "-":
        base = output[:-4] if output.endswith(".tsv") else output
        return base + ".topologies.tsv"
    return None


@dataclass
class TotalRun:
    """What :func:`run_total` did: the estimate (and the joint sampler's), or, for a shard
    whose next stage needs other shards' topologies, ``complete`` false."""

    estimate: TotalEstimate
    joint: JointEstimate | None
    provenance: dict
    results_path: str | None
    n_taxa: int
    ran: int
    dropped: int

    @property
    def complete(self) -> bool:
        return self.estimate.status == "complete" and (
            self.joint is None or self.joint.status == "complete"
        )

    @property
    def missing(self) -> int:
        """Topologies of the next stage left to other shards."""
        if self.estimate.status != "complete":
            return self.estimate.missing
        return 0 if self.joint is None else self.joint.missing

    def rows(self) -> list[dict]:
        """One table row per estimator (:data:`SUMMARY_COLUMNS`)."""
        return [self.estimate.record()] + ([self.joint.record()] if self.joint else [])

    def warnings(self) -> list[str]:
        return list(self.estimate.warnings) + (list(self.joint.warnings) if self.joint else [])

    def json(self) -> dict:
        """The estimate, the joint sampler's and every stage, with provenance; NaN and
        infinities as ``null``."""
        from dataclasses import asdict

        rows = self.rows()
        data = {
            "format": "phylo-marglik-total",
            "estimate": rows[0],
            "joint": rows[1] if self.joint is not None else None,
            "stages": [asdict(s) for s in self.estimate.stages],
            "provenance": self.provenance,
        }
        return _finite(data)

    def summary_lines(self) -> list[str]:
        """Lines for people: the estimate, its parts and its cost."""
        est, joint = self.estimate, self.joint
        st = est.stage
        count = math.exp(log_topology_count(self.n_taxa))
        lines = [
            f"log Z = {est.log_z:.4f} +- {est.se:.4f}  (p(D) over all {count:.3g} unrooted "
            f"topologies, uniform topology prior)"
        ]
        if st is not None:
            lines += [
                f"exact part: K = {st.k} topologies holding {_share(st.exact_share)} of Z "
                f"(their q mass {st.top_mass:.4g})",
                f"remainder: {st.draws} draws of {st.remainder_topologies} topologies, "
                f"{st.remainder_nats:.4g} nats of Z; ESS {st.ess:.1f}, Pareto k-hat {st.khat:.2f}",
                f"standard error parts: exact estimates {st.se_exact:.3g}, topology sampling "
                f"{st.se_sampling:.3g}, remainder estimates {st.se_remainder_estimates:.3g}",
            ]
        lines.append(
            f"{est.topologies} topologies estimated with {est.method} in {len(est.stages)} "
            f"stage(s): {est.seconds:.1f} s of estimator time, {est.evaluations} likelihood "
            f"evaluations; {est.wall_seconds:.1f} s in all"
        )
        if joint is not None:
            lines.append(
                f"joint importance sampling: log Z = {joint.log_z:.4f} +- {joint.se:.4f} "
                f"({joint.draws} draws of {joint.topologies} topologies; ESS {joint.ess:.1f}, "
                f"Pareto k-hat {joint.khat:.2f}; {joint.seconds:.1f} s)"
            )
        return lines


def _share(x) -> str:
    return "NA" if x is None or x != x else f"{100 * x:.2f}%"


def _finite(obj):
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _vi_settings(sbn_path: str | None, settings: Sequence[str]) -> dict:
    """The settings of ``vi-is``: its draws per topology, and the model file's digest (a
    results table is only continued with the same learnt distribution)."""
    from ..provenance import file_digest
    from ..vi import load_family

    if not sbn_path:
        raise InputError(
            f"--method {VI_METHOD} draws branch lengths from an `sbn vi` model: give it with --sbn"
        )
    load_family(sbn_path)  # a clear error when the file is not a VI model
    opts = {"draws": VI_DRAWS, "model_file": file_digest(sbn_path)[:16]}
    for item in settings:
        key, _, value = item.partition("=")
        key = key.removeprefix(f"{VI_METHOD}.")
        if key != "draws" or not value.isdigit() or int(value) < 2:
            raise InputError(f"--set {item!r}: {VI_METHOD} takes draws=N (N >= 2)")
        opts["draws"] = int(value)
    return opts


def run_total(
    alignment: str,
    tree_files: Sequence[str],
    *,
    sbn_path: str | None = None,
    burnin=None,
    thin: int = 1,
    sbn_method: str = "em-alpha",
    widen: float = 0.0,
    method: str = "glis",
    settings: Sequence[str] = (),
    model: dict | None = None,
    prior: str | None = "exp:10",
    seed: int | None = None,
    k: int | None = None,
    top_mass: float | None = None,
    tolerance: float = 0.05,
    k_start: int = 16,
    draws: int = 128,
    max_topologies: int = 2000,
    joint_draws: int | None = None,
    output: str | None = None,
    results: str | None = None,
    merge: Sequence[str] = (),
    threads: int | None = None,
    run: dict | None = None,
    progress=None,
    on_stage=None,
) -> TotalRun:
    """One ``marglik total`` run from files: the stratified estimate with every topology's
    estimate a task on the executor of :mod:`phylo.execution`, kept in a resumable results
    table.

    Parameters
    ----------
    alignment, tree_files
        Paths of the alignment and of the tree sample (one file per run; may be empty
        with ``sbn_path``).
    sbn_path
        A fitted unrooted SBN (``sbn fit`` or ``sbn vi`` JSON) used as ``q`` instead of
        fitting one (with ``sbn_method``, widened by ``widen``) to the trees.  Without a
        tree sample the candidates for one-by-one estimation are the SBN's own most probable
        topologies (:meth:`~phylo.sbn.SBNModel.top`, as many as ``max_topologies``, or
        ``k``), not the sampled ones.
    method, settings
        The fixed-topology estimator and ``[METHOD.]KEY=VALUE`` settings.
    model, prior
        A :func:`phylo.likelihood.model_spec` dict and the branch-length prior.
    seed
        The run's seed (``None``: the seed of the results table being resumed, else fresh).
    k, top_mass, tolerance, k_start, draws, max_topologies
        As in :func:`stratified_estimate`.
    joint_draws
        Also the joint importance sampler with this many draws.
    output, results
        Where the summary table goes (only to place the results table beside it) and the
        results table (:func:`results_path_for`).
    merge
        Patterns of other shards' results tables of the same run.
    threads
        Threads per task for batched likelihoods (default: the CPUs divided by the jobs).
    run
        ``jobs``, ``executor``, ``scheduler``, ``scheduler_file`` and ``shard`` (a pair or
        ``None``), as :func:`phylo.execution.run_comparison` takes them.
    progress, on_stage
        ``progress(description) -> Progress`` for each batch of tasks; ``on_stage(stage)``
        after each stage.
    """
    import glob

    from ..execution import choose_seed
    from ..likelihood import model_spec as make_model_spec
    from ..likelihood import read_alignment
    from ..provenance import record, tsv_header
    from ..sbn.topologies import topology_arrays
    from . import compare as C
    from .compare import _settings_text as text

    t_start = time.perf_counter()
    run = dict(run or {})
    shard = run.pop("shard", None)
    run.setdefault("jobs", 1)
    run.setdefault("executor", "local")
    if not tree_files and not sbn_path:
        raise InputError("give the tree sample (--trees FILE [FILE...]) or a fitted SBN (--sbn)")
    if sbn_path and widen:
        raise InputError("--widen applies to an SBN fitted here, not to --sbn")
    if k is not None and top_mass is not None:
        raise InputError("give --k or --top-mass, not both")
    if method == VI_METHOD:
        name, opts = VI_METHOD, _vi_settings(sbn_path, settings)
    else:
        names = C.check_methods(method)
        if len(names) != 1:
            raise InputError("--method takes one estimator")
        name = names[0]
        opts = C.parse_settings(settings, [name])[name]
    spec = dict(model) if model is not None else make_model_spec("JC69")
    aln = read_alignment(alignment)
    ctx = TaskContext(aln, spec, prior, name, opts, 0)
    free = ctx.model_prior().n  # checks the priors before any work
    if free and joint_draws:
        raise InputError("--joint draws branch lengths only: fix every model parameter")
    if free and method == VI_METHOD:
        raise InputError(f"{VI_METHOD} integrates over branch lengths only: fix every model "
                         "parameter (e.g. --kappa, or --prior kappa=fixed:2)")  # fmt: skip
    taxa = ctx.taxa
    sample = read_sample(tree_files, taxa, burnin, thin) if tree_files else None
    if sbn_path:
        from ..sbn import load_model

        q = load_model(sbn_path)
        if getattr(q, "kind", "") != "sbn" or q.rooted:
            raise InputError("--sbn must be an unrooted SBN model (`sbn fit`)", sbn_path)
    else:
        q = fit_proposal(sample, sbn_method, widen)
    orders = TaxonOrders(q.taxa, taxa)
    if sample is not None:
        cands = candidates(q, topology_arrays(sample, taxa, False), orders)
    else:
        # no sample: the candidates are the SBN's own most probable topologies, as many as
        # the budget can estimate
        budget = max_topologies if k is None else max(k, 1)
        cands = candidates(q, orders.alignment(q.top(budget).parents), orders)
    table = results_path_for(output, results)
    seed = choose_seed(seed, table)
    identity = results_identity(alignment, spec, prior, name, opts, seed)
    merged = {}
    if merge:
        # the shards of a first round find no table yet: a pattern may match nothing
        paths = sorted({p for pat in merge for p in (glob.glob(pat) or [])})
        missing = [p for p in merge if not any(c in p for c in "*?[") and p not in paths]
        if missing:
            raise InputError("no such file", missing[0])
        merged = read_results(paths, identity)

    prov = record(
        inputs=[alignment, *tree_files] + ([sbn_path] if sbn_path else []),
        seed=seed,
        parameters={
            "method": name,
            "settings": text(opts),
            "model": text(spec),
            "prior": prior if prior is None or isinstance(prior, str) else list(prior),
            "tolerance": tolerance,
            "k": k,
            "top_mass": top_mass,
            "k_start": k_start,
            "draws": draws,
            "max_topologies": max_topologies,
            "widen": widen,
            "sbn_method": None if sbn_path else sbn_method,
            "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        },
    )
    if threads is None:
        threads = C.default_batch_threads(run["jobs"]) if run["executor"] == "local" else 1
    evaluator = TableEvaluator(
        table,
        identity,
        tsv_header(prov).splitlines(),
        (alignment, spec, prior, name, opts, seed, threads, sbn_path),
        shard=shard,
        merged=merged,
        progress=progress,
        **run,
    )
    n = len(taxa)
    est = stratified_estimate(
        q, cands, evaluator, seed, n, k=k, top_mass=top_mass, tolerance=tolerance,
        k_start=k_start, draws=draws, max_topologies=max_topologies, orders=orders,
        on_stage=on_stage,
    )  # fmt: skip
    est.method = name
    if name == VI_METHOD:
        fitted = (getattr(q, "fit_info", None) or {}).get("settings", {})
        if fitted.get("branch_objective") == "elbo":
            est.warnings.append(
                "the model's branch lengths were fitted on the ELBO (sbn vi --branch-objective "
                "elbo): such lognormals are narrow importance proposals, and vi-is was biased "
                "low by up to 0.12 nats with standard errors of 0.03-0.07 on DS1 with one; "
                "train with --branch-objective bound, or use --method glis"
            )
        heavy = [v for v in evaluator.khats.values() if v > KHAT_LIMIT]
        if heavy:
            est.warnings.append(
                f"{len(heavy)} of {len(evaluator.khats)} topologies' {VI_METHOD} estimates have "
                f"heavy-tailed importance weights (Pareto k-hat above {KHAT_LIMIT}, up to "
                f"{max(heavy):.2f}): their standard errors understate the error; --method glis, "
                f"or more draws (--set draws=N)"
            )
    joint = None
    if est.status == "complete" and joint_draws:
        joint = joint_estimate(q, evaluator.joint, seed, n, joint_draws, orders)
    est.wall_seconds = time.perf_counter() - t_start
    return TotalRun(est, joint, prov, table, n, evaluator.ran, evaluator.dropped)
