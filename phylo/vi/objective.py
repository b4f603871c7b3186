r"""The target of variational phylogenetic inference, importance weights and lower bounds.

The unnormalised posterior over unrooted topologies :math:`\tau` and branch lengths
:math:`t` (JC69 or another model; i.i.d. branch-length prior, Exponential(10) by default;
uniform prior over the :math:`(2n-5)!!` unrooted topologies) is

.. math:: p(D, \tau, t) = p(D \mid \tau, t)\, \prod_e p(t_e)\, \frac{1}{(2n-5)!!}.

With :math:`K` particles :math:`(\tau_j, t_j) \sim Q_{\phi,\psi}` (:mod:`phylo.vi.family`)
and importance weights :math:`w_j = p(D, \tau_j, t_j) / Q(\tau_j, t_j)`, the multi-sample
lower bound (Burda et al. 2016; VBPI eq. 4) is

.. math:: L^K(\phi, \psi) = \mathbb E\Big[\log \frac1K \sum_{j=1}^K w_j\Big]
          \le \log p(D),

non-decreasing in :math:`K`; :math:`L^1` is the ELBO, and
:math:`\log \frac1K\sum_j w_j` for large :math:`K` is the importance-sampling estimate of
the marginal likelihood :math:`\log p(D)`.  Training uses VBPI's *annealed* weights, the
likelihood raised to a power :math:`\beta \le 1`:

.. math:: \log w_j^{(\beta)} = \beta \log p(D \mid \tau_j, t_j) + \log p(t_j)
          + \log p(\tau_j) - \log Q_\phi(\tau_j) - \log Q_\psi(t_j \mid \tau_j).

Branch lengths are drawn by reparameterisation, :math:`x = \log t = \mu + \sigma
\varepsilon` with :math:`\varepsilon \sim \mathcal N(0, I)`, so that

.. math:: \frac{\partial \log w^{(\beta)}}{\partial \mu_e} = g_e, \qquad
          \frac{\partial \log w^{(\beta)}}{\partial \log \sigma_e} = g_e \sigma_e
          \varepsilon_e + 1, \qquad
          g_e = t_e\Big(\beta \frac{\partial \log p(D\mid\tau,t)}{\partial t_e}
                + \frac{\partial \log p(t_e)}{\partial t_e}\Big) + 1,

(the last ``+ 1`` of :math:`g_e` is the Jacobian of :math:`t = e^x`; the ``+ 1`` of the
:math:`\log\sigma` derivative comes from :math:`-\log Q_\psi`), the likelihood gradient
coming from the compiled kernels (:class:`~phylo.likelihood.TopologyBatchLikelihood`,
one pass per particle, particles split between threads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..marglik.posterior import ExponentialPrior
from .branches import LOG_SQRT_2PI
from .family import TopologyDraws, VariationalFamily


def logsumexp(x, axis=None):
    """:math:`\\log \\sum \\exp x` along ``axis`` (plain numpy: this runs a few times per
    step, and SciPy's general version costs a hundred microseconds a call)."""
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return float(out.reshape(())) if axis is None else np.squeeze(out, axis=axis)


class NonFiniteError(ModelError):
    """A particle's branch lengths or weight is not finite (the optimisation diverged)."""


def log_topology_prior(n_taxa: int) -> float:
    """:math:`-\\log (2n-5)!!`, the uniform prior over unrooted binary topologies."""
    return -float(np.log(np.arange(3, 2 * n_taxa - 4, 2, dtype=float)).sum())


class Target:
    """The unnormalised posterior :math:`p(D, \\tau, t)`.

    Parameters
    ----------
    likelihood : phylo.likelihood.TopologyBatchLikelihood
        The alignment, substitution model and taxa.
    prior : optional
        I.i.d. branch-length prior with ``log_pdf_rows`` and ``grad_log_pdf``
        (:class:`phylo.marglik.posterior.ExponentialPrior` or ``GammaPrior``); default
        Exponential(10).
    """

    def __init__(self, likelihood, prior=None):
        self.likelihood = likelihood
        self.prior = prior if prior is not None else ExponentialPrior(10.0)
        self.n_taxa = likelihood.n_taxa
        self.log_topology_prior = log_topology_prior(self.n_taxa)

    @property
    def n_evaluations(self) -> int:
        return self.likelihood.n_evaluations


@dataclass
class Particles:
    """``K`` draws :math:`(\\tau_j, t_j)` from the family with everything the bounds and
    gradients need.  ``x = log t``; ``d_loglik`` and ``d_logprior`` are derivatives with
    respect to ``x`` (``None`` when drawn without gradients)."""

    topologies: TopologyDraws
    eps: np.ndarray
    sigma: np.ndarray
    x: np.ndarray
    log_q_branch: np.ndarray
    log_likelihood: np.ndarray
    log_prior: np.ndarray
    d_loglik: np.ndarray | None
    d_logprior: np.ndarray | None

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def log_q(self) -> np.ndarray:
        """:math:`\\log Q(\\tau_j, t_j)` (density of the log branch lengths)."""
        return self.topologies.log_q + self.log_q_branch

    def log_weights(self, beta: float = 1.0) -> np.ndarray:
        """:math:`\\log w_j^{(\\beta)}`."""
        return beta * self.log_likelihood + self.log_prior - self.log_q

    def weight_gradients(self, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """``(d log w / d mu, d log w / d log sigma)`` of every particle and branch."""
        if self.d_loglik is None:
            raise ModelError("the particles were drawn without gradients")
        g = beta * self.d_loglik + self.d_logprior
        return g, g * self.sigma * self.eps + 1.0


def draw_particles(
    family: VariationalFamily,
    target: Target,
    k: int,
    rng: np.random.Generator,
    gradient: bool = True,
    topologies: TopologyDraws | None = None,
) -> Particles:
    """``k`` particles: topologies from :math:`Q_\\phi` (or the given ones) and branch
    lengths from :math:`Q_\\psi(\\cdot \\mid \\tau)`, with log-likelihoods (and their
    gradients).  A :class:`NonFiniteError` when a branch length or density is not finite."""
    draws = topologies if topologies is not None else family.draw_topologies(k, rng)
    mu, log_sigma = family.branches.moments(draws.index)
    eps = rng.standard_normal(mu.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        sigma = np.exp(log_sigma)
        x = mu + sigma * eps
        t = np.exp(x)
    if not (np.isfinite(x).all() and np.isfinite(t).all() and np.isfinite(sigma).all()):
        raise NonFiniteError("a drawn branch length is not finite")
    log_q_branch = -(LOG_SQRT_2PI + log_sigma + 0.5 * eps * eps).sum(axis=1)
    lik = target.likelihood
    if gradient:
        ll, gl = lik.gradient_batch(draws.parents, t)
        d_loglik = gl * t
        with np.errstate(divide="ignore", invalid="ignore"):
            d_logprior = target.prior.grad_log_pdf(t) * t + 1.0
    else:
        ll = lik.log_likelihood_batch(draws.parents, t)
        d_loglik = d_logprior = None
    with np.errstate(divide="ignore", invalid="ignore"):
        log_prior = target.prior.log_pdf_rows(t) + x.sum(axis=1) + target.log_topology_prior
    parts = Particles(draws, eps, sigma, x, log_q_branch, ll, log_prior, d_loglik, d_logprior)
    w = parts.log_weights()
    if not np.isfinite(w).all() or (gradient and not np.isfinite(d_loglik + d_logprior).all()):
        raise NonFiniteError("an importance weight or its gradient is not finite")
    return parts


@dataclass
class Evaluation:
    """Lower bounds and the marginal likelihood estimated from ``repeats`` independent
    batches of ``particles`` draws each (mean and standard deviation over the batches).

    ``elbo``: mean of :math:`\\log w` over a batch (:math:`L^1`); ``bound_k``: mean over
    the batch's groups of ``k`` of :math:`\\log \\frac1k\\sum w` (:math:`L^k`);
    ``log_ml``: :math:`\\log` of the batch's mean weight (importance sampling with
    ``particles`` particles).
    """

    k: int
    particles: int
    repeats: int
    elbo: np.ndarray
    bound_k: np.ndarray
    log_ml: np.ndarray

    def summary(self) -> dict:
        def ms(a):
            a = np.asarray(a, dtype=float)
            sd = float(a.std(ddof=1)) if a.size > 1 else math.nan
            return float(a.mean()), sd

        out = {"particles": self.particles, "repeats": self.repeats, "k": self.k}
        for name, vals in (("elbo", self.elbo), (f"bound_{self.k}", self.bound_k)):
            out[name], out[name + "_sd"] = ms(vals)
        out["log_ml"], out["log_ml_sd"] = ms(self.log_ml)
        return out


def log_weights_sample(
    family: VariationalFamily,
    target: Target,
    n: int,
    rng: np.random.Generator,
    batch: int = 500,
) -> np.ndarray:
    """``n`` independent importance log-weights :math:`\\log w` (at :math:`\\beta = 1`),
    drawn ``batch`` at a time without gradients."""
    out = np.empty(int(n))
    done = 0
    while done < n:
        m = min(batch, n - done)
        out[done : done + m] = draw_particles(family, target, m, rng, gradient=False).log_weights()
        done += m
    return out


def evaluate(
    family: VariationalFamily,
    target: Target,
    rng: np.random.Generator,
    particles: int = 1000,
    repeats: int = 10,
    k: int = 10,
) -> Evaluation:
    """The ELBO, :math:`L^k` and the importance-sampling marginal likelihood, each from
    ``repeats`` batches of ``particles`` draws (the three use the same draws: the ELBO
    averages :math:`\\log w`, :math:`L^k` groups the batch into ``particles // k`` sets
    of ``k``, the marginal likelihood is :math:`\\log \\frac{1}{n}\\sum w`)."""
    if particles % k:
        raise ModelError(f"particles ({particles}) must be a multiple of k ({k})")
    elbo, bound, ml = [], [], []
    for _ in range(int(repeats)):
        lw = log_weights_sample(family, target, particles, rng)
        elbo.append(lw.mean())
        bound.append((logsumexp(lw.reshape(-1, k), axis=1) - math.log(k)).mean())
        ml.append(logsumexp(lw) - math.log(particles))
    return Evaluation(k, particles, repeats, np.array(elbo), np.array(bound), np.array(ml))
