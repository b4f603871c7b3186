"""Point "estimates": the optimum of the posterior or of the likelihood.

Neither is an estimate of the marginal likelihood; the paper includes them as baselines,
reporting the unnormalised log posterior density at the MAP, ``log L(t^) + log p(t^)``, and
the maximised log-likelihood ``log L(t_ML)`` of the topology.
"""

from __future__ import annotations

import numpy as np

from ..optimize import map_estimate, ml_estimate
from . import Estimate, register

FAMILY = "point estimates"


def _diag(opt):
    return {
        "log_likelihood": opt.log_likelihood,
        "log_prior": opt.log_prior,
        "iterations": opt.iterations,
        "converged": opt.converged,
        "boundary_branches": int(np.sum(opt.boundary)),
        "tree_length": float(np.sum(opt.t)),
    }


@register(
    "map",
    FAMILY,
    "log posterior density (likelihood times prior) at the MAP branch lengths",
    "one optimisation",
    consistent=False,
)
def map_point(posterior, rng):
    opt = map_estimate(posterior)
    return Estimate(log_ml=opt.value, diagnostics=_diag(opt))


@register(
    "ml",
    FAMILY,
    "maximum log-likelihood over the branch lengths",
    "one optimisation",
    consistent=False,
)
def ml_point(posterior, rng):
    opt = ml_estimate(posterior)
    return Estimate(log_ml=opt.value, diagnostics=_diag(opt))
