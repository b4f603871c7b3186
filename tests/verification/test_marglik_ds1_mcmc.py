"""DS1 (27 taxa, 1949 sites, JC69, Exponential(10) branch lengths): the sampling estimators
against the published marginal likelihood of the most probable topology (Fourment et al.
2020, Syst. Biol. 69:209, about -7036.5 for tree 0 of the golden credible set), and the
generalized stepping stone's topology posterior against the golden MrBayes run.

Run with ``python -m pytest -m slow tests/verification/test_marglik_ds1_mcmc.py``.
``PHYLO_DS1_KL=1`` adds the 42-tree KL check (about 40 s per tree on one core, half an hour
in all; measured KL(golden || gss) = 8e-5 with these seeds, against the goal of 0.005).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from phylo.marglik.compare import kl_to_reference

from .ds1_marglik import PUBLISHED_TREE0, credible_set


def _posterior(tree):
    from phylo.marglik.posterior import Posterior

    aln, _, _ = credible_set()
    return Posterior(aln, tree)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bs", "gss", "ss", "psm"])
def test_tree0_matches_published(method):
    from phylo.marglik.estimators import run

    _, _, trees = credible_set()
    est = run(method, _posterior(trees[0]), np.random.default_rng(2020))
    print(
        f"{method}: {est.log_ml:.3f} +- {est.se:.3f} in {est.seconds:.0f} s, "
        f"{est.n_evaluations} evaluations"
    )
    # the published value is given to 0.1; the estimate must be within 0.3 of it and its
    # own standard error must be small enough for that to be a real check
    assert est.se < 0.2
    assert abs(est.log_ml - PUBLISHED_TREE0) < 0.3


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("PHYLO_DS1_KL") != "1", reason="42 trees x gss: set PHYLO_DS1_KL=1"
)
def test_gss_kl_over_credible_set():
    from phylo.marglik.estimators import run

    _, freqs, trees = credible_set()
    seeds = np.random.SeedSequence(42).spawn(len(trees))
    values = np.array(
        [
            run("gss", _posterior(tree), np.random.default_rng(s)).log_ml
            for tree, s in zip(trees, seeds)
        ]
    )
    kl = kl_to_reference(freqs, values)
    print(f"KL(golden || gss) = {kl:.4f}")
    assert kl < 0.005


def test_kl_of_golden_against_itself_is_zero():
    freqs = np.array([0.5, 0.3, 0.2])
    assert abs(kl_to_reference(freqs, np.log(freqs) + 7.0)) < 1e-12
    assert kl_to_reference(freqs, np.zeros(3)) > 0
    assert math.isfinite(kl_to_reference(freqs, np.array([-1.0, -2.0, -3.0])))
