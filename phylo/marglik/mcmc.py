"""MCMC for the posterior and the power posteriors of the branch lengths of one topology.

Everything runs on ``x = log t`` (the Jacobian is part of the target), followed by the free
model parameters mapped to the real line when there are any (``phi``, see
:mod:`phylo.marglik.parameters`), with Hamiltonian Monte Carlo driven by the analytic gradient
of the tree likelihood (in the model's parameters too:
:mod:`phylo.likelihood.parameter_gradient`):

* a fixed number of leapfrog steps per iteration, the step size jittered by +-10 % so that
  trajectories do not resonate with periodic directions;
* during warm-up the step size is tuned by dual averaging (Hoffman & Gelman 2014) to a target
  mean acceptance probability, and a diagonal mass matrix is set from the variance of the
  warm-up draws in two windows (regularised towards 1e-3 as Stan does), after which dual
  averaging restarts;
* a run is a deterministic function of the ``numpy.random.Generator`` it is given.

:class:`PowerTarget` is the power posterior

    q_beta(x) ∝ [L(t) p(t)]^beta  r(t)^(1 - beta)  prod_i t_i

with ``r`` the prior (the usual power posterior, whose ``r^(1-beta) [p]^beta = p``) or any
reference density of the branch lengths (generalized stepping stone).  Every draw records the
log of the ratio that the thermodynamic estimators average, ``log L(t) + log p(t) - log r(t)``,
which is ``log L(t)`` when the reference is the prior.

:func:`effective_sample_size` is the autocorrelation-based ESS with Geyer's initial monotone
sequence estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


# ------------------------------------------------------------------------------ ESS
def autocovariance(x: np.ndarray) -> np.ndarray:
    """Autocovariance of a 1-D series at lags 0..n-1 (biased, divided by n), via FFT."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    y = x - x.mean()
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(y, size)
    acov = np.fft.irfft(f * np.conjugate(f), size)[:n]
    return acov / n


def effective_sample_size(x) -> float | np.ndarray:
    """Effective sample size of a chain (1-D) or of each column of a 2-D array.

    ``n / tau`` with the integrated autocorrelation time ``tau = -1 + 2 sum_k Gamma_k`` summed
    over Geyer's (1992) initial positive and monotone sequence of pair sums
    ``Gamma_k = rho_{2k} + rho_{2k+1}``.  A constant series has ESS ``n``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        return np.array([effective_sample_size(x[:, j]) for j in range(x.shape[1])])
    n = x.shape[0]
    if n < 4:
        return float(n)
    acov = autocovariance(x)
    if not acov[0] > 0:
        return float(n)
    rho = acov / acov[0]
    m = (n - 1) // 2
    pairs = rho[0 : 2 * m : 2] + rho[1 : 2 * m : 2]
    # initial positive sequence
    neg = np.flatnonzero(pairs <= 0)
    k = neg[0] if neg.size else pairs.size
    pairs = pairs[:k]
    if pairs.size == 0:
        return float(n)
    # initial monotone sequence
    pairs = np.minimum.accumulate(pairs)
    tau = -1.0 + 2.0 * pairs.sum()
    tau = max(tau, 1.0 / math.log10(max(n, 10)))  # as Stan: ESS at most n log10(n)
    return float(n / tau)


# ------------------------------------------------------------------------------ targets
class PowerTarget:
    """log q_beta on ``x = (log t, phi)`` with its gradient and the recorded log ratio.

    Parameters
    ----------
    posterior : phylo.marglik.posterior.Posterior
    beta : float in [0, 1]
    reference : object with ``log_pdf``, ``grad_log_pdf`` (and ``sample``), optional
        The density of the branch lengths at ``beta = 0``; default the branch-length
        prior.  With free model parameters it also needs ``params``, a density of ``phi``
        (``log_pdf``, ``grad_log_pdf``, ``sample``, ``log_pdf_rows``) that stands in for
        their prior (see :class:`phylo.marglik.estimators.power.Reference`).
    """

    def __init__(self, posterior, beta: float = 1.0, reference=None):
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], not {beta!r}")
        self.posterior = posterior
        self.beta = float(beta)
        self.reference = reference

    def __call__(self, x: np.ndarray):
        """(log q_beta(x), its gradient, log L + log p - log r at x)."""
        post = self.posterior
        if post.n_params:
            return self._with_params(x)
        with np.errstate(over="ignore"):
            t = np.exp(x)
        if not (np.all(np.isfinite(t)) and np.all(t > 0)):
            return -np.inf, np.zeros_like(x), -np.inf
        beta = self.beta
        ll, gl = post.log_likelihood_and_gradient(t)
        if not np.isfinite(ll):
            return -np.inf, np.zeros_like(x), -np.inf
        lp = post.prior.log_pdf(t)
        gp = post.prior.grad_log_pdf(t)
        sx = float(np.sum(x))
        if self.reference is None:
            return beta * ll + lp + sx, (beta * gl + gp) * t + 1.0, ll
        ref = self.reference
        lr = ref.log_pdf(t)
        if hasattr(ref, "grad_log_pdf_log"):
            grt = ref.grad_log_pdf_log(t)
        else:
            grt = ref.grad_log_pdf(t) * t
        value = beta * (ll + lp) + (1.0 - beta) * lr + sx
        grad = beta * (gl + gp) * t + (1.0 - beta) * grt + 1.0
        return value, grad, ll + lp - lr

    def _with_params(self, x: np.ndarray):
        """:meth:`__call__` with free model parameters: the branch terms as above, plus the
        prior density of ``phi`` (or the reference's) and the likelihood's gradient in it."""
        post = self.posterior
        B = post.n_branches
        t, phi = post.split(x)
        if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(np.isfinite(phi))):
            return -np.inf, np.zeros_like(x), -np.inf
        beta = self.beta
        lp = post.prior.log_pdf(t) + post.params.log_density(phi)
        if not np.isfinite(lp):
            return -np.inf, np.zeros_like(x), -np.inf
        ll, gl, gphi = post.joint_gradient(t, phi)
        if not np.isfinite(ll):
            return -np.inf, np.zeros_like(x), -np.inf
        gp = post.prior.grad_log_pdf(t)
        gpp = post.params.grad_log_density(phi)
        sx = float(np.sum(x[:B]))
        if self.reference is None:
            value = beta * ll + lp + sx
            grad = np.concatenate([(beta * gl + gp) * t + 1.0, beta * gphi + gpp])
            return value, grad, ll
        ref = self.reference
        lr = ref.log_pdf(t) + ref.params.log_pdf(phi)
        grt = ref.grad_log_pdf_log(t)
        grp = ref.params.grad_log_pdf(phi)
        value = beta * (ll + lp) + (1.0 - beta) * lr + sx
        grad = np.concatenate(
            [
                beta * (gl + gp) * t + (1.0 - beta) * grt + 1.0,
                beta * (gphi + gpp) + (1.0 - beta) * grp,
            ]
        )
        return value, grad, ll + lp - lr

    def sample_exact(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Exact draws of ``x`` at ``beta = 0`` (from the prior or the reference)."""
        post = self.posterior
        if self.reference is None:
            return post.sample_prior_x(rng, n)
        with np.errstate(divide="ignore"):
            X = np.log(self.reference.sample(rng, (n, post.n_branches)))
        if not post.n_params:
            return X
        return np.concatenate([X, self.reference.params.sample(rng, n)], axis=1)

    def records(self, X: np.ndarray) -> np.ndarray:
        """The recorded log ratio for each row of X (batched likelihood)."""
        post = self.posterior
        T, Phi = post.split(X)
        if not post.n_params:
            ll = post.log_likelihood_batch(T)
            if self.reference is None:
                return ll
            return ll + post.prior.log_pdf_rows(T) - self.reference.log_pdf_rows(T)
        ll = post.log_likelihood_batch(T, Phi)
        if self.reference is None:
            return ll
        lp = post.prior.log_pdf_rows(T) + post.params.log_density_rows(Phi)
        lr = self.reference.log_pdf_rows(T) + self.reference.params.log_pdf_rows(Phi)
        return ll + lp - lr


# ------------------------------------------------------------------------------ HMC
@dataclass
class Chain:
    """Draws of one HMC run (after warm-up)."""

    samples: np.ndarray  # (n, dim) log branch lengths
    log_density: np.ndarray  # (n,) log q_beta
    records: np.ndarray  # (n,) log L + log p - log r (log L for the power posterior)
    acceptance: float  # mean acceptance probability after warm-up
    step_size: float
    inv_mass: np.ndarray
    n_leapfrog: int
    divergences: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def last(self) -> np.ndarray:
        return self.samples[-1]

    def ess(self) -> float:
        """ESS of the recorded log ratio."""
        return effective_sample_size(self.records)

    def min_ess(self) -> float:
        """Smallest ESS over the log branch lengths."""
        return float(np.min(effective_sample_size(self.samples)))

    def diagnostics(self) -> dict:
        return {
            "acceptance": self.acceptance,
            "step_size": self.step_size,
            "n_leapfrog": self.n_leapfrog,
            "ess": self.ess(),
            "min_ess_branch": self.min_ess(),
            "divergences": self.divergences,
            "samples": int(self.samples.shape[0]),
        }


class DualAveraging:
    """Nesterov dual averaging of log step size (Hoffman & Gelman 2014, section 3.2)."""

    def __init__(self, step_size: float, target: float, gamma=0.05, t0=10.0, kappa=0.75):
        self.mu = math.log(10.0 * step_size)
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.t = 0
        self.hbar = 0.0
        self.log_bar = math.log(step_size)

    def update(self, accept: float) -> float:
        self.t += 1
        eta = 1.0 / (self.t + self.t0)
        self.hbar = (1 - eta) * self.hbar + eta * (self.target - accept)
        log_eps = self.mu - math.sqrt(self.t) / self.gamma * self.hbar
        w = self.t ** (-self.kappa)
        self.log_bar = w * log_eps + (1 - w) * self.log_bar
        return math.exp(log_eps)

    @property
    def final(self) -> float:
        return math.exp(self.log_bar)


class HMC:
    """Hamiltonian Monte Carlo with a diagonal mass matrix on an unconstrained target.

    ``target(x) -> (log density, gradient, record)``.
    """

    def __init__(
        self,
        target,
        rng: np.random.Generator,
        n_leapfrog: int = 10,
        step_size: float | None = None,
        inv_mass: np.ndarray | None = None,
        target_accept: float = 0.8,
        jitter: float = 0.1,
    ):
        self.target = target
        self.rng = rng
        self.n_leapfrog = int(n_leapfrog)
        self.step_size = step_size
        self.inv_mass = inv_mass
        self.target_accept = float(target_accept)
        self.jitter = float(jitter)
        self.divergences = 0
        self._state = None

    # state = (x, logp, grad, record)
    def start(self, x0: np.ndarray):
        x0 = np.array(x0, dtype=np.float64)
        lp, g, rec = self.target(x0)
        if not np.isfinite(lp):
            raise ValueError("the starting point has zero density")
        self._state = (x0, lp, g, rec)
        if self.inv_mass is None:
            self.inv_mass = np.ones_like(x0)
        if self.step_size is None:
            self.step_size = self._initial_step_size()

    def _leapfrog(self, x, p, g, eps, n):
        inv_mass = self.inv_mass
        p = p + 0.5 * eps * g
        lp = -np.inf
        rec = -np.inf
        for i in range(n):
            x = x + eps * inv_mass * p
            lp, g, rec = self.target(x)
            if not np.isfinite(lp):
                return x, p, g, lp, rec
            if i < n - 1:
                p = p + eps * g
        p = p + 0.5 * eps * g
        return x, p, g, lp, rec

    def _initial_step_size(self) -> float:
        """Double or halve a step until one leapfrog's acceptance crosses 1/2."""
        x, lp, g, _ = self._state
        eps = 0.1
        sd = np.sqrt(self.inv_mass)

        def accept(eps):
            p = self.rng.standard_normal(x.shape) / sd
            x1, p1, _, lp1, _ = self._leapfrog(x, p, g, eps, 1)
            if not np.isfinite(lp1):
                return 0.0
            h0 = lp - 0.5 * np.sum(self.inv_mass * p * p)
            h1 = lp1 - 0.5 * np.sum(self.inv_mass * p1 * p1)
            return math.exp(min(0.0, h1 - h0))

        direction = 1.0 if accept(eps) > 0.5 else -1.0
        for _ in range(60):
            new = eps * (2.0**direction)
            a = accept(new)
            if (direction > 0 and a < 0.5) or (direction < 0 and a > 0.5):
                return new if direction < 0 else eps
            eps = new
        return eps

    def step(self, eps: float | None = None):
        """One HMC transition; returns the acceptance probability."""
        x, lp, g, rec = self._state
        eps = self.step_size if eps is None else eps
        if self.jitter > 0:
            eps = eps * (1.0 + self.jitter * (2.0 * self.rng.random() - 1.0))
        p = self.rng.standard_normal(x.shape) / np.sqrt(self.inv_mass)
        h0 = lp - 0.5 * np.sum(self.inv_mass * p * p)
        x1, p1, g1, lp1, rec1 = self._leapfrog(x, p, g, eps, self.n_leapfrog)
        if np.isfinite(lp1):
            with np.errstate(over="ignore"):  # a momentum that overflows: a divergence
                h1 = lp1 - 0.5 * np.sum(self.inv_mass * p1 * p1)
            delta = h1 - h0
            if not np.isfinite(delta) or delta < -1000.0:
                self.divergences += 1
                a = 0.0
            else:
                a = math.exp(min(0.0, delta))
        else:
            self.divergences += 1
            a = 0.0
        if self.rng.random() < a:
            self._state = (x1, lp1, g1, rec1)
        return a

    @property
    def state(self):
        return self._state

    def warmup(self, n: int, adapt_mass: bool = True) -> None:
        """Tune the step size (and the diagonal mass matrix) over ``n`` iterations."""
        if n <= 0:
            return
        if adapt_mass and n >= 40:
            init = max(int(0.15 * n), 10)
            term = max(int(0.1 * n), 10)
            middle = n - init - term
            w1 = middle // 3
            windows = [("step", init), ("mass", w1), ("mass", middle - w1), ("step", term)]
        else:
            windows = [("step", n)]
        for kind, length in windows:
            da = DualAveraging(self.step_size, self.target_accept)
            draws = np.empty((length, self._state[0].shape[0])) if kind == "mass" else None
            for i in range(length):
                a = self.step()
                self.step_size = da.update(a)
                if draws is not None:
                    draws[i] = self._state[0]
            self.step_size = da.final
            if draws is not None and length >= 10:
                var = draws.var(axis=0)
                m = length
                self.inv_mass = (m / (m + 5.0)) * var + 1e-3 * (5.0 / (m + 5.0))
                self.step_size = self._initial_step_size()

    def sample(self, n: int, thin: int = 1) -> Chain:
        """``n`` draws (every ``thin``-th iteration) with the current tuning."""
        d = self._state[0].shape[0]
        X = np.empty((n, d))
        LP = np.empty(n)
        R = np.empty(n)
        acc = 0.0
        div0 = self.divergences
        for i in range(n):
            for _ in range(thin):
                acc += self.step()
            x, lp, _, rec = self._state
            X[i], LP[i], R[i] = x, lp, rec
        return Chain(
            X,
            LP,
            R,
            acc / max(n * thin, 1),
            float(self.step_size),
            self.inv_mass.copy(),
            self.n_leapfrog,
            self.divergences - div0,
        )


def sample_posterior(
    posterior,
    rng: np.random.Generator,
    samples: int = 2000,
    warmup: int = 1000,
    n_leapfrog: int = 10,
    thin: int = 1,
    beta: float = 1.0,
    reference=None,
    x0=None,
    target_accept: float = 0.8,
) -> Chain:
    """HMC draws from the posterior (or the power posterior ``beta``) on ``x = (log t, phi)``.

    Starts at ``posterior.start_x`` unless ``x0`` is given; ``warmup`` iterations tune the
    step size and a diagonal mass matrix and are discarded.
    """
    target = PowerTarget(posterior, beta, reference)
    sampler = HMC(target, rng, n_leapfrog=n_leapfrog, target_accept=target_accept)
    sampler.start(posterior.start_x if x0 is None else x0)
    sampler.warmup(warmup)
    chain = sampler.sample(samples, thin)
    chain.extra["warmup"] = warmup
    return chain


def power_posterior_chains(
    posterior,
    betas,
    rng: np.random.Generator,
    samples: int,
    burnin: int,
    warmup: int,
    n_leapfrog: int = 10,
    reference=None,
    pilot: Chain | None = None,
    target_accept: float = 0.8,
    need_top: bool = True,
) -> list:
    """Records of the power posteriors at increasing ``betas`` (first 0, last 1).

    The chains run from ``beta = 1`` down to 0, each warm-started from the last state, step
    size and mass matrix of the one above it (the mass matrix from the variance of that
    chain's draws); ``burnin`` iterations re-tune the step size at each temperature and are
    discarded.  At ``beta = 1`` a full ``warmup`` (step size and mass matrix) runs first, unless
    a ``pilot`` chain at ``beta = 1`` is given.  At ``beta = 0`` the draws are exact (from the
    prior or the reference).  Returns one dict per temperature, in the order of ``betas``,
    with ``beta``, ``records`` and, for MCMC temperatures, ``chain`` diagnostics.
    """
    betas = np.asarray(betas, dtype=np.float64)
    if betas[0] != 0.0 or betas[-1] != 1.0 or np.any(np.diff(betas) <= 0):
        raise ValueError("temperatures must increase from 0 to 1")
    out: list = [None] * len(betas)
    if pilot is None:
        target = PowerTarget(posterior, 1.0, reference)
        top = HMC(target, rng, n_leapfrog=n_leapfrog, target_accept=target_accept)
        top.start(posterior.start_x)
        top.warmup(warmup)
        if need_top:
            pilot = top.sample(samples)
            out[-1] = {"beta": 1.0, "records": pilot.records, "chain": pilot}
        else:
            pilot = top.sample(max(burnin, 50))
    else:
        if need_top:
            recs = (
                pilot.records
                if reference is None
                else PowerTarget(posterior, 1.0, reference).records(pilot.samples)
            )
            out[-1] = {"beta": 1.0, "records": recs, "chain": pilot}
    x = pilot.last
    step = pilot.step_size
    inv_mass = (
        np.maximum(pilot.samples.var(axis=0), 1e-8)
        if pilot.samples.shape[0] > 20
        else pilot.inv_mass
    )
    for k in range(len(betas) - 2, 0, -1):
        target = PowerTarget(posterior, float(betas[k]), reference)
        hmc = HMC(
            target,
            rng,
            n_leapfrog=n_leapfrog,
            step_size=step,
            inv_mass=inv_mass,
            target_accept=target_accept,
        )
        hmc.start(x)
        hmc.warmup(burnin, adapt_mass=False)
        chain = hmc.sample(samples)
        out[k] = {"beta": float(betas[k]), "records": chain.records, "chain": chain}
        x, step = chain.last, chain.step_size
        if samples > 20:
            inv_mass = np.maximum(chain.samples.var(axis=0), 1e-8)
    target = PowerTarget(posterior, 0.0, reference)
    X0 = target.sample_exact(rng, samples)
    out[0] = {"beta": 0.0, "records": target.records(X0), "chain": None}
    return out
