"""Point "estimates": the optimum of the posterior or of the likelihood.

Neither is an estimate of the marginal likelihood; the paper includes them as baselines,
reporting the unnormalised log posterior density at the MAP, ``log L(t^) + log p(t^)``, and
the maximised log-likelihood ``log L(t_ML)`` of the topology.  With free model parameters
both are over them too (the MAP's density is that of their unconstrained vector, with its
Jacobian; the ML estimate maximises over the parameters as well).
"""

from __future__ import annotations

import numpy as np

from ..optimize import map_estimate, ml_estimate
from . import Estimate, register

FAMILY = "point estimates"


def _diag(opt):
    from .laplace import model_diagnostics

    return {
        "log_likelihood": opt.log_likelihood,
        "log_prior": opt.log_prior,
        "iterations": opt.iterations,
        "converged": opt.converged,
        "boundary_branches": int(np.sum(opt.boundary)),
        "tree_length": float(np.sum(opt.t)),
        **model_diagnostics(opt),
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
