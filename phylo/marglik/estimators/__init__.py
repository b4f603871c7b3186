"""One registry of marginal-likelihood estimators.

Every estimator is a function ``f(posterior, rng, **settings) -> Estimate`` registered under a
short name with its family, a one-line description, its cost, and its default settings:

>>> from phylo.marglik.estimators import get, run           # doctest: +SKIP
>>> est = run("glis", posterior, np.random.default_rng(1), samples=10000)   # doctest: +SKIP
>>> est.log_ml, est.se                                        # doctest: +SKIP

``run`` fills in ``seconds`` and ``n_evaluations`` (likelihood evaluations, counted by the
:class:`~phylo.marglik.posterior.Posterior`).  The modules of each family register their
estimators when this package is imported.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...errors import InputError


@dataclass
class Estimate:
    """One estimate of log p(D | topology)."""

    log_ml: float
    se: float = math.nan  # standard error of log_ml, where the method has one
    seconds: float = math.nan
    n_evaluations: int = 0
    diagnostics: dict = field(default_factory=dict)  # e.g. ess, acceptance, iterations


@dataclass
class EstimatorSpec:
    name: str
    family: str
    description: str
    cost: str
    defaults: dict
    function: Callable
    consistent: bool = True  # converges to the true value as its budget grows


REGISTRY: dict[str, EstimatorSpec] = {}

FAMILIES = (
    "power posteriors",
    "one posterior sample",
    "other sampling",
    "Laplace and variational",
    "point estimates",
)

_MODULES = ("power", "single", "sampling", "laplace", "variational", "point")


def register(
    name: str, family: str, description: str, cost: str, consistent: bool = True, **defaults
):
    """Decorator: register ``f(posterior, rng, **settings) -> Estimate`` under ``name``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")

    def deco(f):
        if name in REGISTRY:
            raise ValueError(f"estimator {name!r} registered twice")
        REGISTRY[name] = EstimatorSpec(
            name, family, description, cost, dict(defaults), f, consistent
        )
        return f

    return deco


def _load() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:  # a family not written yet
            if e.name != f"{__name__}.{mod}":
                raise


def names() -> list[str]:
    """Registered names, in the order of the families."""
    _load()
    order = {f: i for i, f in enumerate(FAMILIES)}
    return [s.name for s in sorted(REGISTRY.values(), key=lambda s: order[s.family])]


def get(name: str) -> EstimatorSpec:
    _load()
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; known: {', '.join(names())}") from None


def catalogue() -> list[dict[str, str]]:
    """One row per estimator, in registry order: method, family, consistent (yes/no), cost,
    default settings (``key=value,...`` or ``-``) and description."""
    rows = []
    for name in names():
        s = get(name)
        rows.append(
            {
                "method": s.name,
                "family": s.family,
                "consistent": "yes" if s.consistent else "no",
                "cost": s.cost,
                "settings": ",".join(f"{k}={v}" for k, v in s.defaults.items()) or "-",
                "description": s.description,
            }
        )
    return rows


def parse_settings(spec: EstimatorSpec, settings: dict) -> dict:
    """Defaults overridden by ``settings`` (unknown keys are an error; types follow the
    defaults, so strings from a command line are converted)."""
    out = dict(spec.defaults)
    for k, v in settings.items():
        if k not in spec.defaults:
            raise InputError(
                f"method {spec.name!r} has no setting {k!r}; its settings: "
                f"{', '.join(sorted(spec.defaults)) or 'none'}"
            )
        d = spec.defaults[k]
        if isinstance(v, str) and not isinstance(d, str):
            try:
                if isinstance(d, bool):
                    v = v.lower() in ("1", "true", "yes")
                elif isinstance(d, (tuple, list)):
                    kind = type(d[0]) if d else float
                    v = type(d)(
                        kind(float(x)) if kind is int else kind(x)
                        for x in v.replace(";", ",").split(",")
                        if x.strip()
                    )
                elif isinstance(d, int):
                    f = float(v)
                    if f != int(f):
                        raise ValueError(v)
                    v = int(f)
                else:
                    v = type(d)(v)
            except (TypeError, ValueError):
                raise InputError(
                    f"setting {k!r} of {spec.name!r} expects {type(d).__name__}, not {v!r}"
                ) from None
        out[k] = v
    return out


def run(name: str, posterior, rng: np.random.Generator, **settings) -> Estimate:
    """Run estimator ``name`` on ``posterior`` with ``settings`` over its defaults."""
    spec = get(name)
    kwargs = parse_settings(spec, settings)
    n0 = posterior.n_evaluations
    t0 = time.perf_counter()
    est = spec.function(posterior, rng, **kwargs)
    est.seconds = time.perf_counter() - t0
    est.n_evaluations = posterior.n_evaluations - n0
    return est
