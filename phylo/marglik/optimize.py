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

With free model parameters (``phi``, unconstrained: :mod:`phylo.marglik.parameters`) the
optimum is over ``(t, phi)`` together, of ``log L + log p(t) + log p(phi)`` (the density of
``phi``, Jacobian included) for the MAP and of ``log L`` for the ML estimate, with ``phi`` in
the box ``[-PHI_BOUND, PHI_BOUND]``.  At the optimum the rows of the Hessian that involve
``phi`` come from central differences of the analytic gradient (two gradients per
coordinate), and :attr:`Optimum.phi_precision` is the Schur complement

    S = -(H_pp - H_pb diag(H_bb)^-1 H_bp)

over the branches off the boundary (``b``), with the branches' own block kept to its
diagonal (the branch curvatures), as the Laplus approximations treat branches: the
precision of ``phi`` once those branches are integrated out of the Gaussian whose
precision matrix is the Hessian with the branch-branch terms dropped.

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
#: bound of the free model parameters' unconstrained coordinates
PHI_BOUND = 30.0
#: step of the central differences of the gradient in the model's coordinates
PHI_STEP = 1e-5


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
    phi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    phi_gradient: np.ndarray = field(default_factory=lambda: np.zeros(0))
    phi_precision: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    log_prior_params: float = 0.0

    @property
    def phi_covariance(self) -> np.ndarray:
        """The inverse of :attr:`phi_precision`."""
        return np.linalg.inv(self.phi_precision) if self.phi.size else np.zeros((0, 0))

    def model_values(self) -> dict:
        """The free model parameters' values at the optimum."""
        post = self.posterior
        return {} if post is None or not post.n_params else post.params.values(self.phi)

    @property
    def hessian(self) -> np.ndarray:
        """Full matrix of second derivatives of the objective at :attr:`t` (computed on
        first use from the analytic gradient)."""
        if self._hessian is None:
            if self.phi.size:  # the branches' Hessian at the optimum's model parameters
                self.posterior.likelihood.set_model(self.posterior.params.model(self.phi))
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
    if posterior.n_params:
        B = posterior.n_branches
        params = posterior.params

        def fz(z):
            t, phi = z[:B], z[B:]
            ll, g, gp = posterior.joint_gradient(t, phi)
            if with_prior:
                ll = ll + prior.log_pdf(t) + params.log_density(phi)
                g = g + prior.grad_log_pdf(t)
                gp = gp + params.grad_log_density(phi)
            if not np.isfinite(ll):
                return np.inf, np.zeros_like(z)
            return -ll, -np.concatenate([g, gp])

        return fz

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
    phi: np.ndarray | None = None,
) -> np.ndarray:
    """d^2/dt_i^2 of ``log L(t) [+ log p(t)]`` (whose value at ``t`` is ``value``) by
    central second differences, or one-sided second-order ones (2 f0 - 5 f1 + 4 f2 - f3)/h^2
    for branches too close to zero; all points in one batch of likelihoods (at the free
    model parameters ``phi``, when the posterior has any; ``value`` then includes their
    prior's density, which does not change along a branch)."""
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
    if posterior.n_params:
        f = posterior.log_likelihood_batch(T, phi)
        if with_prior:
            f = f + posterior.prior.log_pdf_rows(T) + posterior.params.log_density(phi)
    else:
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
    projected L-BFGS, then compute the curvature there.  With free model parameters the
    maximum is over ``(t, phi)`` (see the module docstring); ``start`` is then the whole
    vector ``(t, phi)``."""
    n0 = posterior.n_evaluations
    B = posterior.n_branches
    m = posterior.n_params
    if start is None:
        start = distance_start(posterior)
        if m:
            start = np.concatenate([start, posterior.start_params])
    z0 = np.asarray(start, dtype=np.float64)
    lo = np.concatenate([np.zeros(B), np.full(m, -PHI_BOUND)])
    hi = np.concatenate([np.full(B, UPPER), np.full(m, PHI_BOUND)])
    z0 = np.clip(z0, lo, hi)
    f = _objective(posterior, with_prior)
    z, _, _, nit, ok, message = minimize_bounded(
        f, z0, lo, hi, gtol=gtol, max_iterations=max_iterations
    )
    t, phi = z[:B], z[B:]
    lpp = 0.0
    gphi = np.zeros(0)
    if m:
        ll, g, gphi = posterior.joint_gradient(t, phi)
        lpp = posterior.params.log_density(phi)
        if with_prior:
            gphi = gphi + posterior.params.grad_log_density(phi)
    else:
        ll, g = posterior.log_likelihood_and_gradient(t)
    lp = posterior.prior.log_pdf(t)
    if with_prior:
        g = g + posterior.prior.grad_log_pdf(t)
    value = float(ll + lp + lpp) if with_prior else float(ll)
    c = diagonal_curvature(posterior, t, value, with_prior=with_prior, phi=phi if m else None)
    precision = np.zeros((0, 0))
    if m:
        precision = phi_precision(posterior, t, phi, c, with_prior)
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
        phi=phi.copy(),
        phi_gradient=gphi,
        phi_precision=precision,
        log_prior_params=float(lpp),
    )


def phi_precision(posterior, t, phi, curvature, with_prior: bool = True) -> np.ndarray:
    """The precision of the free model parameters at ``(t, phi)``: the Schur complement
    of the Hessian (see the module docstring), from central differences of the analytic
    gradient in each coordinate of ``phi``; made positive definite (eigenvalues at least
    1e-8 of the largest) if rounding left it otherwise."""
    B = posterior.n_branches
    m = posterior.n_params
    rows = np.empty((m, B + m))
    for j in range(m):
        grads = []
        for sign in (1.0, -1.0):
            p = phi.copy()
            p[j] += sign * PHI_STEP
            _, g, gp = posterior.joint_gradient(t, p)
            if with_prior:
                g = g + posterior.prior.grad_log_pdf(t)
                gp = gp + posterior.params.grad_log_density(p)
            grads.append(np.concatenate([g, gp]))
        rows[j] = (grads[0] - grads[1]) / (2.0 * PHI_STEP)
    H_pp = 0.5 * (rows[:, B:] + rows[:, B:].T)
    H_pb = rows[:, :B]
    inner = (t > BOUNDARY) & (curvature < 0)
    S = -(H_pp - (H_pb[:, inner] / curvature[inner]) @ H_pb[:, inner].T)
    S = 0.5 * (S + S.T)
    w, U = np.linalg.eigh(S)
    floor = 1e-8 * max(float(np.max(np.abs(w))), 1e-300)
    if np.any(w < floor):
        S = (U * np.maximum(w, floor)) @ U.T
    return S


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
