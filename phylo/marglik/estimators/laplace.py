"""Laplus estimators: one matched density per branch at the posterior mode.

Fourment et al. (2020) call *Laplus* a Laplace-type approximation that respects the
positivity of branch lengths.  At the MAP ``t^`` each branch's marginal is approximated by a
density ``q_i`` on ``(0, inf)`` whose mode is ``t^_i`` and whose log-density has the posterior's
curvature there, ``c_i = d^2/dt_i^2 [log L(t) + log p(t)]`` at ``t^``.  If the posterior were
exactly ``Z * prod_i q_i(t_i)``, evaluating both sides at the mode would give

    log Z  =  log L(t^) + log p(t^) - sum_i log q_i(t^_i),

which is the estimate.  The three families, as in physher (the paper's code):

* ``gl`` Gamma(shape a, rate b): mode (a - 1)/b = t^, curvature -(a - 1)/t^2 = c,
  so b = -c t^ and a = 1 + b t^.
* ``ll`` lognormal(mu, sigma): mode exp(mu - sigma^2) = t^, curvature -1/(sigma^2 t^2)
  at the mode, so sigma^2 = -1/(c t^2) and mu = log t^ + sigma^2.
* ``bl`` beta prime(a, b), density t^(a-1) (1+t)^(-a-b) / B(a, b): mode (a-1)/(b+1) = t^,
  curvature c, so a = 1 - c t^2 (t^ + 1) and b = -c t^ (t^ + 1) - 1.

Branches whose mode is on the boundary (``t^ <= 1e-6``), or where the curvature is not
negative, get an exponential-shaped density (gamma or beta prime with shape 1), as in
physher.  physher takes its rate from the slope ``g_i`` at zero alone and then refines the
gamma's shape by a fit to the profile; here the rate is the inverse of
``int_0^inf exp(g_i t + c_i t^2 / 2) dt``, the integral of the one-sided second-order
expansion at zero (the Laplace approximation of a mode on the boundary), because on real
data such branches often have a large curvature (DS1: slope -95, curvature -8e5, where the
slope alone overstates the branch's spread tenfold).  The beta prime takes ``a = 1`` and
``b`` equal to that rate (its normaliser ``1/b`` is then the same integral).  Where the
curvature is not negative the rate is ``|g_i|``.  As in physher, two degenerate cases are
repaired by a
least-squares fit of the log density to the branch's conditional log-posterior profile on a
grid from ``t^`` to 0.5 with the mode kept at ``t^``: a very short branch with a mode but a
spuriously large gamma variance (``t^ < 1e-4`` and a/b^2 > 0.1; shape fitted in [1, 100]),
and a beta prime whose second shape is below 2 (heavy tail; b fitted in [2, 100]).  The
lognormal falls back to the gamma where the mode is on the boundary, the curvature is not
negative, or mu > 5.

The setting ``boundary="slope"`` (``--set gl.boundary=slope``) takes physher's rate ``|g_i|``
instead (without its profile refinement), for comparison with the paper's numbers: on DS1 it
gives KL(golden || gl) about 0.058 over the 42 credible-set trees, against 0.006 with the
default ``boundary="expansion"`` (the paper's code: 0.043).

``glis`` is importance sampling with the product of the ``gl`` gammas as proposal.

**Free model parameters.**  When the posterior integrates over the substitution model's
parameters too (:mod:`phylo.marglik.parameters`), the MAP is over the branch lengths and
the parameters' unconstrained vector ``phi`` together, and ``phi`` gets one multivariate
normal centred at its MAP, whose precision is the Schur complement of the Hessian
(:attr:`phylo.marglik.optimize.Optimum.phi_precision`: the curvature in ``phi`` once the
branches off the boundary are integrated out, their own block kept to its diagonal).  The
Laplus estimates then subtract its log density at its mean,
``-m/2 log(2 pi) + 1/2 log det S``, besides the branches'; ``glis`` draws ``phi`` from it,
independently of the branch lengths, mixed with a tenth of draws from the parameters'
prior (defensive importance sampling, :func:`defensive_params`: a normal alone has lighter
tails than the posterior of, say, a poorly identified Gamma shape, and its weights would
have infinite variance).  The normal lives in the unconstrained space: a
positive parameter is lognormal, a proportion logit-normal, a simplex normal in isometric
log-ratios.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize as sopt
from scipy import special

from ..optimize import BOUNDARY, map_estimate
from . import Estimate, register

FAMILY = "Laplace and variational"
N_PROFILE = 10
PROFILE_END = 0.5


# ------------------------------------------------------------------ log densities
def gamma_logpdf(t, shape, rate):
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            shape * np.log(rate)
            - special.gammaln(shape)
            + np.where(shape == 1.0, 0.0, (shape - 1.0) * np.log(t))
            - rate * t
        )


def lognormal_logpdf(t, mu, sigma):
    lt = np.log(t)
    return -lt - np.log(sigma) - 0.5 * math.log(2 * math.pi) - 0.5 * ((lt - mu) / sigma) ** 2


def betaprime_logpdf(t, a, b):
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            np.where(a == 1.0, 0.0, (a - 1.0) * np.log(t))
            - (a + b) * np.log1p(t)
            - special.betaln(a, b)
        )


# ------------------------------------------------------------------ profiles
def _profiles(posterior, opt, branches, grids):
    """Conditional log posterior of each branch in ``branches`` at its grid points (the other
    branches, and the model parameters, at the mode), minus its value at the mode; one
    batch."""
    rows = []
    for i, grid in zip(branches, grids):
        T = np.repeat(opt.t[None, :], len(grid), axis=0)
        T[:, i] = grid
        rows.append(T)
    T = np.concatenate(rows)
    if posterior.n_params:
        val = (
            posterior.log_likelihood_batch(T, opt.phi)
            + posterior.prior.log_pdf_rows(T)
            + opt.log_prior_params
        )
    else:
        val = posterior.log_likelihood_batch(T) + posterior.prior.log_pdf_rows(T)
    out, k = [], 0
    for grid in grids:
        out.append(val[k : k + len(grid)] - opt.value)
        k += len(grid)
    return out


def _grid(mode):
    """N_PROFILE points log-spaced from the mode (or 1e-6 above a zero mode) to 0.5."""
    lo = max(mode, BOUNDARY)
    return np.geomspace(lo, max(PROFILE_END, 2 * lo), N_PROFILE)


def _fit_mode_fixed(x, y, mode, logpdf_of, lo, hi):
    """The parameter in [lo, hi] whose log density (mode kept at ``mode``) best matches the
    profile ``y`` (relative to the mode) in least squares; None if the best is on a bound."""

    def loss(s):
        lq = logpdf_of(s, x) - logpdf_of(s, np.array([mode]))
        return float(np.sum((lq - y) ** 2))

    res = sopt.minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    s = float(res.x)
    if not (loss(s) < min(loss(lo), loss(hi))):
        return None
    return s


BOUNDARY_RULES = ("expansion", "slope")


def boundary_rate(g, c, rule: str = "expansion"):
    """Rate of the exponential that stands for a branch whose mode is at zero: the inverse of
    int_0^inf exp(g t + c t^2 / 2) dt, the conditional posterior's one-sided second-order
    expansion at zero (slope ``g``, curvature ``c``), so that its normaliser is the
    expansion's; where the curvature is not negative, the slope alone, ``|g|``.  With
    ``rule="slope"`` always the slope alone (physher's rule, before its profile refinement)."""
    g = np.asarray(g, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if rule not in BOUNDARY_RULES:
        from ...errors import InputError

        raise InputError(f"boundary must be one of {', '.join(BOUNDARY_RULES)}, not {rule!r}")
    if rule == "slope":
        return np.maximum(np.abs(g), 1e-3)
    k = np.where(c < 0, -c, 1.0)
    u0 = -g / np.sqrt(2.0 * k)
    integral = np.sqrt(np.pi / (2.0 * k)) * special.erfcx(u0)
    rate = np.where(c < 0, 1.0 / integral, np.abs(g))
    return np.maximum(rate, 1e-3)


def _boundary(opt):
    c = opt.curvature
    return (opt.t <= BOUNDARY) | ~(c < 0)


def gamma_laplus(posterior, opt, boundary: str = "expansion"):
    """Shapes and rates of the Gamma-Laplus approximation at ``opt``, and per-branch labels
    (``curvature``, ``boundary``, ``profile``)."""
    m, c, g = opt.t, opt.curvature, opt.gradient
    rate = -m * c
    shape = rate * m + 1.0
    kind = np.array(["curvature"] * m.shape[0], dtype=object)
    edge = _boundary(opt)
    shape[edge] = 1.0
    rate[edge] = boundary_rate(g[edge], c[edge], boundary)
    kind[edge] = "boundary"
    with np.errstate(divide="ignore", invalid="ignore"):
        spurious = ~edge & (m < 1e-4) & (shape / rate**2 > 0.1)
    idx = np.flatnonzero(spurious)
    if idx.size:
        grids = [_grid(m[i]) for i in idx]
        profs = _profiles(posterior, opt, idx, grids)
        for i, x, y in zip(idx, grids, profs):

            def lp(a, xx, mode=m[i]):
                return gamma_logpdf(xx, a, (a - 1.0) / mode)

            a = _fit_mode_fixed(x, y, m[i], lp, 1.0 + 1e-9, 100.0)
            if a is not None:
                shape[i], rate[i] = a, (a - 1.0) / m[i]
                kind[i] = "profile"
            else:  # no interior fit: exponential shape
                shape[i], rate[i] = 1.0, max(abs(g[i]), 1e-3)
                kind[i] = "boundary"
    return shape, rate, kind


def lognormal_laplus(posterior, opt, boundary: str = "expansion"):
    """(mu, sigma) of the lognormal Laplus, with a mask of the branches that fall back to the
    Gamma Laplus, and the gamma (shape, rate) for those."""
    m, c = opt.t, opt.curvature
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.sqrt(-1.0 / (c * m * m))
        mu = np.log(m) + sigma**2
    fallback = _boundary(opt) | ~np.isfinite(mu) | ~(mu <= 5.0)
    shape, rate, _ = gamma_laplus(posterior, opt, boundary)
    return mu, sigma, fallback, shape, rate


def betaprime_laplus(posterior, opt, boundary: str = "expansion"):
    m, c, g = opt.t, opt.curvature, opt.gradient
    a = 1.0 - c * m * m * (m + 1.0)
    b = -c * m * (m + 1.0) - 1.0
    kind = np.array(["curvature"] * m.shape[0], dtype=object)
    neg = ~(b >= 0)
    a[neg] = 1.0
    b[neg] = boundary_rate(g[neg], c[neg], boundary)
    kind[neg] = "boundary"
    idx = np.flatnonzero(neg & (b < 2.0))
    if idx.size:
        grids = [_grid(m[i]) for i in idx]
        profs = _profiles(posterior, opt, idx, grids)
        for i, x, y in zip(idx, grids, profs):

            def lp(bb, xx, mode=m[i]):
                return betaprime_logpdf(xx, mode * (bb + 1.0) + 1.0, bb)

            bb = _fit_mode_fixed(x, y, m[i], lp, 2.0, 100.0)
            if bb is None:  # keep the lighter of the bounds' tails
                bb = 2.0
            b[i], a[i] = bb, m[i] * (bb + 1.0) + 1.0
            kind[i] = "profile"
    return a, b, kind


def params_log_normaliser(opt) -> float:
    """``-log N(phi^; phi^, S^-1) = m/2 log(2 pi) - 1/2 log det S``: what the normal on the
    free model parameters takes off a Laplus estimate (0 without free parameters)."""
    m = opt.phi.size
    if not m:
        return 0.0
    sign, logdet = np.linalg.slogdet(opt.phi_precision)
    return float(0.5 * m * math.log(2 * math.pi) - 0.5 * logdet)


def model_diagnostics(opt) -> dict:
    """The free model parameters at the MAP, for the diagnostics column."""
    out = {}
    for k, v in opt.model_values().items():
        out[f"map_{k}"] = (
            float(v) if np.ndim(v) == 0 else ",".join(f"{x:.4g}" for x in np.atleast_1d(v))
        )
    return out


def _laplus_estimate(opt, log_q, kinds):
    diag = {
        "log_posterior_at_map": opt.value,
        "map_iterations": opt.iterations,
        "map_converged": opt.converged,
        "boundary_branches": int(np.sum(kinds == "boundary")),
        "profile_fits": int(np.sum(kinds == "profile")),
        **model_diagnostics(opt),
    }
    return Estimate(
        log_ml=float(opt.value - np.sum(log_q) + params_log_normaliser(opt)), diagnostics=diag
    )


@register(
    "gl",
    FAMILY,
    "Gamma Laplus: a gamma per branch matched to the posterior mode and curvature at the MAP",
    "one MAP optimisation and one Hessian diagonal",
    consistent=False,
    boundary="expansion",
)
def gamma_laplus_estimate(posterior, rng, boundary="expansion"):
    opt = map_estimate(posterior)
    shape, rate, kind = gamma_laplus(posterior, opt, boundary)
    return _laplus_estimate(opt, gamma_logpdf(opt.t, shape, rate), kind)


@register(
    "ll",
    FAMILY,
    "lognormal Laplus: a lognormal per branch matched to the posterior "
    "mode and curvature at the MAP",
    "one MAP optimisation and one Hessian diagonal",
    consistent=False,
    boundary="expansion",
)
def lognormal_laplus_estimate(posterior, rng, boundary="expansion"):
    opt = map_estimate(posterior)
    mu, sigma, fb, shape, rate = lognormal_laplus(posterior, opt, boundary)
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.where(
            fb,
            gamma_logpdf(opt.t, shape, rate),
            lognormal_logpdf(np.maximum(opt.t, 1e-300), mu, sigma),
        )
    kind = np.where(fb, "boundary", "curvature")
    est = _laplus_estimate(opt, lq, kind)
    est.diagnostics["gamma_fallbacks"] = int(fb.sum())
    return est


@register(
    "bl",
    FAMILY,
    "beta-prime Laplus: a beta' per branch matched to the posterior mode and curvature at the MAP",
    "one MAP optimisation and one Hessian diagonal",
    consistent=False,
    boundary="expansion",
)
def betaprime_laplus_estimate(posterior, rng, boundary="expansion"):
    opt = map_estimate(posterior)
    a, b, kind = betaprime_laplus(posterior, opt, boundary)
    return _laplus_estimate(opt, betaprime_logpdf(opt.t, a, b), kind)


# ------------------------------------------------------------------ importance sampling
def importance_summary(log_w: np.ndarray) -> tuple[float, float, float]:
    """log of the mean importance weight, its standard error (delta method), and the
    effective sample size; ``log_w`` may hold -inf."""
    log_w = np.asarray(log_w, dtype=np.float64)
    n = log_w.shape[0]
    mx = np.max(log_w)
    if not np.isfinite(mx):
        return -math.inf, math.nan, 0.0
    w = np.exp(log_w - mx)
    mean = w.mean()
    log_ml = float(mx + math.log(mean))
    se = float(w.std(ddof=1) / (math.sqrt(n) * mean)) if n > 1 else math.nan
    ess = float(w.sum() ** 2 / np.sum(w * w))
    return log_ml, se, ess


#: share of the draws of the model's parameters that importance samplers take from their
#: prior (defensive importance sampling, Hesterberg 1995): the weights' factor for those
#: parameters is then at most 1 / DEFENSIVE, whatever the tails of the posterior
DEFENSIVE = 0.1


def defensive_params(posterior, rng, n, mean, chol, defensive=DEFENSIVE):
    """``n`` draws of the free model parameters' vector from the mixture
    ``(1 - defensive) N(mean, chol chol^T) + defensive prior``, and the mixture's log
    density at each.

    A normal in the unconstrained space has lighter tails than many posteriors there (the
    Gamma shape's, with few sites, falls like its Exponential prior, e^phi, towards
    phi = -inf); importance weights from it alone then have infinite variance and the
    estimate falls short.  The prior's share bounds the weights."""
    m = mean.shape[0]
    Z = rng.standard_normal((n, m))
    Phi = mean + Z @ chol.T
    from_prior = rng.random(n) < defensive
    if from_prior.any():
        Phi[from_prior] = posterior.params.sample(rng, int(from_prior.sum()))
    Zs = np.linalg.solve(chol, (Phi - mean).T).T
    log_normal = (
        -0.5 * m * math.log(2 * math.pi) - np.sum(np.log(np.diag(chol))) - 0.5 * np.sum(Zs**2, 1)
    )
    log_prior = posterior.params.log_density_rows(Phi)
    log_q = np.logaddexp(math.log1p(-defensive) + log_normal, math.log(defensive) + log_prior)
    return Phi, log_q, log_prior


def gamma_proposal_log_weights(
    posterior,
    shape,
    rate,
    samples,
    rng,
    chunk=20000,
    phi_mean=None,
    phi_precision=None,
    defensive=DEFENSIVE,
):
    """Draw ``samples`` branch-length vectors from independent gammas and return their
    log importance weights log L(t) + log p(t) - log q(t).  With free model parameters
    their vector ``phi`` is drawn too, from the normal with ``phi_mean`` and
    ``phi_precision`` mixed with their prior (:func:`defensive_params`), and its prior
    density and the mixture's enter the weights."""
    out = np.empty(samples)
    m = posterior.n_params
    if m:
        cov = np.linalg.inv(phi_precision)
        chol = np.linalg.cholesky(0.5 * (cov + cov.T))
    for k in range(0, samples, chunk):
        n = min(chunk, samples - k)
        T = rng.gamma(shape, 1.0 / rate, size=(n, shape.shape[0]))
        np.maximum(T, 1e-300, out=T)
        log_q = gamma_logpdf(T, shape, rate).sum(axis=1)
        if not m:
            out[k : k + n] = (
                posterior.log_likelihood_batch(T) + posterior.prior.log_pdf_rows(T) - log_q
            )
            continue
        Phi, log_qp, log_pp = defensive_params(posterior, rng, n, phi_mean, chol, defensive)
        out[k : k + n] = (
            posterior.log_likelihood_batch(T, Phi)
            + posterior.prior.log_pdf_rows(T)
            + log_pp
            - log_q
            - log_qp
        )
    return out


@register(
    "glis",
    FAMILY,
    "importance sampling from the product of the Gamma-Laplus gammas",
    "one MAP optimisation, then `samples` likelihoods (batched)",
    samples=10000,
    boundary="expansion",
)
def gamma_laplus_is(posterior, rng, samples=10000, boundary="expansion"):
    opt = map_estimate(posterior)
    shape, rate, kind = gamma_laplus(posterior, opt, boundary)
    log_w = gamma_proposal_log_weights(
        posterior,
        shape,
        rate,
        int(samples),
        rng,
        phi_mean=opt.phi,
        phi_precision=opt.phi_precision,
    )
    log_ml, se, ess = importance_summary(log_w)
    gl = float(opt.value - np.sum(gamma_logpdf(opt.t, shape, rate)) + params_log_normaliser(opt))
    return Estimate(
        log_ml=log_ml,
        se=se,
        diagnostics={
            "ess": ess,
            "samples": int(samples),
            "gl": gl,
            "boundary_branches": int(np.sum(kind == "boundary")),
            **model_diagnostics(opt),
        },
    )
