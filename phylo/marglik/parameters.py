"""Priors on the substitution model's parameters, and the unconstrained space they are
sampled in.

A marginal likelihood integrates the likelihood over every parameter that is not fixed:

.. math:: p(D \\mid \\tau) = \\int\\!\\!\\int L(t, \\theta)\\, p(t)\\, p(\\theta)\\,
          dt\\, d\\theta,

with i.i.d. branch-length priors :math:`p(t)` and independent priors on the model's
parameters :math:`\\theta`: the GTR exchangeabilities (a simplex of six), the base
frequencies (a simplex of four), K80/HKY's transition/transversion rate ratio
:math:`\\kappa`, the Gamma shape :math:`\\alpha` of the site rates and the proportion of
invariant sites :math:`p_{inv}`.

**Defaults: MrBayes's** (3.2.7, ``help prset``; ``LogPrior`` and the moves in its
source):

=================  ===========  ===================================================
parameter          name         default prior
=================  ===========  ===================================================
exchangeabilities  ``rates``    Dirichlet(1,1,1,1,1,1) (MrBayes ``revmatpr``)
base frequencies   ``freqs``    Dirichlet(1,1,1,1) (``statefreqpr``)
kappa              ``kappa``    Beta(1,1) on :math:`\\kappa / (1 + \\kappa)` (``tratiopr``)
Gamma shape        ``shape``    Exponential(1) (``shapepr``)
invariant sites    ``pinv``     Uniform(0,1) (``pinvarpr``)
branch lengths     ``brlens``   Exponential(10) (MrBayes's default is ``gammadir``)
=================  ===========  ===================================================

**Kappa.**  MrBayes's ``tratiopr = beta(a, b)`` is a prior on the transition/transversion
*rate* ratio :math:`\\kappa` (the :math:`\\kappa` of :mod:`phylo.likelihood.models`): it
computes the Beta density of the proportion :math:`x = \\kappa / (1 + \\kappa)` (``LogPrior``
converts "from the ratio parameterization ... to the simplex parameterization used for the
prior") and its only move on :math:`\\kappa` proposes :math:`x` from a Dirichlet and
takes the proposal ratio in :math:`x`, so the chain's prior is Beta(a, b) on :math:`x`
with respect to :math:`dx`.  On :math:`\\kappa` itself that is the beta-prime density

.. math:: p(\\kappa) = \\frac{\\kappa^{a-1} (1 + \\kappa)^{-a-b}}{B(a, b)},

which for the default Beta(1,1) is :math:`(1 + \\kappa)^{-2}`: median 1, as much mass
below 1 as above, no mean.  ``--prior kappa=beta:A,B`` means exactly this; other priors on
:math:`\\kappa` (``exp``, ``gamma``, ``lognormal``, ``uniform``) are densities of
:math:`\\kappa` itself.

**The ``--prior`` grammar** (one option per parameter, repeatable)::

    --prior NAME=DIST:ARGS        NAME: brlens kappa rates freqs shape pinv
    --prior exp:10                (no NAME: the branch-length prior, as before)

with ``DIST:ARGS`` one of ``exp:RATE``, ``gamma:SHAPE,RATE``, ``lognormal:MU,SIGMA``
(of log x), ``uniform:LOW,HIGH``, ``beta:A,B``, ``dirichlet:A1,...,AK`` (or one number
for all), and ``fixed:VALUE`` (``fixed:equal`` / ``fixed:empirical`` or four numbers for
``freqs``, six numbers for ``rates``).  MrBayes's names are accepted too: ``tratio``,
``revmat``, ``statefreq``, ``alpha``, ``pinvar``.  Which distributions a parameter takes:
``brlens`` exp, gamma; ``kappa`` beta (on kappa/(1+kappa)), exp, gamma, lognormal,
uniform; ``shape`` exp, gamma, lognormal, uniform; ``pinv`` uniform (within [0, 1]), beta;
``rates`` and ``freqs`` dirichlet.  A value given with the model's own options (``--kappa``,
``--rates``, ``--frequencies`` or ``+F``, ``--gamma-shape``, ``--pinv``) fixes the
parameter as before; a parameter neither fixed nor given a prior takes the default above.
Errors (each one line): a parameter the model does not have, an improper prior (a rate,
shape or Dirichlet weight that is not positive, an infinite or empty interval), a fixed
value outside the parameter's range, the same parameter given twice.

**The unconstrained space.**  Samplers and optimisers see one vector
:math:`x = (\\log t, \\varphi)`: log branch lengths, then the model's free parameters
mapped to the real line, in the order rates, freqs, kappa, shape, pinv:

* a positive parameter (support :math:`(l, \\infty)`): :math:`\\theta = l + e^{\\varphi}`,
  :math:`\\log |d\\theta / d\\varphi| = \\varphi`;
* a parameter on an interval :math:`(l, h)` (``pinv``; a uniform prior on any parameter):
  :math:`\\theta = l + (h - l) \\sigma(\\varphi)`, :math:`\\log |J| = \\log(h - l) +
  \\log \\sigma(\\varphi) + \\log \\sigma(-\\varphi)`;
* a simplex of :math:`D` parts: the isometric log-ratio map
  :math:`\\pi = \\mathrm{softmax}(H \\varphi)`, :math:`H` the :math:`D \\times (D - 1)`
  Helmert basis of the vectors summing to zero (orthonormal columns), with
  :math:`\\log |J| = \\sum_i \\log \\pi_i + \\tfrac12 \\log D` for the density of the
  first :math:`D - 1` parts (the measure the Dirichlet density is written in).

The density of :math:`\\varphi` is the prior's at :math:`\\theta(\\varphi)` times the
Jacobian; :class:`ModelPrior` gives it, its gradient, exact draws, the model at
:math:`\\varphi` and the chain rule from the likelihood's derivatives
(:mod:`phylo.likelihood.parameter_gradient`).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from ..errors import InputError

__all__ = [
    "PARAMETERS",
    "DEFAULT_PRIORS",
    "ModelPrior",
    "model_prior",
    "parse_prior_options",
    "helmert",
]

#: The parameters a prior can be put on, in the order of the unconstrained vector (after
#: the branch lengths).
PARAMETERS = ("brlens", "rates", "freqs", "kappa", "shape", "pinv")
ALIASES = {
    "brlen": "brlens",
    "branches": "brlens",
    "branch-lengths": "brlens",
    "brlenspr": "brlens",
    "revmat": "rates",
    "revmatpr": "rates",
    "exchangeabilities": "rates",
    "statefreq": "freqs",
    "statefreqs": "freqs",
    "statefreqpr": "freqs",
    "frequencies": "freqs",
    "tratio": "kappa",
    "tratiopr": "kappa",
    "alpha": "shape",
    "shapepr": "shape",
    "gamma-shape": "shape",
    "pinvar": "pinv",
    "pinvarpr": "pinv",
}
#: MrBayes's defaults (branch lengths: Exponential(10), the benchmark's prior).
DEFAULT_PRIORS = {
    "brlens": "exp:10",
    "rates": "dirichlet:1,1,1,1,1,1",
    "freqs": "dirichlet:1,1,1,1",
    "kappa": "beta:1,1",
    "shape": "exp:1",
    "pinv": "uniform:0,1",
}
#: Distributions each parameter takes.
ALLOWED = {
    "brlens": ("exp", "gamma"),
    "rates": ("dirichlet",),
    "freqs": ("dirichlet",),
    "kappa": ("beta", "exp", "gamma", "lognormal", "uniform"),
    "shape": ("exp", "gamma", "lognormal", "uniform"),
    "pinv": ("uniform", "beta"),
}
DIST_ALIASES = {"exponential": "exp", "unif": "uniform", "dir": "dirichlet", "fix": "fixed"}
#: Where each scalar parameter lives.
SUPPORT = {"kappa": (0.0, math.inf), "shape": (0.0, math.inf), "pinv": (0.0, 1.0)}
#: Starting values of free parameters (samplers and optimisers move from there).
STARTS = {"kappa": 2.0, "shape": 1.0, "pinv": 0.1}


@functools.lru_cache(maxsize=16)
def helmert(D: int) -> np.ndarray:
    """The ``D x (D-1)`` Helmert basis: orthonormal columns, each summing to zero
    (read-only: one array per ``D`` is shared)."""
    H = np.zeros((D, D - 1))
    for j in range(1, D):
        H[:j, j - 1] = 1.0 / j
        H[j, j - 1] = -1.0
        H[:, j - 1] /= np.linalg.norm(H[:, j - 1])
    H.flags.writeable = False
    return H


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max()
    return z - (m + math.log(np.exp(z - m).sum()))


# -- one-dimensional priors ------------------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    """A prior on one real parameter: ``kind`` in exp, gamma, lognormal, uniform, beta
    (Beta(a, b) on the parameter in (0, 1)) and ratio (Beta(a, b) on x / (1 + x), MrBayes's
    prior on kappa), with its arguments."""

    kind: str
    args: tuple

    @property
    def support(self) -> tuple[float, float]:
        if self.kind == "uniform":
            return float(self.args[0]), float(self.args[1])
        if self.kind == "beta":
            return 0.0, 1.0
        return 0.0, math.inf

    def log_pdf(self, x):
        """Log density at ``x`` (array), -inf outside the support."""
        x = np.asarray(x, dtype=np.float64)
        a = self.args
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "exp":
                out = math.log(a[0]) - a[0] * x
            elif self.kind == "gamma":
                out = a[0] * math.log(a[1]) - special.gammaln(a[0]) + (a[0] - 1) * np.log(x)
                out = out - a[1] * x
            elif self.kind == "lognormal":
                lx = np.log(x)
                out = -lx - math.log(a[1]) - 0.5 * math.log(2 * math.pi)
                out = out - 0.5 * ((lx - a[0]) / a[1]) ** 2
            elif self.kind == "uniform":
                out = np.full_like(x, -math.log(a[1] - a[0]))
            elif self.kind == "beta":
                out = (a[0] - 1) * np.log(x) + (a[1] - 1) * np.log1p(-x) - special.betaln(*a)
            else:  # ratio: beta prime
                out = (a[0] - 1) * np.log(x) - (a[0] + a[1]) * np.log1p(x) - special.betaln(*a)
        lo, hi = self.support
        return np.where((x > lo) & (x < hi), out, -np.inf)

    def dlog_pdf(self, x):
        """d log p / dx."""
        x = np.asarray(x, dtype=np.float64)
        a = self.args
        if self.kind == "exp":
            return np.full_like(x, -a[0])
        if self.kind == "gamma":
            return (a[0] - 1) / x - a[1]
        if self.kind == "lognormal":
            return -1.0 / x - (np.log(x) - a[0]) / (a[1] * a[1] * x)
        if self.kind == "uniform":
            return np.zeros_like(x)
        if self.kind == "beta":
            return (a[0] - 1) / x - (a[1] - 1) / (1 - x)
        return (a[0] - 1) / x - (a[0] + a[1]) / (1 + x)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        a = self.args
        if self.kind == "exp":
            return rng.exponential(1.0 / a[0], n)
        if self.kind == "gamma":
            return rng.gamma(a[0], 1.0 / a[1], n)
        if self.kind == "lognormal":
            return np.exp(a[0] + a[1] * rng.standard_normal(n))
        if self.kind == "uniform":
            return rng.uniform(a[0], a[1], n)
        x = rng.beta(a[0], a[1], n)
        return x if self.kind == "beta" else x / (1.0 - x)

    def describe(self) -> str:
        a = ", ".join(f"{v:g}" for v in self.args)
        names = {
            "exp": "Exponential",
            "gamma": "Gamma",
            "lognormal": "LogNormal",
            "uniform": "Uniform",
            "beta": "Beta",
        }
        if self.kind == "ratio":
            return f"Beta({a}) on x/(1+x)"
        return f"{names[self.kind]}({a})"


@dataclass(frozen=True)
class Dirichlet:
    """A Dirichlet prior on a simplex."""

    alpha: tuple

    def describe(self) -> str:
        return "Dirichlet(" + ",".join(f"{v:g}" for v in self.alpha) + ")"


# -- parsing ---------------------------------------------------------------------------------


def _canonical_name(name: str, text: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in PARAMETERS:
        raise InputError(
            f"--prior {text}: unknown parameter {name.strip()!r} (expected one of "
            f"{', '.join(PARAMETERS)})"
        )
    return key


def _numbers(args: str, text: str) -> list[float]:
    try:
        vals = [float(a) for a in args.split(",")] if args.strip() else []
    except ValueError:
        raise InputError(f"--prior {text}: {args!r} is not a list of numbers") from None
    return vals


def parse_prior_options(texts) -> dict[str, tuple[str, str]]:
    """``--prior`` options (a string, or several) as ``{parameter: (distribution, args)}``.

    Only the syntax and the parameter names are checked here; :func:`model_prior` checks
    each prior against the model and its parameter's range.  ``None`` or an empty string
    means no option.
    """
    if texts is None:
        texts = []
    elif isinstance(texts, str):
        texts = [texts] if texts else []
    out: dict[str, tuple[str, str]] = {}
    for text in texts:
        text = str(text).strip()
        if not text:
            continue
        name, eq, rest = text.partition("=")
        if eq:
            key = _canonical_name(name, text)
        else:
            key, rest = "brlens", text
        dist, colon, args = rest.partition(":")
        dist = dist.strip().lower()
        dist = DIST_ALIASES.get(dist, dist)
        if not dist:
            raise InputError(f"--prior {text}: expected NAME=DISTRIBUTION:ARGUMENTS")
        if key in out:
            raise InputError(f"--prior {text}: {key} is given a prior twice")
        out[key] = (dist, args.strip())
    return out


def _improper(text: str, why: str) -> InputError:
    return InputError(f"--prior {text}: improper prior ({why}); give a proper distribution")


def _scalar(key: str, dist: str, args: str, text: str) -> Scalar | float:
    """The prior of a scalar parameter, or its fixed value (a float)."""
    vals = _numbers(args, text)
    lo, hi = SUPPORT.get(key, (0.0, math.inf))
    if dist == "fixed":
        if len(vals) != 1:
            raise InputError(f"--prior {text}: fixed takes one value")
        v = vals[0]
        ok = lo < v < hi if key != "pinv" else 0.0 <= v < 1.0
        if not (ok and math.isfinite(v)):
            rng = "[0, 1)" if key == "pinv" else "(0, inf)"
            raise InputError(f"--prior {text}: {key} must be in {rng}, not {v:g}")
        return float(v)
    if dist not in ALLOWED[key]:
        raise InputError(
            f"--prior {text}: {key} takes {', '.join(ALLOWED[key])} or fixed, not {dist!r}"
        )
    need = {"exp": 1, "gamma": 2, "lognormal": 2, "uniform": 2, "beta": 2}[dist]
    if len(vals) != need:
        raise InputError(f"--prior {text}: {dist} takes {need} number(s)")
    if not all(math.isfinite(v) for v in vals) and dist != "uniform":
        raise _improper(text, "an infinite argument")
    if dist == "exp" and not vals[0] > 0:
        raise _improper(text, "the rate must be positive")
    if dist in ("gamma", "beta") and not (vals[0] > 0 and vals[1] > 0):
        raise _improper(text, f"both {dist} arguments must be positive")
    if dist == "lognormal" and not vals[1] > 0:
        raise _improper(text, "sigma must be positive")
    if dist == "uniform":
        a, b = vals
        if not (math.isfinite(a) and math.isfinite(b)):
            raise _improper(text, "an infinite interval")
        if not a < b:
            raise _improper(text, f"an empty interval [{a:g}, {b:g}]")
        if a < lo or b > hi:
            raise InputError(f"--prior {text}: {key} lies in [{lo:g}, {hi:g}]")
    if key == "kappa" and dist == "beta":
        return Scalar("ratio", tuple(vals))
    return Scalar(dist, tuple(vals))


def _simplex(key: str, dist: str, args: str, text: str, size: int):
    """The Dirichlet prior of a simplex parameter, or its fixed value (an array or the
    words ``equal`` / ``empirical``)."""
    if dist == "fixed":
        word = args.strip().lower()
        if key == "freqs" and word in ("equal", "empirical"):
            return word
        vals = _numbers(args, text)
        if len(vals) != size or not all(v > 0 and math.isfinite(v) for v in vals):
            raise InputError(f"--prior {text}: fixed {key} takes {size} positive numbers")
        if key == "freqs" and abs(sum(vals) - 1.0) > 1e-6:
            raise InputError(f"--prior {text}: frequencies must sum to 1, not {sum(vals):.6g}")
        return np.array(vals)
    if dist != "dirichlet":
        raise InputError(f"--prior {text}: {key} takes dirichlet or fixed, not {dist!r}")
    vals = _numbers(args, text)
    if len(vals) == 1:
        vals = vals * size
    if len(vals) != size:
        raise InputError(f"--prior {text}: a Dirichlet on {key} takes {size} numbers (or one)")
    if not all(v > 0 and math.isfinite(v) for v in vals):
        raise _improper(text, "Dirichlet weights must be positive")
    return Dirichlet(tuple(vals))


def branch_prior(dist: str, args: str, text: str):
    """The i.i.d. branch-length prior of ``--prior [brlens=]exp:RATE|gamma:SHAPE,RATE``."""
    from .priors import ExponentialPrior, GammaPrior

    vals = _numbers(args, text)
    if dist == "exp" and len(vals) <= 1:
        rate = vals[0] if vals else 10.0
        if not (rate > 0 and math.isfinite(rate)):
            raise _improper(text, "the rate must be positive")
        return ExponentialPrior(rate)
    if dist == "gamma" and len(vals) == 2:
        if not (vals[0] > 0 and vals[1] > 0 and all(map(math.isfinite, vals))):
            raise _improper(text, "both gamma arguments must be positive")
        return GammaPrior(*vals)
    raise InputError(f"unknown branch-length prior {text!r}: expected exp:RATE or gamma:SHAPE,RATE")


# -- the model with its priors ---------------------------------------------------------------


@dataclass
class Block:
    """One free parameter: its name, prior, size in the unconstrained vector, and (for a
    scalar) the interval it lives in."""

    name: str
    prior: object
    size: int
    offset: int = 0

    # -- scalar transforms
    def _scalar_value(self, phi: np.ndarray):
        lo, hi = self.prior.support
        if math.isinf(hi):
            with np.errstate(over="ignore"):  # far out: inf, a value no model takes
                e = np.exp(phi)
            return lo + e, phi, e  # value, log Jacobian, d value / d phi
        s = special.expit(phi)
        w = hi - lo
        value = lo + w * s
        logj = math.log(w) + special.log_expit(phi) + special.log_expit(-phi)
        return value, logj, w * s * (1.0 - s)

    def _scalar_dlogj(self, phi: np.ndarray):
        lo, hi = self.prior.support
        if math.isinf(hi):
            return np.ones_like(phi)
        return 1.0 - 2.0 * special.expit(phi)

    def values_rows(self, phi: np.ndarray) -> np.ndarray:
        """A scalar parameter at each value of ``phi`` (B,)."""
        lo, hi = self.prior.support
        with np.errstate(over="ignore"):
            if math.isinf(hi):
                return lo + np.exp(phi)
            return lo + (hi - lo) * special.expit(phi)

    def value(self, phi: np.ndarray):
        """The parameter at ``phi`` (its slice): a float, or a simplex."""
        if self.size == 1 and isinstance(self.prior, Scalar):
            return float(self._scalar_value(phi[0])[0])
        z = helmert(self.size + 1) @ phi
        z = np.exp(z - z.max())
        return z / z.sum()

    def log_density(self, phi: np.ndarray) -> float:
        """log p(theta(phi)) + log |d theta / d phi|."""
        if isinstance(self.prior, Scalar):
            value, logj, _ = self._scalar_value(phi[0])
            return float(self.prior.log_pdf(value) + logj)
        D = self.size + 1
        alpha = np.asarray(self.prior.alpha)
        logpi = _log_softmax(helmert(D) @ phi)
        const = special.gammaln(alpha.sum()) - special.gammaln(alpha).sum() + 0.5 * math.log(D)
        return float(const + alpha @ logpi)

    def grad_log_density(self, phi: np.ndarray) -> np.ndarray:
        if isinstance(self.prior, Scalar):
            value, _, dv = self._scalar_value(phi[0])
            return np.array([float(self.prior.dlog_pdf(value) * dv + self._scalar_dlogj(phi[0]))])
        D = self.size + 1
        H = helmert(D)
        alpha = np.asarray(self.prior.alpha)
        pi = self.value(phi)
        return H.T @ (alpha - alpha.sum() * pi)

    def chain(self, phi: np.ndarray, dvalue) -> np.ndarray:
        """d l / d phi from d l / d theta (``dvalue``: a float, or the derivatives in each
        part of a simplex taken as free)."""
        if isinstance(self.prior, Scalar):
            _, _, dv = self._scalar_value(phi[0])
            return np.array([float(dvalue) * float(dv)])
        pi = self.value(phi)
        g = np.asarray(dvalue, dtype=np.float64)
        return helmert(self.size + 1).T @ (pi * g - pi * (pi @ g))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` exact prior draws in the unconstrained space, (n, size)."""
        if isinstance(self.prior, Scalar):
            return self.inverse(self.prior.sample(rng, n))[:, None]
        x = rng.dirichlet(self.prior.alpha, n)
        return self.inverse_simplex(x)

    def inverse(self, value):
        """phi of scalar values."""
        value = np.asarray(value, dtype=np.float64)
        lo, hi = self.prior.support
        with np.errstate(divide="ignore"):
            if math.isinf(hi):
                return np.log(value - lo)
            return special.logit((value - lo) / (hi - lo))

    def inverse_simplex(self, x: np.ndarray) -> np.ndarray:
        """phi of simplex rows (the isometric log-ratio)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        with np.errstate(divide="ignore"):
            lx = np.log(x)
        return lx @ helmert(self.size + 1)

    def describe(self) -> str:
        return f"{self.name} ~ {self.prior.describe()}"


class ModelPrior:
    """A substitution model with priors on its free parameters: what a fixed-topology
    posterior integrates over, besides the branch lengths.

    Built by :func:`model_prior` from a :func:`phylo.likelihood.model_spec` dict and
    ``--prior`` options; picklable, so tasks can be sent to other processes.

    Attributes
    ----------
    base : phylo.likelihood.Model
        The model with its fixed parameters, and starting values for the free ones.
    blocks : list of Block
        The free parameters, in the order of the unconstrained vector.
    n : int
        Length of the unconstrained vector of the model's parameters.
    branch_prior
        The i.i.d. branch-length prior (:class:`~phylo.marglik.posterior.ExponentialPrior`
        or :class:`~phylo.marglik.posterior.GammaPrior`).
    fixed : dict
        The fixed parameters and their values.
    """

    def __init__(self, base, blocks: list[Block], branch_prior, fixed: dict, spec: dict):
        self.base = base
        self.blocks = blocks
        off = 0
        for b in blocks:
            b.offset = off
            off += b.size
        self.n = off
        self.branch_prior = branch_prior
        self.fixed = fixed
        self.spec = spec
        self._H = {b.name: helmert(b.size + 1) for b in blocks if b.name in ("rates", "freqs")}

    def resolved(self, alignment) -> ModelPrior:
        """This model prior with the base model's ``"empirical"`` frequencies taken from
        ``alignment`` once (not at every model built from it)."""
        out = copy.copy(self)
        out.base = self.base.resolve(alignment)
        return out

    # -- the model at phi
    def valid(self, phi) -> bool:
        """Whether ``phi`` gives a model: every value finite and strictly inside its range,
        no part of a simplex 0 (far out in the unconstrained space the maps overflow or
        underflow; the density there is taken as 0)."""
        phi = np.asarray(phi, dtype=np.float64)
        if not np.all(np.isfinite(phi)):
            return False
        for b in self.blocks:
            v = b.value(phi[b.offset : b.offset + b.size])
            if isinstance(b.prior, Scalar):
                lo, hi = b.prior.support
                if not (lo < v < hi and math.isfinite(v)):
                    return False
            elif not v.min() > 0.0:
                return False
        return True

    def valid_rows(self, Phi) -> np.ndarray:
        """:meth:`valid` of every row of ``Phi`` (B, n): a boolean array."""
        Phi = np.atleast_2d(np.asarray(Phi, dtype=np.float64))
        ok = np.all(np.isfinite(Phi), axis=1)
        for b in self.blocks:
            P = Phi[:, b.offset : b.offset + b.size]
            if isinstance(b.prior, Scalar):
                lo, hi = b.prior.support
                v = b.values_rows(P[:, 0])
                ok &= (v > lo) & (v < hi) & np.isfinite(v)
            else:
                with np.errstate(invalid="ignore"):
                    z = P @ helmert(b.size + 1).T
                    z = np.exp(z - z.max(axis=1, keepdims=True))
                    ok &= np.all(z > 0.0, axis=1)
        return ok

    def model_rows(self, Phi) -> dict:
        """The arrays of the models at the rows of ``Phi`` (B, n), all at once
        (:func:`phylo.likelihood.models.model_rows`); the base model's frequencies must be
        resolved (:meth:`resolved`)."""
        from ..likelihood.models import model_rows

        Phi = np.atleast_2d(np.asarray(Phi, dtype=np.float64))
        B = Phi.shape[0]
        base = self.base
        r = np.broadcast_to(base.exchangeabilities, (B, 6))
        pi = np.broadcast_to(base._freqs(), (B, 4))
        alpha = None if base.alpha is None else np.full(B, base.alpha)
        pinv = np.full(B, base.pinv)
        for b in self.blocks:
            P = Phi[:, b.offset : b.offset + b.size]
            if b.name in ("rates", "freqs"):
                z = P @ helmert(b.size + 1).T
                z = np.exp(z - z.max(axis=1, keepdims=True))
                v = z / z.sum(axis=1, keepdims=True)
                if b.name == "rates":
                    r = v
                else:
                    pi = v
                continue
            v = b.values_rows(P[:, 0])
            if b.name == "kappa":
                r = np.ones((B, 6))
                r[:, 1] = v
                r[:, 4] = v
            elif b.name == "shape":
                alpha = v
            else:
                pinv = v
        return model_rows(r, pi, alpha, base.n_categories, base.median, pinv)

    def values(self, phi) -> dict:
        """The free parameters' values at ``phi``: ``{name: value}``."""
        phi = np.asarray(phi, dtype=np.float64)
        return {b.name: b.value(phi[b.offset : b.offset + b.size]) for b in self.blocks}

    def model(self, phi):
        """The :class:`~phylo.likelihood.Model` at ``phi``."""
        if not self.blocks:
            return self.base
        v = self.values(phi)
        kw = {}
        if "rates" in v:
            kw["exchangeabilities"] = v["rates"]
        if "kappa" in v:
            k = v["kappa"]
            kw["exchangeabilities"] = np.array([1.0, k, 1.0, 1.0, k, 1.0])
        if "freqs" in v:
            kw["frequencies"] = v["freqs"]
        if "shape" in v:
            kw["alpha"] = v["shape"]
        if "pinv" in v:
            kw["pinv"] = v["pinv"]
        return replace(self.base, **kw)

    # -- the density of phi
    def log_density(self, phi) -> float:
        """log p(theta(phi)) + log |J|: the prior density of the unconstrained vector."""
        phi = np.asarray(phi, dtype=np.float64)
        return float(sum(b.log_density(phi[b.offset : b.offset + b.size]) for b in self.blocks))

    def log_density_rows(self, Phi) -> np.ndarray:
        Phi = np.atleast_2d(np.asarray(Phi, dtype=np.float64))
        return np.array([self.log_density(row) for row in Phi])

    def grad_log_density(self, phi) -> np.ndarray:
        phi = np.asarray(phi, dtype=np.float64)
        if not self.blocks:
            return np.zeros(0)
        return np.concatenate(
            [b.grad_log_density(phi[b.offset : b.offset + b.size]) for b in self.blocks]
        )

    def chain(self, phi, derivatives) -> np.ndarray:
        """d log L / d phi from the likelihood's
        :class:`~phylo.likelihood.parameter_gradient.ModelDerivatives`."""
        phi = np.asarray(phi, dtype=np.float64)
        parts = []
        for b in self.blocks:
            d = {
                "rates": derivatives.exchangeabilities,
                "freqs": derivatives.frequencies,
                "kappa": derivatives.kappa,
                "shape": derivatives.alpha,
                "pinv": derivatives.pinv,
            }[b.name]
            parts.append(b.chain(phi[b.offset : b.offset + b.size], d))
        return np.concatenate(parts) if parts else np.zeros(0)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` exact draws from the prior, in the unconstrained space: (n, self.n)."""
        if not self.blocks:
            return np.zeros((n, 0))
        return np.concatenate([b.sample(rng, n) for b in self.blocks], axis=1)

    def start(self, alignment=None) -> np.ndarray:
        """Where samplers start: equal exchangeabilities, the alignment's base frequencies,
        kappa 2, shape 1, pinv 0.1 (each moved inside its prior's interval if needed)."""
        parts = []
        for b in self.blocks:
            if b.name == "rates":
                parts.append(np.zeros(b.size))
            elif b.name == "freqs":
                f = np.full(4, 0.25) if alignment is None else alignment.empirical_frequencies()
                f = np.maximum(f, 1e-3)
                parts.append(b.inverse_simplex(f / f.sum())[0])
            else:
                lo, hi = b.prior.support
                v = STARTS[b.name]
                if not lo < v < hi:
                    v = lo + 0.5 * (hi - lo) if math.isfinite(hi) else lo + 1.0
                parts.append(np.atleast_1d(b.inverse(v)))
        return np.concatenate(parts) if parts else np.zeros(0)

    def coordinate_names(self) -> list[str]:
        """A name per coordinate of the unconstrained vector (simplexes: ilr coordinates)."""
        out = []
        for b in self.blocks:
            out += [b.name] if b.size == 1 else [f"{b.name}.ilr{i + 1}" for i in range(b.size)]
        return out

    @property
    def free(self) -> list[str]:
        return [b.name for b in self.blocks]

    def describe(self) -> str:
        """e.g. ``GTR+G4: rates ~ Dirichlet(1,1,1,1,1,1), freqs ~ Dirichlet(1,1,1,1), shape ~
        Exponential(1); branch lengths ~ Exponential(rate=10)``."""
        parts = [b.describe() for b in self.blocks]
        for k, v in self.fixed.items():
            text = v if isinstance(v, str) else ",".join(f"{x:g}" for x in np.atleast_1d(v))
            parts.append(f"{k} = {text}")
        body = "; ".join(parts) if parts else "no model parameters"
        return f"{self.base.describe()}: {body}; branch lengths ~ {self.branch_prior.describe()}"

    def __repr__(self):
        return f"ModelPrior({self.describe()})"


def _model_parts(name: str):
    """(base name, Gamma categories or None, +I, +F) of a model name."""
    from ..likelihood.models import _SPEC

    m = _SPEC.match(name.strip().replace(" ", ""))
    if not m:
        raise InputError(
            f"unknown model {name!r} (expected JC69, K80, HKY or GTR, optionally with +G<k>, "
            "+I, +F)"
        )
    base = {"JC": "JC69", "K2P": "K80", "HKY85": "HKY"}.get(m.group(1).upper(), m.group(1).upper())
    k, use_i, use_f = None, False, False
    for x in [x for x in m.group(2).upper().split("+") if x]:
        if x.startswith("G"):
            k = int(x[1:]) if len(x) > 1 else 4
        elif x == "I":
            use_i = True
        elif x == "F":
            use_f = True
    return base, k, use_i, use_f


def model_parameters(spec: dict) -> list[str]:
    """The parameters of the model a :func:`phylo.likelihood.model_spec` dict names, in
    the order of the unconstrained vector."""
    base, k, use_i, _ = _model_parts(spec.get("model", "JC69"))
    if k is None and spec.get("alpha") is not None:
        k = 4
    out = []
    if base == "GTR":
        out.append("rates")
    if base in ("HKY", "GTR"):
        out.append("freqs")
    if base in ("K80", "HKY"):
        out.append("kappa")
    if k and k > 1:
        out.append("shape")
    if use_i or spec.get("pinv"):
        out.append("pinv")
    return out


def model_prior(model_spec: dict | None = None, prior=None) -> ModelPrior:
    """The model of ``model_spec`` (a :func:`phylo.likelihood.model_spec` dict; default
    JC69) with priors on the parameters it does not fix, from ``prior`` (``--prior``
    options: a string or a list of them, see :func:`parse_prior_options`; defaults in
    :data:`DEFAULT_PRIORS`).

    A parameter is fixed when the model spec gives its value (``--kappa``, ``--rates``,
    ``--frequencies`` or ``+F``, ``--gamma-shape``, ``--pinv``) or ``prior`` says
    ``NAME=fixed:VALUE``; otherwise it is free, with its prior.  Errors (an
    :class:`~phylo.errors.InputError`): a prior on a parameter the model lacks, a prior on
    a parameter the model's options fix, an improper prior, a fixed value out of range.
    """
    from ..likelihood import model_from_spec
    from ..likelihood import model_spec as check_model_spec

    spec = dict(model_spec) if model_spec is not None else check_model_spec()
    options = parse_prior_options(prior)
    name = spec.get("model", "JC69")
    params = model_parameters(spec)
    _, _, _, use_f = _model_parts(name)
    given = {
        "rates": spec.get("rates") is not None,
        "freqs": spec.get("frequencies") is not None or use_f,
        "kappa": spec.get("kappa") is not None,
        "shape": spec.get("alpha") is not None,
        "pinv": spec.get("pinv") is not None,
    }
    option_of = {
        "rates": "--rates",
        "freqs": "--frequencies" if spec.get("frequencies") is not None else "+F",
        "kappa": "--kappa",
        "shape": "--gamma-shape",
        "pinv": "--pinv",
    }
    for key, (dist, args) in options.items():
        if key == "brlens":
            continue
        text = f"{key}={dist}:{args}"
        if key not in params:
            has = ", ".join(params) if params else "none besides the branch lengths"
            raise InputError(
                f"--prior {text}: the model {name} has no {key} (its parameters: {has})"
            )
        if given[key]:
            raise InputError(
                f"--prior {text}: {key} is already fixed by {option_of[key]}; give one or the other"
            )
    dist, args = options.get("brlens", ("exp", "10"))
    bprior = branch_prior(dist, args, f"brlens={dist}:{args}")
    fixed: dict = {}
    blocks: list[Block] = []
    base_kw = dict(spec)
    for key in params:
        if given[key]:
            fixed[key] = {
                "rates": spec.get("rates"),
                "freqs": spec.get("frequencies") or "empirical",
                "kappa": spec.get("kappa"),
                "shape": spec.get("alpha"),
                "pinv": spec.get("pinv"),
            }[key]
            continue
        dist, args = options.get(key, tuple(DEFAULT_PRIORS[key].split(":", 1)))
        text = f"{key}={dist}:{args}"
        if key in ("rates", "freqs"):
            p = _simplex(key, dist, args, text, 6 if key == "rates" else 4)
        else:
            p = _scalar(key, dist, args, text)
        if isinstance(p, (Scalar, Dirichlet)):
            blocks.append(Block(key, p, 5 if key == "rates" else 3 if key == "freqs" else 1))
            continue
        fixed[key] = p  # a fixed value
        spec_key = {"rates": "rates", "freqs": "frequencies", "kappa": "kappa"}.get(key)
        spec_key = spec_key or {"shape": "alpha", "pinv": "pinv"}[key]
        base_kw[spec_key] = p.tolist() if isinstance(p, np.ndarray) else p
    # the base model: fixed values, and starting values of the free parameters
    free = {b.name for b in blocks}
    if "kappa" in free:
        base_kw["kappa"] = STARTS["kappa"]
    if "shape" in free:
        base_kw["alpha"] = STARTS["shape"]
    if "pinv" in free:
        base_kw["pinv"] = STARTS["pinv"]
    if "freqs" in free:
        base_kw["frequencies"] = "empirical"
    base = model_from_spec(base_kw)
    return ModelPrior(base, blocks, bprior, fixed, spec)


def prior_texts(prior) -> list[str]:
    """``--prior`` options as a list of strings (for provenance and run identities)."""
    if prior is None:
        return []
    if isinstance(prior, str):
        return [prior] if prior else []
    return [str(p) for p in prior]


def check_prior(model_spec: dict | None, prior) -> ModelPrior:
    """:func:`model_prior`, for checking options before work starts."""
    return model_prior(model_spec, prior)


def default_prior_text(params: Sequence[str]) -> str:
    return "; ".join(f"{p}={DEFAULT_PRIORS[p]}" for p in params)
