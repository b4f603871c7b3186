"""The posterior over the branch lengths of one fixed unrooted topology.

    p(t | D, tau)  ∝  L(t)^beta  prod_i p(t_i)

``t`` holds the ``2n - 3`` branch lengths in :class:`~phylo.likelihood.TreeLikelihood`'s
order (branch ``i`` is the edge above node ``i``).  Samplers and optimisers mostly work on
``x = log t``, where the density gains the Jacobian ``prod_i t_i``:

    log q_beta(x) = beta * log L(e^x) + sum_i [log p(e^{x_i}) + x_i].

``beta`` is the power of a power posterior (1 for the posterior, 0 for the prior).
:meth:`Posterior.log_density_batch` evaluates it for many ``x`` at once; the samplers'
single-point density with its gradient (and a reference density in place of the prior at
``beta = 0``) is :class:`phylo.marglik.mcmc.PowerTarget`.  Every
likelihood evaluation is counted in :attr:`Posterior.n_evaluations` (one gradient counts
as one evaluation; a batch of B vectors counts as B).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..errors import InputError


class ExponentialPrior:
    """I.i.d. Exponential(rate) branch lengths (the paper's prior: rate 10)."""

    def __init__(self, rate: float = 10.0):
        if not rate > 0:
            raise InputError(f"the exponential prior needs a positive rate, not {rate!r}")
        self.rate = float(rate)

    def log_pdf(self, t: np.ndarray) -> float:
        return float(t.size * math.log(self.rate) - self.rate * np.sum(t))

    def log_pdf_rows(self, T: np.ndarray) -> np.ndarray:
        return T.shape[-1] * math.log(self.rate) - self.rate * T.sum(axis=-1)

    def grad_log_pdf(self, t: np.ndarray) -> np.ndarray:
        return np.full_like(t, -self.rate)

    def sample(self, rng: np.random.Generator, shape) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, size=shape)

    def describe(self) -> str:
        return f"Exponential(rate={self.rate:g})"

    def to_dict(self) -> dict:
        return {"distribution": "exponential", "rate": self.rate}


class GammaPrior:
    """I.i.d. Gamma(shape, rate) branch lengths."""

    def __init__(self, shape: float, rate: float):
        if not (shape > 0 and rate > 0):
            raise InputError(
                f"the gamma prior needs positive shape and rate, not {shape!r}, {rate!r}"
            )
        self.shape, self.rate = float(shape), float(rate)
        self._c = self.shape * math.log(self.rate) - special.gammaln(self.shape)

    def log_pdf(self, t: np.ndarray) -> float:
        with np.errstate(divide="ignore"):
            return float(
                t.size * self._c + (self.shape - 1) * np.sum(np.log(t)) - self.rate * np.sum(t)
            )

    def log_pdf_rows(self, T: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return (
                T.shape[-1] * self._c
                + (self.shape - 1) * np.log(T).sum(axis=-1)
                - self.rate * T.sum(axis=-1)
            )

    def grad_log_pdf(self, t: np.ndarray) -> np.ndarray:
        return (self.shape - 1) / t - self.rate

    def sample(self, rng: np.random.Generator, shape) -> np.ndarray:
        return rng.gamma(self.shape, 1.0 / self.rate, size=shape)

    def describe(self) -> str:
        return f"Gamma(shape={self.shape:g}, rate={self.rate:g})"

    def to_dict(self) -> dict:
        return {"distribution": "gamma", "shape": self.shape, "rate": self.rate}


def parse_prior(text: str | None):
    """``exp:RATE`` / ``exponential:RATE`` or ``gamma:SHAPE,RATE``; default Exponential(10)."""
    if text is None or text == "":
        return ExponentialPrior(10.0)
    name, _, args = text.partition(":")
    name = name.strip().lower()
    try:
        vals = [float(a) for a in args.split(",")] if args else []
    except ValueError:
        vals = None
    if name in ("exp", "exponential") and vals is not None and len(vals) <= 1:
        return ExponentialPrior(vals[0] if vals else 10.0)
    if name == "gamma" and vals is not None and len(vals) == 2:
        return GammaPrior(*vals)
    raise InputError(f"unknown branch-length prior {text!r}: expected exp:RATE or gamma:SHAPE,RATE")


class Posterior:
    """Posterior over the branch lengths of a fixed topology.

    Parameters
    ----------
    alignment : phylo.likelihood.Alignment
    tree : phylo.trees.Tree
        An unrooted binary topology (its branch lengths, if any, are only a starting
        point: :attr:`start`; without them the start is fitted to pairwise distances).
    model : phylo.likelihood.Model, optional
        Default JC69.
    prior : ExponentialPrior or GammaPrior, optional
        Default i.i.d. Exponential(10).
    """

    def __init__(
        self,
        alignment,
        tree,
        model=None,
        prior=None,
        threads: int = 1,
        batch_threads: int | None = None,
    ):
        from ..likelihood import JC69, TreeLikelihood

        if getattr(tree, "rooted", False):
            tree = tree.unrooted()
        parent = np.asarray(tree.parent)
        n = len(tree.taxa)
        counts = np.bincount(parent[parent >= 0], minlength=parent.shape[0])
        internal = counts[n:]
        if parent.shape[0] != 2 * n - 2 or not (np.all(internal[:-1] == 2) and internal[-1] == 3):
            raise InputError(
                "the topology must be unrooted and binary (every internal node "
                "with three neighbours)"
            )
        self.tree = tree
        self.model = model if model is not None else JC69()
        self.prior = prior if prior is not None else ExponentialPrior(10.0)
        self.likelihood = TreeLikelihood(
            alignment, tree, self.model, threads=threads, batch_threads=batch_threads
        )
        self.dim = self.likelihood.n_branches
        self.n_sites = int(self.likelihood.pattern_weights.sum())
        self.n_evaluations = 0
        bl = getattr(tree, "branch_lengths", None)
        #: Branches whose given starting length was replaced (see :attr:`start`).
        self.replaced_start = np.empty(0, dtype=np.int64)
        if bl is not None:
            start = np.array(bl[: self.dim], dtype=np.float64)
            bad = np.flatnonzero(~(np.isfinite(start) & (start > 0)))
            if bad.size:
                from .optimize import distance_start

                start[bad] = distance_start(self)[bad]
                self.replaced_start = bad
            self._start = start
        else:
            self._start = None  # found on first use (see start)

    @property
    def start(self) -> np.ndarray:
        """Starting branch lengths for samplers: the tree's own lengths when it has them,
        else a least-squares fit to the JC69 distances between the sequences on this
        topology (:func:`phylo.marglik.optimize.distance_start`).  Topologies drawn from a
        tree distribution have no lengths; a fixed guess such as 0.1 per branch can be far
        from where the posterior lies (on DS1 most branches are 0.001-0.05).

        One rule for given lengths that cannot start a sampler on the log scale: a length
        that is zero, negative, NaN or infinite (zero lengths are common in ML trees, and
        ``1e-400`` reads as zero) is replaced by that branch's value of the distance fit;
        :attr:`replaced_start` lists those branches, and the command line says so, naming
        the file and the tree (:func:`phylo.marglik.compare.start_notes`)."""
        if self._start is None:
            from .optimize import distance_start

            self._start = distance_start(self)
        return self._start

    @start.setter
    def start(self, value) -> None:
        self._start = np.asarray(value, dtype=np.float64)

    # ---------------------------------------------------------------- branch lengths
    def log_likelihood(self, t) -> float:
        self.n_evaluations += 1
        return self.likelihood.log_likelihood(t)

    def log_likelihood_and_gradient(self, t):
        self.n_evaluations += 1
        return self.likelihood.gradient(t)

    def log_likelihood_batch(self, T) -> np.ndarray:
        T = np.asarray(T, dtype=np.float64)
        self.n_evaluations += T.shape[0]
        return self.likelihood.log_likelihood_batch(T)

    def site_log_likelihoods(self, t) -> np.ndarray:
        """Per-column log-likelihoods (for CPO and PPD)."""
        self.n_evaluations += 1
        return self.likelihood.site_log_likelihoods(t)

    def pattern_log_likelihoods(self, t) -> np.ndarray:
        self.n_evaluations += 1
        return self.likelihood.pattern_log_likelihoods(t)

    @property
    def pattern_weights(self) -> np.ndarray:
        return self.likelihood.pattern_weights

    def log_prior(self, t) -> float:
        return self.prior.log_pdf(np.asarray(t, dtype=np.float64))

    def log_density_batch(self, X, beta: float = 1.0) -> np.ndarray:
        """log q_beta for each row of X (log branch lengths)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        with np.errstate(over="ignore"):
            T = np.exp(X)
        ok = np.all(np.isfinite(T) & (T > 0), axis=1)
        out = np.full(X.shape[0], -np.inf)
        if ok.any():
            Tk = T[ok]
            lp = self.prior.log_pdf_rows(Tk) + X[ok].sum(axis=1)
            ll = self.log_likelihood_batch(Tk) if beta != 0.0 else 0.0
            out[ok] = beta * ll + lp
        return out

    def __repr__(self):
        return f"Posterior({self.likelihood!r}, prior {self.prior.describe()}, {self.dim} branches)"
