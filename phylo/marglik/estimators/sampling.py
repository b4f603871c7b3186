"""Estimators that sample without power posteriors: nested sampling and naive Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from . import Estimate, register


@register(
    "nmc",
    "other sampling",
    "naive Monte Carlo: the mean likelihood over draws from the prior",
    "samples likelihoods (batched)",
    samples=100_000,
    batch=10_000,
)
def nmc(posterior, rng, samples, batch):
    """``log mean_i L(t_i)``, ``t_i`` i.i.d. from the prior (free model parameters too), in
    batches of ``batch``; the standard error is the delta-method one,
    ``sd(w) / (mean(w) sqrt(n))`` with ``w = L / max L``.  Consistent, but the prior rarely
    reaches the likelihood's mass beyond a handful of taxa."""
    if samples < 1 or batch < 1:
        raise ValueError("samples and batch must be positive")
    parts = []
    left = samples
    while left > 0:
        m = min(batch, left)
        T = posterior.prior.sample(rng, (m, posterior.n_branches))
        if posterior.n_params:
            parts.append(posterior.log_likelihood_batch(T, posterior.params.sample(rng, m)))
        else:
            parts.append(posterior.log_likelihood_batch(T))
        left -= m
    ll = np.concatenate(parts)
    mx = ll.max()
    w = np.exp(ll - mx)
    mw = w.mean()
    se = float(w.std() / (mw * math.sqrt(ll.shape[0])))
    ess = float(w.sum() ** 2 / np.sum(w * w))
    return Estimate(
        mx + math.log(mw), se, diagnostics={"samples": int(samples), "importance_ess": ess}
    )


class _ConstrainedPrior:
    """Random-walk Metropolis on ``x = (log t, phi)`` for the prior restricted to
    ``log L > threshold``: Gaussian steps scaled per coordinate by the spread of the live
    points, the scale adapted towards an acceptance of about 1/2."""

    def __init__(self, posterior, rng):
        self.post = posterior
        self.rng = rng
        self.scale = 1.0
        self.accepted = 0
        self.proposed = 0

    def log_prior(self, x):
        return self.post.log_prior_x(x)

    def run(self, x, loglik, threshold, sd, length):
        lp = self.log_prior(x)
        acc = 0
        B = self.post.n_branches
        for _ in range(length):
            y = x + self.scale * sd * self.rng.standard_normal(x.shape[0])
            ty = np.exp(y[:B])
            if not np.all(np.isfinite(ty) & (ty > 0)):
                continue
            lpy = self.post.log_prior_x(y)
            if math.log(self.rng.random()) >= lpy - lp:
                continue
            lly = self.post.log_likelihood(ty, y[B:] if self.post.n_params else None)
            if lly > threshold:
                x, lp, loglik = y, lpy, lly
                acc += 1
        self.accepted += acc
        self.proposed += length
        rate = acc / max(length, 1)
        self.scale *= math.exp(rate - 0.5)  # gentle adaptation between runs
        self.scale = min(max(self.scale, 1e-3), 10.0)
        return x, loglik


@register(
    "ns",
    "other sampling",
    "nested sampling (Skilling 2006) with random-walk MCMC for the constrained prior",
    "iterations x length likelihoods",
    live=50,
    length=200,
    precision=1e-6,
    max_steps=100_000,
)
def ns(posterior, rng, live, length, precision, max_steps):
    """Nested sampling as physher runs it.

    ``live`` points start as exact prior draws.  At iteration i the worst point (likelihood
    L*) gets the weight ``log L* + log(1 - e^{-1/N}) - (i - 1)/N``; it is replaced by a copy
    of another live point chosen at random, moved by ``length`` Metropolis steps of the
    prior restricted to ``L > L*``.  Iterations stop when log Z moves by less than
    ``precision`` (or after ``max_steps``); the live points then add
    ``log mean L_live - i/N``.  The standard error is Skilling's ``sqrt(H / N)`` with the
    information ``H`` accumulated along the way.  Defaults: 50 live points (physher's N),
    200 steps per replacement.
    """
    N = int(live)
    if N < 2:
        raise ValueError("nested sampling needs at least two live points")
    X = posterior.sample_prior_x(rng, N)
    T, Phi = posterior.split(X)
    logL = (
        posterior.log_likelihood_batch(T, Phi)
        if posterior.n_params
        else (posterior.log_likelihood_batch(T))
    )
    logw = math.log(-math.expm1(-1.0 / N))
    logZ = -np.inf
    H = 0.0
    mover = _ConstrainedPrior(posterior, rng)
    i = 0
    for i in range(1, max_steps + 1):
        worst = int(np.argmin(logL))
        lstar = float(logL[worst])
        lw = lstar + logw - (i - 1.0) / N
        logZ_new = float(np.logaddexp(logZ, lw))
        # H = sum_j w_j L_j / Z log L_j - log Z, accumulated (Skilling 2006, section 9)
        H = (
            math.exp(lw - logZ_new) * lstar
            + (math.exp(logZ - logZ_new) * (H + logZ) if np.isfinite(logZ) else 0.0)
            - logZ_new
        )
        change = logZ_new - logZ
        logZ = logZ_new
        j = int(rng.integers(N - 1))
        if j >= worst:
            j += 1
        sd = X.std(axis=0)
        sd = np.where(sd > 0, sd, 1e-3)
        X[worst], logL[worst] = mover.run(X[j].copy(), float(logL[j]), lstar, sd, length)
        if abs(change) < precision:
            break
    final = float(logsumexp(logL) - math.log(N) - i / N)
    logZ = float(np.logaddexp(logZ, final))
    H = max(H, 0.0)
    return Estimate(
        logZ,
        math.sqrt(H / N),
        diagnostics={
            "iterations": i,
            "information": H,
            "acceptance": mover.accepted / max(mover.proposed, 1),
        },
    )
