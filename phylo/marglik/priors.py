"""I.i.d. branch-length priors: :class:`ExponentialPrior`, :class:`GammaPrior`, and
:func:`parse_prior` for the ``exp:RATE`` / ``gamma:SHAPE,RATE`` option text.  Their own module
so that :mod:`phylo.marglik.posterior` and :mod:`phylo.marglik.parameters` both import them
without importing each other."""

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
