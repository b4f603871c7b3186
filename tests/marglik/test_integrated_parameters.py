"""Marginal likelihoods with a model parameter integrated out, against quadrature: every
consistent estimator on three taxa with K80's kappa free (MrBayes's Beta(1,1) prior on
kappa / (1 + kappa)) and with the Gamma shape of JC69+G4 free (Exponential(1)), both with
Exponential(10) branch lengths; and a parameter held by a prior that is (nearly) a point
mass gives the fixed-parameter numbers."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from phylo.likelihood import model_spec, parse_alignment
from phylo.marglik.estimators import REGISTRY, run
from phylo.marglik.parameters import model_prior
from phylo.marglik.posterior import Posterior
from phylo.trees import parse_newick

from .exact import (
    EXAMPLE_NEWICK,
    EXAMPLE_TAXA,
    KAPPA_EXAMPLE,
    SHAPE_EXAMPLE,
    exact_log_ml_with_parameter,
    exponential_log_prior,
)

CASES = {
    # model, sequences, log prior of the parameter, box of its log for the quadrature
    "kappa": ("K80", KAPPA_EXAMPLE, lambda k: -2.0 * np.log1p(k), (-14.0, 9.0), 64),
    "shape": ("JC69+G4", SHAPE_EXAMPLE, lambda a: -a, (-12.0, 5.0), 48),
}

# settings for three taxa and one parameter (the defaults are sized for DS1)
FAST = {
    "ss": dict(temperatures=24, samples=300, warmup=500),
    "gss": dict(temperatures=24, samples=300, pilot=500, warmup=500),
    "ps": dict(temperatures=24, samples=300, warmup=500),
    "psm": dict(temperatures=24, samples=300, warmup=500),
    "bs": dict(samples=4000, warmup=500),
    "ns": dict(length=100),
    "nmc": dict(samples=100_000),
    "glis": dict(samples=20_000),
    "vbis": dict(samples=20_000),
}
CONSISTENT = sorted(m for m, spec in REGISTRY.items() if spec.consistent) or sorted(FAST)


@functools.cache
def exact(case: str) -> float:
    model, seqs, log_param_prior, box, param_nodes = CASES[case]
    return exact_log_ml_with_parameter(
        seqs, model, exponential_log_prior(10.0), log_param_prior, box, 60, param_nodes
    )


def posterior(case: str, priors=None, **options):
    model, seqs, *_ = CASES[case]
    aln = parse_alignment("\n".join(f">{n}\n{s}" for n, s in zip(EXAMPLE_TAXA, seqs)))
    mp = model_prior(model_spec(model, **options), priors)
    return Posterior(aln, parse_newick(EXAMPLE_NEWICK), mp)


def test_every_consistent_estimator_is_covered():
    from phylo.marglik.estimators import names

    names()  # registers them all
    assert sorted(m for m, s in REGISTRY.items() if s.consistent) == sorted(FAST)


def test_the_posterior_integrates_the_parameter():
    post = posterior("kappa")
    assert post.n_params == 1 and post.dim == 4
    post = posterior("shape")
    assert post.params.free == ["shape"]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_quadrature_converged(case):
    model, seqs, log_param_prior, box, param_nodes = CASES[case]
    fine = exact_log_ml_with_parameter(
        seqs, model, exponential_log_prior(10.0), log_param_prior, box, 80, 2 * param_nodes
    )
    assert abs(fine - exact(case)) < 1e-6


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", sorted(FAST))
def test_consistent_estimators_match_quadrature(case, method):
    post = posterior(case)
    est = run(method, post, np.random.default_rng(17), **FAST[method])
    want = exact(case)
    assert np.isfinite(est.se) and est.se > 0
    # 4 standard errors, plus 0.02 for the trapezoid rule's discretisation bias (ps)
    assert abs(est.log_ml - want) < 4 * est.se + 0.02, (est.log_ml, est.se, want)


@pytest.mark.parametrize("case", sorted(CASES))
def test_laplus_estimates_are_near(case):
    # not consistent: approximations near the value, no more
    post = posterior(case)
    for method in ("gl", "ll", "bl"):
        est = run(method, post, np.random.default_rng(0))
        assert abs(est.log_ml - exact(case)) < 1.0, (method, est.log_ml)
    elbo = run("elbo", post, np.random.default_rng(0))
    assert exact(case) - 3.0 < elbo.log_ml < exact(case) + 3 * elbo.se


def test_fixed_by_a_prior_is_fixed_by_an_option():
    # --prior kappa=fixed:4 and --kappa 4 build the same posterior: the same numbers
    a = posterior("kappa", ["kappa=fixed:4"])
    b = posterior("kappa", kappa=4.0)
    assert a.n_params == 0 and b.n_params == 0
    for method in ("glis", "gss"):
        settings = FAST[method]
        ea = run(method, a, np.random.default_rng(5), **settings)
        eb = run(method, b, np.random.default_rng(5), **settings)
        assert ea.log_ml == eb.log_ml


def test_a_narrow_prior_integrates_to_the_fixed_value():
    # kappa ~ LogNormal(log 4, 0.001), integrated by the samplers, gives the marginal
    # likelihood with kappa fixed at 4 (within the estimators' errors)
    fixed = run("gss", posterior("kappa", kappa=4.0), np.random.default_rng(1), **FAST["gss"])
    narrow = posterior("kappa", [f"kappa=lognormal:{np.log(4.0)},0.001"])
    assert narrow.n_params == 1
    for method in ("gss", "glis"):
        est = run(method, narrow, np.random.default_rng(2), **FAST[method])
        assert abs(est.log_ml - fixed.log_ml) < 4 * np.hypot(est.se, fixed.se) + 1e-3


def test_batches_of_models_are_the_models_one_by_one():
    from phylo.likelihood import read_alignment
    from phylo.marglik.compare import read_topologies

    aln = read_alignment("data/example.fasta")
    tree = read_topologies("data/example_true.nwk")[0][0]
    post = Posterior(aln, tree, model_prior(model_spec("GTR+G4+I"), None), batch_threads=2)
    rng = np.random.default_rng(4)
    X = post.sample_prior_x(rng, 5)
    X[:, : post.n_branches] = np.log(rng.uniform(0.01, 0.2, (5, post.n_branches)))
    T, Phi = post.split(X)
    batch = post.log_likelihood_batch(T, Phi)
    dens = post.log_density_batch(X)
    for b in range(5):
        assert batch[b] == pytest.approx(post.log_likelihood(T[b], Phi[b]), rel=1e-12)
        value, grad, ll = post.log_density_and_gradient(X[b])
        assert ll == pytest.approx(batch[b], rel=1e-12)
        assert value == pytest.approx(dens[b], rel=1e-12)
    Phi[0, 0] = 1e6  # an exchangeability's share overflows: no model, density 0
    assert post.log_likelihood_batch(T, Phi)[0] == -np.inf
    assert post.log_density_and_gradient(np.r_[X[0, : post.n_branches], Phi[0]])[0] == -np.inf
