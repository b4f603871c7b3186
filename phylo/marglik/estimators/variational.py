"""Mean-field variational approximation of the branch-length posterior.

The family is a product of lognormals, ``log t_i ~ N(mu_i, sigma_i^2)``, i.e. a diagonal
normal ``q`` on ``x = log t`` (with free model parameters, on ``x = (log t, phi)``: each of
the model's unconstrained coordinates a normal too, started at the MAP with the marginal
standard deviation of the Laplace normal of :mod:`phylo.marglik.estimators.laplace`).  Its
evidence lower bound

    ELBO(mu, sigma) = E_q[ log L(e^x) + log p(e^x) + sum_i x_i ] + sum_i log sigma_i
                      + d/2 (1 + log 2 pi)

is maximised with the reparameterisation ``x = mu + sigma * eps`` and the analytic gradient
of the likelihood.  As in physher (the paper's code) the start is the lognormal Laplus at the
MAP (mode and curvature matched); branches whose mode is on the boundary, or whose matched
lognormal has a mean above ten times the mode, start from the log of the boundary
exponential (physher pins a boundary branch's lognormal mode at e^-10 and fits only its
sigma; on DS1 that lowered the ELBO and did not steady ``vbis``).  Instead of plain
stochastic gradient ascent the fit is a sample-average approximation: ``draws``
standard-normal vectors are drawn once and the resulting smooth objective is maximised by
(projected) L-BFGS; a second, larger set of draws then
refines the optimum.  This is deterministic given the generator and needs far fewer
gradient evaluations than stochastic ascent.

``elbo`` reports the ELBO at the fitted ``q`` estimated with fresh draws (a lower bound of the
log marginal likelihood, so not consistent); ``vbis`` is importance sampling with the fitted
``q`` as proposal (physher's "vbis" with ``normalize`` false; free model parameters drawn
from ``q``'s normal mixed with a tenth of prior draws, as ``glis`` draws them).  Mean-field
``q`` is narrower than the posterior along correlated directions, so the importance weights
are heavy-tailed: now and then one draw dominates and ``vbis`` lands a log unit or more too
high.  Its diagnostics carry the effective sample size (a few, in those cases) and its
standard error is then large; both are worth checking.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special
from scipy.stats import qmc

from ..optimize import map_estimate, minimize_bounded
from . import Estimate, register
from .laplace import defensive_params, gamma_laplus, importance_summary

FAMILY = "Laplace and variational"
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_density_and_grad_rows(posterior, X):
    """log q_1(x) (log space, with Jacobian) and its gradient for each row of X."""
    if posterior.n_params:  # one joint gradient (branches and model parameters) per row
        val = np.empty(X.shape[0])
        grad = np.empty_like(X)
        for i, x in enumerate(X):
            val[i], grad[i], _ = posterior.log_density_and_gradient(x)
        bad = ~np.isfinite(val)
        val[bad] = -np.inf
        grad[bad] = 0.0
        return val, grad
    with np.errstate(over="ignore"):
        T = np.exp(X)
    bad = ~np.all(np.isfinite(T), axis=1)
    if bad.any():
        T[bad] = 1.0
    posterior.n_evaluations += T.shape[0]
    ll, G = posterior.likelihood.gradient_batch(T)
    prior = posterior.prior
    val = ll + prior.log_pdf_rows(T) + X.sum(axis=1)
    grad = (G + prior.grad_log_pdf(T)) * T + 1.0
    if bad.any():
        val[bad] = -np.inf
        grad[bad] = 0.0
    return val, grad


def laplus_start(posterior):
    """(mu, log sigma) of the lognormal Laplus at the MAP; boundary branches take the
    distribution of the log of their boundary exponential (mean -log rate - Euler's gamma,
    sd pi / sqrt 6)."""
    opt = map_estimate(posterior)
    m, c = opt.t, opt.curvature
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.sqrt(-1.0 / (c * m * m))
        mu = np.log(m) + sigma**2
        too_wide = mu + 0.5 * sigma**2 > np.log(10.0 * m)
    bad = ~np.isfinite(mu) | ~np.isfinite(sigma) | (m <= 1e-6) | too_wide
    if bad.any():
        shape, rate, _ = gamma_laplus(posterior, opt)
        mu[bad] = -np.log(rate[bad]) - np.euler_gamma
        sigma[bad] = math.pi / math.sqrt(6.0)
    if posterior.n_params:  # the model's coordinates: the MAP and the marginal sds
        mu = np.concatenate([mu, opt.phi])
        sigma = np.concatenate([sigma, np.sqrt(np.diag(opt.phi_covariance))])
    return mu, np.log(sigma)


def _negative_elbo(posterior, eps):
    """Negative sample-average ELBO and its gradient in (mu, log sigma)."""
    d = eps.shape[1]

    def f(params):
        mu, ls = params[:d], params[d:]
        s = np.exp(ls)
        X = mu[None, :] + s[None, :] * eps
        val, grad = _log_density_and_grad_rows(posterior, X)
        if not np.all(np.isfinite(val)):
            return np.inf, np.zeros_like(params)
        elbo = val.mean() + ls.sum()
        g_mu = grad.mean(axis=0)
        g_ls = (grad * eps).mean(axis=0) * s + 1.0
        return -elbo, -np.concatenate([g_mu, g_ls])

    return f


def _base_draws(S, d, rng):
    """S standard-normal vectors for the sample-average objective: scrambled Sobol points
    mapped through the normal quantile, in antithetic pairs (eps, -eps), so that the fitted
    q depends much less on the particular draws than with plain Monte Carlo."""
    half = max(1, S // 2)
    seed = int(rng.integers(2**63 - 1))
    u = qmc.Sobol(d, scramble=True, seed=seed).random(half)
    eps = special.ndtri(np.clip(u, 1e-12, 1 - 1e-12))
    return np.concatenate([eps, -eps])


def fit_meanfield(posterior, rng, draws=(8, 32), max_iterations=(200, 200), gtol=1e-3):
    """Fit the mean-field lognormal; returns ``mu``, ``sigma`` and a dict of diagnostics."""
    mu, ls = laplus_start(posterior)
    d = mu.shape[0]
    params = np.concatenate([mu, ls])
    n0 = posterior.n_evaluations
    iters = []
    for S, it in zip(draws, max_iterations):
        eps = _base_draws(int(S), d, rng)
        f = _negative_elbo(posterior, eps)
        lo = np.concatenate([np.full(d, -np.inf), np.full(d, -12.0)])
        hi = np.concatenate([np.full(d, np.inf), np.full(d, 3.0)])
        x, fx, _, nit, _, _ = minimize_bounded(
            f, params, lo, hi, gtol=gtol, ftol=1e-13, max_iterations=int(it)
        )
        if np.isfinite(fx):
            params = x
        iters.append(int(nit))
    info = {"iterations": iters, "fit_evaluations": posterior.n_evaluations - n0}
    return params[:d], np.exp(params[d:]), info


def _sample(mu, sigma, n, rng):
    eps = rng.standard_normal((n, mu.shape[0]))
    X = mu[None, :] + sigma[None, :] * eps
    log_q = -HALF_LOG_2PI * mu.shape[0] - np.sum(np.log(sigma)) - 0.5 * np.sum(eps * eps, axis=1)
    return X, log_q


def _log_weights(posterior, mu, sigma, n, rng, chunk=20000, defensive=True):
    """Log importance weights of ``n`` draws from the fitted ``q``; with free model
    parameters and ``defensive``, their coordinates are drawn from ``q``'s normal mixed
    with their prior (:func:`phylo.marglik.estimators.laplace.defensive_params`)."""
    out = np.empty(n)
    B = posterior.n_branches
    for k in range(0, n, chunk):
        m = min(chunk, n - k)
        if not (posterior.n_params and defensive):
            X, log_q = _sample(mu, sigma, m, rng)
            out[k : k + m] = posterior.log_density_batch(X) - log_q
            continue
        X, log_q = _sample(mu[:B], sigma[:B], m, rng)
        Phi, log_qp, _ = defensive_params(posterior, rng, m, mu[B:], np.diag(sigma[B:]))
        out[k : k + m] = posterior.log_density_batch(np.hstack([X, Phi])) - log_q - log_qp
    return out


def _draws(draws):
    if isinstance(draws, str):
        return tuple(int(v) for v in draws.replace(";", ",").split(",") if v.strip())
    if isinstance(draws, (int, np.integer)):
        return (int(draws),)
    return tuple(int(v) for v in draws)


@register(
    "elbo",
    FAMILY,
    "evidence lower bound of a mean-field lognormal variational "
    "approximation (reparameterisation gradients)",
    "an L-BFGS fit on fixed draws (draws x iterations gradients), then `elbo_samples` likelihoods",
    consistent=False,
    draws="8,32",
    elbo_samples=1000,
)
def elbo_estimate(posterior, rng, draws="8,32", elbo_samples=1000):
    mu, sigma, info = fit_meanfield(
        posterior, rng, _draws(draws), max_iterations=(200,) * len(_draws(draws))
    )
    log_w = _log_weights(posterior, mu, sigma, int(elbo_samples), rng, defensive=False)
    ok = np.isfinite(log_w)
    value = float(np.mean(log_w[ok]))
    se = float(np.std(log_w[ok], ddof=1) / math.sqrt(ok.sum())) if ok.sum() > 1 else math.nan
    info.update(samples=int(elbo_samples), infinite=int((~ok).sum()))
    return Estimate(log_ml=value, se=se, diagnostics=info)


@register(
    "vbis",
    FAMILY,
    "importance sampling from the fitted mean-field lognormal variational distribution",
    "the elbo fit, then `samples` likelihoods (batched)",
    draws="8,32",
    samples=10000,
)
def variational_is(posterior, rng, draws="8,32", samples=10000):
    mu, sigma, info = fit_meanfield(
        posterior, rng, _draws(draws), max_iterations=(200,) * len(_draws(draws))
    )
    log_w = _log_weights(posterior, mu, sigma, int(samples), rng)
    log_ml, se, ess = importance_summary(log_w)
    ok = np.isfinite(log_w)
    info.update(samples=int(samples), ess=ess, elbo=float(np.mean(log_w[ok])))
    return Estimate(log_ml=log_ml, se=se, diagnostics=info)
