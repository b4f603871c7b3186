"""The posterior over the branch lengths (and the free model parameters) of one fixed
unrooted topology.

    p(t, theta | D, tau)  ∝  L(t, theta)^beta  prod_i p(t_i)  p(theta)

``t`` holds the ``2n - 3`` branch lengths in :class:`~phylo.likelihood.TreeLikelihood`'s
order (branch ``i`` is the edge above node ``i``); ``theta`` the substitution model's
parameters that are not fixed (:mod:`phylo.marglik.parameters`: exchangeabilities, base
frequencies, kappa, Gamma shape, invariant sites), each with its prior.  Samplers and
optimisers work on one vector ``x = (log t, phi)``, ``phi`` the model's parameters mapped to
the real line, where the density gains the Jacobians ``prod_i t_i`` and ``|d theta / d phi|``:

    log q_beta(x) = beta * log L(e^x_t, theta(phi)) + sum_i [log p(e^{x_i}) + x_i]
                    + log p(theta(phi)) + log |d theta / d phi|.

Without free parameters (JC69, or every parameter fixed) ``x = log t``, as before.
``beta`` is the power of a power posterior (1 for the posterior, 0 for the prior).
:meth:`Posterior.log_density_batch` evaluates it for many ``x`` at once; the samplers'
single-point density with its gradient (and a reference density in place of the prior at
``beta = 0``) is :class:`phylo.marglik.mcmc.PowerTarget`.  Every
likelihood evaluation is counted in :attr:`Posterior.n_evaluations` (one gradient counts
as one evaluation; a batch of B vectors counts as B).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

# the branch-length priors live in .priors; imported here, where they have always been found
from .priors import ExponentialPrior, GammaPrior, parse_prior  # noqa: E402, F401


class Posterior:
    """Posterior over the branch lengths, and the free model parameters, of a fixed topology.

    Parameters
    ----------
    alignment : phylo.likelihood.Alignment
    tree : phylo.trees.Tree
        An unrooted binary topology (its branch lengths, if any, are only a starting
        point: :attr:`start`; without them the start is fitted to pairwise distances).
    model : phylo.likelihood.Model or phylo.marglik.parameters.ModelPrior, optional
        A model with every parameter fixed, or a model with priors on its free parameters
        (:func:`phylo.marglik.parameters.model_prior`, which also carries a branch-length
        prior).  Default JC69.
    prior : ExponentialPrior or GammaPrior, optional
        The i.i.d. branch-length prior; default the ``ModelPrior``'s, else
        Exponential(10).

    Attributes
    ----------
    n_branches, n_params, dim
        Branch lengths, free model coordinates, and their sum (the length of ``x``).
    params : ModelPrior or None
        The free parameters (None when there are none).
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
        from .parameters import ModelPrior

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
        self.params = None
        if isinstance(model, ModelPrior):
            if prior is None:
                prior = model.branch_prior
            model = model.resolved(alignment)
            self.params = model if model.n else None
            model = model.base
        self.model = model if model is not None else JC69()
        self.prior = prior if prior is not None else ExponentialPrior(10.0)
        self.likelihood = TreeLikelihood(
            alignment, tree, self.model, threads=threads, batch_threads=batch_threads
        )
        self.n_branches = self.likelihood.n_branches
        self.n_params = 0 if self.params is None else self.params.n
        self.dim = self.n_branches + self.n_params
        self.n_sites = int(self.likelihood.pattern_weights.sum())
        self.n_evaluations = 0
        self._gradient_pass = None
        self.start_params = (
            np.zeros(0) if self.params is None else self.params.start(self.likelihood.alignment)
        )
        bl = getattr(tree, "branch_lengths", None)
        #: Branches whose given starting length was replaced (see :attr:`start`).
        self.replaced_start = np.empty(0, dtype=np.int64)
        if bl is not None:
            start = np.array(bl[: self.n_branches], dtype=np.float64)
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

    # ---------------------------------------------------------------- the vector x
    @property
    def start_x(self) -> np.ndarray:
        """The samplers' starting point: ``log start`` and the model's starting values."""
        return np.concatenate([np.log(self.start), self.start_params])

    def split(self, x):
        """``(t, phi)`` of a vector (or rows of a matrix) ``x = (log t, phi)``."""
        x = np.asarray(x, dtype=np.float64)
        B = self.n_branches
        with np.errstate(over="ignore"):
            return np.exp(x[..., :B]), x[..., B:]

    def model_at(self, phi):
        """The substitution model at the free parameters ``phi`` (the fixed model without)."""
        if self.params is None:
            return self.model
        return self.params.model(phi)

    def _set_params(self, phi) -> bool:
        """Evaluate the likelihood at the free parameters ``phi`` from now on; False when
        ``phi`` gives no model (see :meth:`ModelPrior.valid`)."""
        if self.params is not None:
            if phi is None:
                raise ValueError("the posterior has free model parameters: give phi")
            if not self.params.valid(phi):
                return False
            self.likelihood.set_model(self.params.model(phi))
        return True

    # ---------------------------------------------------------------- likelihoods
    def log_likelihood(self, t, phi=None) -> float:
        self.n_evaluations += 1
        if not self._set_params(phi):
            return -np.inf
        return self.likelihood.log_likelihood(t)

    def log_likelihood_and_gradient(self, t):
        """``(log L, d log L / dt)`` (no free model parameters; see :meth:`joint_gradient`)."""
        self.n_evaluations += 1
        return self.likelihood.gradient(t)

    def joint_gradient(self, t, phi=None):
        """``(log L, d log L / dt, d log L / dphi)`` at branch lengths ``t`` and free
        parameters ``phi``: the branch gradient alone without free parameters, else one
        pass of :class:`phylo.likelihood.parameter_gradient.ParameterGradient` and the chain
        rule through :class:`~phylo.marglik.parameters.ModelPrior`."""
        if self.params is None:
            ll, g = self.log_likelihood_and_gradient(t)
            return ll, g, np.zeros(0)
        from ..likelihood.parameter_gradient import ParameterGradient

        if self._gradient_pass is None:
            self._gradient_pass = ParameterGradient(self.likelihood)
        self.n_evaluations += 1
        phi = np.asarray(phi, dtype=np.float64)
        if not self.params.valid(phi):
            return -np.inf, np.zeros_like(np.asarray(t, dtype=np.float64)), np.zeros_like(phi)
        ll, gt, dm = self._gradient_pass(t, self.params.model(phi))
        return ll, gt, self.params.chain(phi, dm)

    def log_likelihood_batch(self, T, Phi=None) -> np.ndarray:
        """log L of each row of ``T`` (with the free parameters of each row of ``Phi``)."""
        T = np.asarray(T, dtype=np.float64)
        self.n_evaluations += T.shape[0]
        if self.params is None:
            return self.likelihood.log_likelihood_batch(T)
        if Phi is None:
            raise ValueError("the posterior has free model parameters: give Phi")
        Phi = np.atleast_2d(np.asarray(Phi, dtype=np.float64))
        if Phi.shape[0] == 1 and T.shape[0] > 1:
            Phi = np.repeat(Phi, T.shape[0], axis=0)
        ok = self.params.valid_rows(Phi)
        out = np.full(T.shape[0], -np.inf)
        if ok.any():
            arrays = self.likelihood.model_vectors(self.params.model_rows(Phi[ok]))
            out[ok] = self.likelihood.log_likelihood_models(T[ok], arrays)
        return out

    def site_log_likelihoods(self, t, phi=None) -> np.ndarray:
        """Per-column log-likelihoods (for CPO and PPD)."""
        self.n_evaluations += 1
        if not self._set_params(phi):
            return np.full(self.n_sites, -np.inf)
        return self.likelihood.site_log_likelihoods(t)

    def pattern_log_likelihoods(self, t, phi=None) -> np.ndarray:
        self.n_evaluations += 1
        if not self._set_params(phi):
            return np.full(self.likelihood.n_patterns, -np.inf)
        return self.likelihood.pattern_log_likelihoods(t)

    @property
    def pattern_weights(self) -> np.ndarray:
        return self.likelihood.pattern_weights

    # ---------------------------------------------------------------- priors
    def log_prior(self, t) -> float:
        return self.prior.log_pdf(np.asarray(t, dtype=np.float64))

    def log_prior_params(self, phi) -> float:
        """Prior density of the free parameters' vector ``phi`` (with its Jacobian)."""
        return 0.0 if self.params is None else self.params.log_density(phi)

    def log_prior_x(self, x) -> float:
        """Prior density of ``x = (log t, phi)``: branch prior with the Jacobian of the log,
        and the model's."""
        x = np.asarray(x, dtype=np.float64)
        t, phi = self.split(x)
        out = self.prior.log_pdf(t) + float(np.sum(x[: self.n_branches]))
        if self.params is not None:
            out += self.params.log_density(phi)
        return float(out)

    def sample_prior_x(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` exact draws of ``x`` from the prior: (n, dim)."""
        with np.errstate(divide="ignore"):
            X = np.log(self.prior.sample(rng, (n, self.n_branches)))
        if self.params is None:
            return X
        return np.concatenate([X, self.params.sample(rng, n)], axis=1)

    # ---------------------------------------------------------------- densities
    def log_density_batch(self, X, beta: float = 1.0) -> np.ndarray:
        """log q_beta for each row of X (``x = (log t, phi)``)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        B = self.n_branches
        with np.errstate(over="ignore"):
            T = np.exp(X[:, :B])
        ok = np.all(np.isfinite(T) & (T > 0), axis=1)
        out = np.full(X.shape[0], -np.inf)
        if ok.any():
            Tk = T[ok]
            lp = self.prior.log_pdf_rows(Tk) + X[ok][:, :B].sum(axis=1)
            if self.params is not None:
                Phi = X[ok][:, B:]
                lp = lp + self.params.log_density_rows(Phi)
                ll = self.log_likelihood_batch(Tk, Phi) if beta != 0.0 else 0.0
            else:
                ll = self.log_likelihood_batch(Tk) if beta != 0.0 else 0.0
            out[ok] = beta * ll + lp
        return out

    def log_density_and_gradient(self, x, beta: float = 1.0):
        """``(log q_beta(x), its gradient, log L)`` at one ``x``."""
        x = np.asarray(x, dtype=np.float64)
        t, phi = self.split(x)
        B = self.n_branches
        if not (np.all(np.isfinite(t)) and np.all(t > 0)):
            return -np.inf, np.zeros_like(x), -np.inf
        ll, gl, gphi = self.joint_gradient(t, phi)
        if not np.isfinite(ll):
            return -np.inf, np.zeros_like(x), -np.inf
        lp = self.prior.log_pdf(t)
        gp = self.prior.grad_log_pdf(t)
        value = beta * ll + lp + float(np.sum(x[:B]))
        grad_t = (beta * gl + gp) * t + 1.0
        if self.params is None:
            return value, grad_t, ll
        value += self.params.log_density(phi)
        grad_phi = beta * gphi + self.params.grad_log_density(phi)
        return value, np.concatenate([grad_t, grad_phi]), ll

    def describe(self) -> str:
        if self.params is not None:
            return self.params.describe()
        return f"{self.model.describe()}; branch lengths ~ {self.prior.describe()}"

    def __repr__(self):
        return (
            f"Posterior({self.likelihood!r}, prior {self.prior.describe()}, "
            f"{self.n_branches} branches, {self.n_params} model coordinates)"
        )
