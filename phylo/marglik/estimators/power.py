"""Power-posterior estimators: stepping stone, generalized stepping stone, path sampling.

All four run HMC chains at temperatures ``0 = beta_0 < ... < beta_{K-1} = 1`` placed at the
quantiles of a Beta(alpha, 1) distribution, ``beta_k = (k / (K - 1))^(1 / alpha)`` (as physher
places its ``steps``, with ``alpha = 0.3``), warm-started from ``beta = 1`` down (see
:func:`phylo.marglik.mcmc.power_posterior_chains`).  At ``beta = 0`` the draws are exact.

Default settings were chosen on DS1 (27 taxa, 51 branches, 1949 sites; tree 0 of the golden
credible set, published log p(D | tree) about -7036.5), counting CPU seconds on one core:

* ``gss``: 50 temperatures, 300 draws after 100 burn-in iterations per temperature, 5
  leapfrog steps, a 1000-draw pilot after 1000 warm-up iterations: -7036.51 +- 0.015 in about
  36 s (106,000 likelihood-and-gradient evaluations).  Over the 42 trees of the DS1
  credible set (standard errors 0.013-0.019) the topology posterior it implies is
  KL(golden || gss) = 8e-5 from the golden MrBayes frequencies.
* ``ss``, ``ps``, ``psm``: 50 temperatures, 2000 draws after 100 burn-in iterations per
  temperature, 5 leapfrog steps: ``ss`` -7036.47 +- 0.12 in about 175 s (511,000
  evaluations), ``psm`` -7036.47 +- 0.11, ``ps`` -7036.96 +- 0.11 (the trapezoid rule's
  bias); with 300 draws it takes 35 s with a standard error near 0.33.  The standard
  error falls as ``1 / sqrt(samples)``; most of it comes from the stones at beta between
  0.002 and 0.05, where the log-likelihood's spread times the step in beta is about 1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..mcmc import effective_sample_size, power_posterior_chains, sample_posterior
from . import Estimate, register


def beta_temperatures(count: int, alpha: float = 0.3) -> np.ndarray:
    """``count`` temperatures from 0 to 1 at the quantiles ``k / (count - 1)`` of Beta(alpha, 1)."""
    if count < 2:
        raise ValueError("at least two temperatures (0 and 1)")
    return (np.arange(count) / (count - 1.0)) ** (1.0 / alpha)


class IndependentGammas:
    """Independent Gamma(shape_i, rate_i) branch lengths: the reference density of the
    generalized stepping stone, fitted by the method of moments to posterior draws of each
    branch (mean m, variance v: shape m^2 / v, rate m / v)."""

    def __init__(self, shape, rate):
        self.shape = np.asarray(shape, dtype=np.float64)
        self.rate = np.asarray(rate, dtype=np.float64)
        self._c = np.sum(self.shape * np.log(self.rate) - special.gammaln(self.shape))

    @classmethod
    def fit(cls, T: np.ndarray) -> IndependentGammas:
        m = T.mean(axis=0)
        v = T.var(axis=0, ddof=1)
        v = np.maximum(v, 1e-12 * m * m + 1e-300)
        return cls(m * m / v, m / v)

    def log_pdf(self, t: np.ndarray) -> float:
        return float(self._c + np.sum((self.shape - 1.0) * np.log(t) - self.rate * t))

    def log_pdf_rows(self, T: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self._c + ((self.shape - 1.0) * np.log(T) - self.rate * T).sum(axis=-1)

    def grad_log_pdf(self, t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", over="ignore"):
            return (self.shape - 1.0) / t - self.rate

    def grad_log_pdf_log(self, t: np.ndarray) -> np.ndarray:
        """``t * grad_log_pdf(t)``: the gradient with respect to ``log t`` (no Jacobian)."""
        return (self.shape - 1.0) - self.rate * t

    def sample(self, rng: np.random.Generator, shape) -> np.ndarray:
        return rng.gamma(self.shape, 1.0 / self.rate, size=shape)


class MultivariateNormal:
    """A normal density of the free model parameters' vector ``phi`` (the generalized
    stepping stone's reference for them), fitted to posterior draws by their mean and
    covariance (regularised by 1e-10 on the diagonal)."""

    def __init__(self, mean, cov):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
        self.chol = np.linalg.cholesky(self.cov)
        self.prec = np.linalg.inv(self.cov)
        d = self.mean.shape[0]
        self._c = -0.5 * d * math.log(2 * math.pi) - np.sum(np.log(np.diag(self.chol)))

    @classmethod
    def fit(cls, Phi: np.ndarray) -> MultivariateNormal:
        d = Phi.shape[1]
        cov = np.atleast_2d(np.cov(Phi, rowvar=False)) + 1e-10 * np.eye(d)
        return cls(Phi.mean(axis=0), cov)

    def log_pdf(self, phi: np.ndarray) -> float:
        z = phi - self.mean
        return float(self._c - 0.5 * z @ self.prec @ z)

    def log_pdf_rows(self, Phi: np.ndarray) -> np.ndarray:
        Z = np.atleast_2d(Phi) - self.mean
        return self._c - 0.5 * np.einsum("ij,jk,ik->i", Z, self.prec, Z)

    def grad_log_pdf(self, phi: np.ndarray) -> np.ndarray:
        return -self.prec @ (phi - self.mean)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.mean + rng.standard_normal((n, self.mean.shape[0])) @ self.chol.T


class Reference(IndependentGammas):
    """The generalized stepping stone's reference with free model parameters: independent
    gammas for the branch lengths and a multivariate normal (``params``) for the model's
    unconstrained parameters, all fitted to a pilot posterior run."""

    def __init__(self, gammas: IndependentGammas, params: MultivariateNormal):
        super().__init__(gammas.shape, gammas.rate)
        self.params = params


def fit_reference(posterior, X: np.ndarray):
    """The reference fitted to posterior draws ``X`` of ``x = (log t, phi)``: independent
    gammas on the branch lengths (moments), with free model parameters a normal on
    ``phi`` too (mean and covariance)."""
    B = posterior.n_branches
    gammas = IndependentGammas.fit(np.exp(X[:, :B]))
    if not posterior.n_params:
        return gammas
    return Reference(gammas, MultivariateNormal.fit(X[:, B:]))


# ------------------------------------------------------------------------------ estimators
def _ess(entry) -> float:
    n = entry["records"].shape[0]
    return (
        float(n)
        if entry["chain"] is None
        else min(float(n), effective_sample_size(entry["records"]))
    )


def stepping_stone(betas: np.ndarray, runs: list) -> tuple[float, float, np.ndarray]:
    """log Z = sum_k log mean_{q_{beta_{k-1}}} exp((beta_k - beta_{k-1}) * record), with the
    delta-method standard error from each stone's ESS.  Returns (log Z, se, stones)."""
    total, var = 0.0, 0.0
    stones = np.empty(len(betas) - 1)
    for k in range(1, len(betas)):
        d = betas[k] - betas[k - 1]
        rec = runs[k - 1]["records"]
        y = d * rec
        mx = y.max()
        w = np.exp(y - mx)
        mw = w.mean()
        stones[k - 1] = mx + math.log(mw)
        total += stones[k - 1]
        ess = _ess({"records": w, "chain": runs[k - 1]["chain"]})
        var += w.var() / (mw * mw * ess)
    return total, math.sqrt(var), stones


def path_sampling(betas: np.ndarray, runs: list, modified: bool = False) -> tuple[float, float]:
    """Trapezoid rule over the means of the records; ``modified`` subtracts
    ``(beta_k - beta_{k-1})^2 / 12 * (var_k - var_{k-1})`` per interval (the correction of
    Friel, Hurn & Wyse 2014 that physher's modified path sampling uses).  Returns (log Z, se)."""
    means = np.array([r["records"].mean() for r in runs])
    variances = np.array([r["records"].var(ddof=1) for r in runs])
    ess = np.array([_ess(r) for r in runs])
    d = np.diff(betas)
    value = float(np.sum(d * (means[1:] + means[:-1]) / 2.0))
    if modified:
        value -= float(np.sum(d * d / 12.0 * (variances[1:] - variances[:-1])))
    coef = np.zeros(len(betas))
    coef[:-1] += d / 2.0
    coef[1:] += d / 2.0
    se = math.sqrt(float(np.sum(coef**2 * variances / ess)))
    return value, se


def _diagnostics(betas, runs, seconds_note=None) -> dict:
    chains = [r["chain"] for r in runs if r is not None and r["chain"] is not None]
    ess = [_ess(r) for r in runs if r is not None and r["chain"] is not None]
    return {
        "temperatures": int(len(betas)),
        "acceptance": float(np.mean([c.acceptance for c in chains])) if chains else math.nan,
        "min_ess": float(np.min(ess)) if ess else math.nan,
        "mean_ess": float(np.mean(ess)) if ess else math.nan,
        "divergences": int(sum(c.divergences for c in chains)),
        "samples_per_temperature": int(runs[0]["records"].shape[0]),
    }


_DEFAULTS = dict(temperatures=50, alpha=0.3, samples=2000, burnin=100, warmup=1000, leapfrog=5)
_GSS_DEFAULTS = dict(_DEFAULTS, samples=300)


def _power_runs(posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog, need_top):
    betas = beta_temperatures(temperatures, alpha)
    runs = power_posterior_chains(
        posterior,
        betas,
        rng,
        samples=samples,
        burnin=burnin,
        warmup=warmup,
        n_leapfrog=leapfrog,
        need_top=need_top,
    )
    return betas, runs


@register(
    "ss",
    "power posteriors",
    "stepping stone (Xie et al. 2011) over power posteriors sampled by HMC",
    "temperatures x (burnin + samples) x leapfrog gradients",
    **_DEFAULTS,
)
def ss(posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog):
    """Stepping stone: ``log Z = sum_k log E_{beta_{k-1}}[L^(beta_k - beta_{k-1})]``.

    Defaults: 50 temperatures at Beta(0.3, 1) quantiles, 2000 draws after 100 burn-in
    iterations per temperature, 5 leapfrog steps, 1000 warm-up iterations at ``beta = 1``;
    exact prior draws at ``beta = 0``.  The chain at ``beta = 1`` only serves as the warm start
    (the stones use the draws at ``beta_0 .. beta_{K-2}``).  On DS1 tree 0 this takes about
    175 CPU seconds and gives a standard error near 0.12 (the published value is matched
    within 0.3).
    """
    betas, runs = _power_runs(
        posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog, need_top=False
    )
    value, se, stones = stepping_stone(betas, runs)
    diag = _diagnostics(betas, runs[:-1])
    return Estimate(value, se, diagnostics=diag)


@register(
    "gss",
    "power posteriors",
    "generalized stepping stone (Fan et al. 2011) from a gamma reference fitted to a "
    "pilot posterior run",
    "(temperatures + 1) x (burnin + samples) x leapfrog gradients",
    pilot=1000,
    **_GSS_DEFAULTS,
)
def gss(posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog, pilot):
    """Generalized stepping stone with independent gamma references.

    A pilot HMC run at ``beta = 1`` (``warmup`` tuning iterations, then ``pilot`` draws) fits
    one gamma per branch by the method of moments, as physher fits its reference to a pilot
    posterior log, and with free model parameters a multivariate normal on their
    unconstrained vector (the draws' mean and covariance); then power posteriors
    ``[L p]^beta r^(1 - beta)`` are run down the temperatures from the pilot's last state,
    with exact reference draws at ``beta = 0``.

    Defaults: 50 temperatures at Beta(0.3, 1) quantiles, 300 draws after 100 burn-in
    iterations per temperature, 5 leapfrog steps, 1000 pilot draws after 1000 warm-up
    iterations.  On DS1 tree 0 this takes about 36 CPU seconds with a standard error near
    0.015.
    """
    betas = beta_temperatures(temperatures, alpha)
    chain = sample_posterior(posterior, rng, samples=pilot, warmup=warmup, n_leapfrog=leapfrog)
    reference = fit_reference(posterior, chain.samples)
    runs = power_posterior_chains(
        posterior,
        betas,
        rng,
        samples=samples,
        burnin=burnin,
        warmup=warmup,
        n_leapfrog=leapfrog,
        reference=reference,
        pilot=chain,
        need_top=False,
    )
    value, se, stones = stepping_stone(betas, runs)
    diag = _diagnostics(betas, runs[:-1])
    diag["pilot_ess"] = chain.ess()
    return Estimate(value, se, diagnostics=diag)


@register(
    "ps",
    "power posteriors",
    "path sampling / thermodynamic integration (Lartillot & Philippe 2006), trapezoid rule",
    "temperatures x (burnin + samples) x leapfrog gradients",
    **_DEFAULTS,
)
def ps(posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog):
    """Path sampling: trapezoid rule over ``E_beta[log L]`` at the temperatures.

    Defaults as ``ss``; the trapezoid rule has a discretisation bias of order
    ``sum (beta_k - beta_{k-1})^2 * (var_k - var_{k-1}) / 12`` that ``psm`` removes: on DS1
    tree 0 ``ps`` gives -7036.96 +- 0.11 and ``psm`` -7036.47 +- 0.11 from the same chains
    (about 185 CPU seconds), against the published -7036.5.
    """
    betas, runs = _power_runs(
        posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog, need_top=True
    )
    value, se = path_sampling(betas, runs)
    return Estimate(value, se, diagnostics=_diagnostics(betas, runs))


@register(
    "psm",
    "power posteriors",
    "modified path sampling: trapezoid rule with the variance correction",
    "temperatures x (burnin + samples) x leapfrog gradients",
    **_DEFAULTS,
)
def psm(posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog):
    """Modified path sampling: the trapezoid rule minus
    ``(beta_k - beta_{k-1})^2 / 12 * (Var_k[log L] - Var_{k-1}[log L])`` for each interval
    (physher's ``log_marginal_path_sampling_modified``; the derivative of ``E_beta[log L]`` is
    ``Var_beta[log L]``).  Defaults as ``ss``."""
    betas, runs = _power_runs(
        posterior, rng, temperatures, alpha, samples, burnin, warmup, leapfrog, need_top=True
    )
    value, se = path_sampling(betas, runs, modified=True)
    return Estimate(value, se, diagnostics=_diagnostics(betas, runs))
