"""Fourment et al. (2020, Syst. Biol. 69:209) on DS1: the Laplus, importance-sampling and
variational estimators against the published reference.

DS1 (27 taxa, 1949 sites), JC69, i.i.d. Exponential(10) branch lengths.  The first tree of
the 42-tree credible set has log marginal likelihood -7036.5 (the paper's long
power-posterior runs); ``glis`` and ``vbis`` must agree within 0.3.  Over the whole credible
set the estimates, normalised into a distribution over the 42 topologies (softmax), are
compared with the golden MrBayes frequencies normalised over the same trees:
KL(golden || estimate) must be at most 0.002 for ``glis`` and 0.06 for ``gl`` (the paper's
code reaches 0.0004 and 0.043).
"""

from __future__ import annotations

import numpy as np
import pytest

from phylo.marglik.compare import kl_to_reference
from phylo.marglik.estimators import run
from phylo.marglik.posterior import Posterior

from .ds1_marglik import PUBLISHED_TREE0 as REFERENCE_TREE0
from .ds1_marglik import credible_set


@pytest.fixture(scope="module")
def ds1():
    return credible_set()


def estimates(ds1, name, seed=2020, **settings):
    aln, _, trees = ds1
    return [
        run(name, Posterior(aln, tree), np.random.default_rng([seed, k]), **settings)
        for k, tree in enumerate(trees)
    ]


@pytest.mark.parametrize("name", ["glis", "vbis"])
def test_tree0_agrees_with_the_paper(ds1, name):
    aln, _, trees = ds1
    est = run(name, Posterior(aln, trees[0]), np.random.default_rng(1))
    assert abs(est.log_ml - REFERENCE_TREE0) < 0.3
    assert est.se < 0.15


def test_laplus_below_or_near_reference_tree0(ds1):
    """The Laplus values are approximations: close to the reference, not equal to it."""
    aln, _, trees = ds1
    post = Posterior(aln, trees[0])
    for name in ("gl", "bl"):
        assert abs(run(name, post, np.random.default_rng(0)).log_ml - REFERENCE_TREE0) < 2.0
    elbo = run("elbo", post, np.random.default_rng(0))
    assert REFERENCE_TREE0 - 5.0 < elbo.log_ml < REFERENCE_TREE0


def test_gl_kl_over_the_credible_set(ds1):
    _, freq, _ = ds1
    kl = kl_to_reference(freq, np.array([e.log_ml for e in estimates(ds1, "gl")]))
    assert kl <= 0.06


@pytest.mark.slow
def test_glis_kl_over_the_credible_set(ds1):
    _, freq, _ = ds1
    kl = kl_to_reference(freq, np.array([e.log_ml for e in estimates(ds1, "glis")]))
    assert kl <= 0.002
