"""Posterior mode (MAP) and likelihood maximum (ML) of the branch lengths of one topology.

Both are found by a projected L-BFGS over the branch lengths themselves, with the analytic
gradient and the bound ``t >= 0``: a branch whose optimum is at zero (common for the MAP under an
exponential prior, whose density falls fastest at zero) simply sits on the bound, where
working on ``log t`` would chase it to minus infinity.  The start is a least-squares fit of
the branch lengths to the JC69 pairwise distances on the topology, which is close to the
optimum on real data and saves most of the iterations.

The curvature at the optimum (the Hessian's diagonal, all the Laplus estimators need) comes
from second differences of the objective, evaluated as one batch of likelihoods; branches on
the bound are differenced one-sided, inwards.  The full Hessian, when wanted, comes from
finite differences of the analytic gradient, one perturbed gradient per branch.

:func:`map_estimate` and :func:`ml_estimate` cache their result on the posterior, so every
estimator of one posterior (``gl``, ``ll``, ``bl``, ``glis``, ``elbo``, ...) shares one
optimisation.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Optimum",
    "distance_start",
    "maximise",
    "map_estimate",
    "ml_estimate",
    "hessian",
    "diagonal_curvature",
    "clear_cache",
]

#: a branch at or below this length counts as lying on the boundary t = 0
BOUNDARY = 1e-6
#: upper bound for a branch length (expected substitutions per site)
UPPER = 20.0


@dataclass
class Optimum:
    """The optimum of ``log L(t) + [log p(t)]`` over branch lengths ``t >= 0``.

    Attributes
    ----------
    t : ndarray
        Optimal branch lengths.
    log_likelihood, log_prior : float
        At ``t``.
    value : float
        The maximised objective: ``log_likelihood + log_prior`` for the MAP,
        ``log_likelihood`` for the ML estimate.
    gradient : ndarray
        Gradient of the objective at ``t`` (about 0 except on the boundary, where it is
        negative).
    curvature : ndarray
        d^2/dt_i^2 of the objective at ``t`` (the Hessian's diagonal), by second differences
        of the objective (one batch of about ``2 * dim`` likelihoods).
    hessian : ndarray
        The full Hessian, on first use.
    boundary : ndarray of bool
        Branches at the bound (``t <= BOUNDARY``).
    """

    kind: str
    t: np.ndarray
    log_likelihood: float
    log_prior: float
    value: float
    gradient: np.ndarray
    curvature: np.ndarray
    boundary: np.ndarray
    iterations: int = 0
    evaluations: int = 0
    converged: bool = True
    message: str = ""
    posterior: object = field(default=None, repr=False)
    _hessian: np.ndarray | None = field(default=None, repr=False)

    @property
    def hessian(self) -> np.ndarray:
        """Full matrix of second derivatives of the objective at :attr:`t` (computed on
        first use from the analytic gradient)."""
        if self._hessian is None:
            self._hessian = hessian(
                self.posterior, self.t, self.gradient, with_prior=self.kind == "map"
            )
        return self._hessian


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def clear_cache(posterior=None) -> None:
    """Forget cached optima (of one posterior, or of all)."""
    if posterior is None:
        _CACHE.clear()
    else:
        _CACHE.pop(posterior, None)


# ------------------------------------------------------------------ start
def _pairwise_jc(posterior) -> np.ndarray:
    """JC69 distances between the tips (taxon order of the tree), from the site patterns;
    ambiguous states are left out of each pair's comparison."""
    pats = posterior.likelihood.patterns
    tips = pats.tip_partials()  # (n, 4, P)
    w = np.asarray(pats.weights, dtype=np.float64)
    exact = (tips.sum(axis=1) == 1.0).astype(np.float64)  # (n, P)
    # n x n matrix products, never an n x n x P array (8 GB at 1,000 taxa and patterns):
    # pair (a, b) agrees at pattern p when both tips hold the same single state
    n_both = (exact * w) @ exact.T
    n_same = np.zeros_like(n_both)
    for s in range(tips.shape[1]):
        x = tips[:, s, :] * exact
        n_same += (x * w) @ x.T
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n_both > 0, 1.0 - n_same / np.maximum(n_both, 1.0), 0.0)
    p = np.minimum(p, 0.70)  # keep the log finite
    return -0.75 * np.log1p(-4.0 / 3.0 * p)


def _edge_incidence(posterior) -> np.ndarray:
    """(pairs, branches) 0/1 matrix: pair (a, b) of tips crosses branch i."""
    lik = posterior.likelihood
    n = lik.n_taxa
    splits = np.asarray(lik.branch_splits(), dtype=np.uint64)  # (E, W)
    k = np.arange(n)
    bits = (splits[:, k // 64] >> (k % 64).astype(np.uint64)) & np.uint64(1)
    side = bits.astype(bool)  # (E, n)
    a, b = np.triu_indices(n, 1)
    return (side[:, a] != side[:, b]).T.astype(np.float64)


def distance_start(posterior, floor: float = 1e-3) -> np.ndarray:
    """Branch lengths fitted by least squares to the JC69 pairwise distances on the topology
    (negative or tiny fits raised to ``floor``)."""
    d = _pairwise_jc(posterior)
    A = _edge_incidence(posterior)
    a, b = np.triu_indices(d.shape[0], 1)
    # normal equations: A'A is small (branches x branches) and non-singular for a binary tree
    t = np.linalg.solve(A.T @ A, A.T @ d[a, b])
    return np.clip(t, floor, 2.0)


# ------------------------------------------------------------------ optimisation
def _objective(posterior, with_prior: bool):
    prior = posterior.prior

    def f(t):
        ll, g = posterior.log_likelihood_and_gradient(t)
        if with_prior:
            ll = ll + prior.log_pdf(t)
            g = g + prior.grad_log_pdf(t)
        return -ll, -g

    return f


def hessian(
    posterior,
    t: np.ndarray,
    gradient: np.ndarray | None = None,
    with_prior: bool = True,
    rel_step: float = 1e-5,
    min_step: float = 1e-8,
) -> np.ndarray:
    """Hessian of ``log L(t) [+ log p(t)]`` with respect to ``t`` by forward differences of
    the analytic gradient (one batch of ``dim`` gradients; one more when ``gradient`` at
    ``t`` is not given).  Steps go inwards (``t_i + h_i``), so branches at zero are fine.
    The result is symmetrised."""
    t = np.asarray(t, dtype=np.float64)
    dim = t.shape[0]
    h = np.maximum(rel_step * t, min_step)
    T = np.repeat(t[None, :], dim + (gradient is None), axis=0)
    T[np.arange(dim), np.arange(dim)] += h
    posterior.n_evaluations += T.shape[0]
    _, G = posterior.likelihood.gradient_batch(T)
    if with_prior:
        G = G + np.stack([posterior.prior.grad_log_pdf(row) for row in T])
    g0 = G[dim] if gradient is None else np.asarray(gradient, dtype=np.float64)
    H = (G[:dim] - g0[None, :]) / h[:, None]
    return 0.5 * (H + H.T)


def diagonal_curvature(
    posterior,
    t: np.ndarray,
    value: float,
    with_prior: bool = True,
    rel_step: float = 1e-3,
    boundary_step: float = 1e-5,
) -> np.ndarray:
    """d^2/dt_i^2 of ``log L(t) [+ log p(t)]`` (whose value at ``t`` is ``value``) by
    central second differences, or one-sided second-order ones (2 f0 - 5 f1 + 4 f2 - f3)/h^2
    for branches too close to zero; all points in one batch of likelihoods."""
    t = np.asarray(t, dtype=np.float64)
    dim = t.shape[0]
    h = rel_step * t
    central = h > 1e-8
    h = np.where(central, h, boundary_step)
    rows, where = [], []
    for i in range(dim):
        offsets = (-1.0, 1.0) if central[i] else (1.0, 2.0, 3.0)
        for k in offsets:
            r = t.copy()
            r[i] += k * h[i]
            rows.append(r)
        where.append(len(rows))
    T = np.array(rows)
    f = posterior.log_likelihood_batch(T)
    if with_prior:
        f = f + posterior.prior.log_pdf_rows(T)
    out = np.empty(dim)
    start = 0
    for i in range(dim):
        v = f[start : where[i]]
        if central[i]:
            out[i] = (v[0] - 2.0 * value + v[1]) / h[i] ** 2
        else:
            out[i] = (2.0 * value - 5.0 * v[0] + 4.0 * v[1] - v[2]) / h[i] ** 2
        start = where[i]
    return out


def minimize_bounded(
    fun,
    x0,
    lower,
    upper,
    gtol: float = 1e-6,
    ftol: float = 1e-14,
    max_iterations: int = 2000,
    memory: int = 10,
):
    """Minimise ``fun(x) -> (value, gradient)`` over the box ``lower <= x <= upper`` by a
    projected L-BFGS: variables at a bound whose gradient pushes outwards are held there, the
    others take the two-loop quasi-Newton direction, and a backtracking (Armijo) line search
    runs along the projected path.

    Written out (rather than scipy's L-BFGS-B) because the problems here are small and
    their gradient is cheap: scipy's routine spends milliseconds per iteration in BLAS
    thread start-up on a loaded machine, more than the likelihood itself.

    Returns ``(x, value, gradient, iterations, converged, message)``.
    """
    lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), np.shape(x0))
    hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), np.shape(x0))
    x = np.clip(np.asarray(x0, dtype=np.float64), lo, hi)
    f, g = fun(x)
    S, Y, R = [], [], []
    message = "iteration limit"
    converged = False
    it = 0
    for it in range(1, max_iterations + 1):
        held = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
        pg = np.where(held, 0.0, g)
        if np.max(np.abs(pg)) <= gtol:
            converged, message = True, "projected gradient below tolerance"
            it -= 1
            break
        # two-loop recursion on the free variables
        q = pg.copy()
        alphas = []
        for s_, y_, r_ in zip(reversed(S), reversed(Y), reversed(R)):
            a = r_ * np.dot(s_, q)
            alphas.append(a)
            q -= a * y_
        if S:
            q *= np.dot(S[-1], Y[-1]) / np.dot(Y[-1], Y[-1])
        else:
            q *= min(1.0, 0.1 / np.max(np.abs(pg))) * max(1e-3, float(np.max(np.abs(x))))
        for (s_, y_, r_), a in zip(zip(S, Y, R), reversed(alphas)):
            b = r_ * np.dot(y_, q)
            q += (a - b) * s_
        d = -np.where(held, 0.0, q)
        if not np.dot(d, pg) < 0:  # not a descent direction: restart
            S, Y, R = [], [], []
            d = -pg * min(1.0, 0.1 / np.max(np.abs(pg))) * max(1e-3, float(np.max(np.abs(x))))
        step = 1.0
        for _ in range(60):
            xn = np.clip(x + step * d, lo, hi)
            fn, gn = fun(xn)
            # Armijo, with the promised decrease capped: next to a zero branch the gradient
            # can be astronomically large without the objective being able to follow it
            if np.isfinite(fn) and fn <= f + max(
                1e-4 * np.dot(g, xn - x), -1e-3 * max(1.0, abs(f))
            ):
                break
            step *= 0.25 if not np.isfinite(fn) else 0.5
        else:
            if S:  # forget the curvature, retry
                S, Y, R = [], [], []
                continue
            message = "line search failed"
            break
        s_, y_ = xn - x, gn - g
        sy = np.dot(s_, y_)
        if sy > 1e-12 * np.linalg.norm(s_) * np.linalg.norm(y_):
            S.append(s_)
            Y.append(y_)
            R.append(1.0 / sy)
            if len(S) > memory:
                S.pop(0), Y.pop(0), R.pop(0)
        df = f - fn
        x, f, g = xn, fn, gn
        if df <= ftol * max(1.0, abs(f)):
            # the objective no longer changes in floating point: as good as it gets
            converged, message = True, "relative reduction of the objective below tolerance"
            break
    return x, f, g, it, converged, message


def maximise(
    posterior,
    with_prior: bool = True,
    start: np.ndarray | None = None,
    gtol: float = 1e-6,
    max_iterations: int = 2000,
) -> Optimum:
    """Maximise ``log L(t) + log p(t)`` (``with_prior``) or ``log L(t)`` over ``t >= 0`` by
    projected L-BFGS, then compute the curvature there."""
    n0 = posterior.n_evaluations
    if start is None:
        start = distance_start(posterior)
    x0 = np.clip(np.asarray(start, dtype=np.float64), 0.0, UPPER)
    f = _objective(posterior, with_prior)
    t, _, _, nit, ok, message = minimize_bounded(
        f, x0, 0.0, UPPER, gtol=gtol, max_iterations=max_iterations
    )
    ll, g = posterior.log_likelihood_and_gradient(t)
    lp = posterior.prior.log_pdf(t)
    if with_prior:
        g = g + posterior.prior.grad_log_pdf(t)
    value = float(ll + lp) if with_prior else float(ll)
    c = diagonal_curvature(posterior, t, value, with_prior=with_prior)
    return Optimum(
        kind="map" if with_prior else "ml",
        t=t,
        log_likelihood=float(ll),
        log_prior=float(lp),
        value=value,
        gradient=g,
        curvature=c,
        boundary=t <= BOUNDARY,
        iterations=int(nit),
        evaluations=posterior.n_evaluations - n0,
        converged=bool(ok),
        message=message,
        posterior=posterior,
    )


def _cached(posterior, kind: str, with_prior: bool, cache: bool) -> Optimum:
    if cache:
        store = _CACHE.setdefault(posterior, {})
        if kind in store:
            return store[kind]
    opt = maximise(posterior, with_prior=with_prior)
    if cache:
        _CACHE[posterior][kind] = opt
    return opt


def map_estimate(posterior, cache: bool = True) -> Optimum:
    """The posterior mode of the branch lengths (cached on ``posterior``)."""
    return _cached(posterior, "map", True, cache)


def ml_estimate(posterior, cache: bool = True) -> Optimum:
    """The maximum-likelihood branch lengths (cached on ``posterior``)."""
    return _cached(posterior, "ml", False, cache)
