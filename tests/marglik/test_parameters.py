"""Priors on the model's parameters and their unconstrained space: densities that integrate
to one, Jacobians against numerical determinants, draws against densities, gradients
against finite differences; the ``--prior`` grammar and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from phylo.errors import InputError
from phylo.likelihood import model_spec
from phylo.marglik.parameters import (
    Block,
    Dirichlet,
    Scalar,
    helmert,
    model_prior,
    parse_prior_options,
)
from phylo.marglik.posterior import ExponentialPrior, GammaPrior

SCALARS = {
    "kappa beta(1,1)": Scalar("ratio", (1.0, 1.0)),
    "kappa beta(2,5)": Scalar("ratio", (2.0, 5.0)),
    "shape exp(1)": Scalar("exp", (1.0,)),
    "shape gamma(2,3)": Scalar("gamma", (2.0, 3.0)),
    "kappa lognormal(1,0.5)": Scalar("lognormal", (1.0, 0.5)),
    "shape uniform(0.05,50)": Scalar("uniform", (0.05, 50.0)),
    "pinv uniform(0,1)": Scalar("uniform", (0.0, 1.0)),
    "pinv uniform(0.1,0.6)": Scalar("uniform", (0.1, 0.6)),
    "pinv beta(2,5)": Scalar("beta", (2.0, 5.0)),
}


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_scalar_density_of_phi_integrates_to_one(name):
    block = Block(name.split()[0], SCALARS[name], 1)
    value, err = integrate.quad(
        lambda u: math.exp(block.log_density(np.array([u]))), -60, 60, limit=400, points=[0.0]
    )
    assert value == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_scalar_gradient_and_chain_rule(name):
    block = Block(name.split()[0], SCALARS[name], 1)
    for u in (-2.3, -0.4, 0.0, 0.7, 1.9):
        phi = np.array([u])
        h = 1e-6
        fd = (block.log_density(phi + h) - block.log_density(phi - h)) / (2 * h)
        assert block.grad_log_density(phi)[0] == pytest.approx(fd, rel=1e-6, abs=1e-7)
        # d f(theta)/d phi for f(theta) = theta^2: the chain rule with df/dtheta = 2 theta
        theta = block.value(phi)
        fd = (block.value(phi + h) ** 2 - block.value(phi - h) ** 2) / (2 * h)
        assert block.chain(phi, 2 * theta)[0] == pytest.approx(fd, rel=1e-6, abs=1e-9)
        assert block.inverse(theta) == pytest.approx(u, abs=1e-9)


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_scalar_draws_follow_the_density(name):
    prior = SCALARS[name]
    block = Block(name.split()[0], prior, 1)
    phi = block.sample(np.random.default_rng(3), 20_000)[:, 0]
    grid = np.linspace(np.quantile(phi, 0.001), np.quantile(phi, 0.999), 2001)
    dens = np.exp([block.log_density(np.array([u])) for u in grid])
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf += 0.001  # the mass below the grid (the 0.1% quantile)
    assert stats.kstest(phi, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3


def test_kappa_prior_is_mrbayes_beta_on_the_proportion():
    # MrBayes's tratiopr=beta(a,b): kappa / (1 + kappa) ~ Beta(a, b); on kappa the beta-prime
    for a, b in ((1.0, 1.0), (2.0, 1.0), (80.0, 40.0)):
        prior = Scalar("ratio", (a, b))
        k = np.array([0.1, 0.5, 1.0, 2.0, 7.5])
        x = k / (1 + k)
        want = stats.beta(a, b).logpdf(x) - 2 * np.log1p(k)  # |dx/dkappa| = (1+kappa)^-2
        np.testing.assert_allclose(prior.log_pdf(k), want, rtol=1e-12)
        np.testing.assert_allclose(prior.log_pdf(k), stats.betaprime(a, b).logpdf(k), rtol=1e-10)


@pytest.mark.parametrize("D", [4, 6])
def test_isometric_log_ratio_jacobian_and_dirichlet_density(D):
    alpha = np.arange(1.0, D + 1.0) / 2.0
    block = Block("freqs" if D == 4 else "rates", Dirichlet(tuple(alpha)), D - 1)
    H = helmert(D)
    np.testing.assert_allclose(H.T @ H, np.eye(D - 1), atol=1e-14)
    np.testing.assert_allclose(H.sum(axis=0), 0.0, atol=1e-14)
    rng = np.random.default_rng(D)
    for _ in range(3):
        phi = rng.normal(size=D - 1)
        pi = block.value(phi)
        h = 1e-6
        J = np.array(
            [
                (block.value(phi + h * e)[: D - 1] - block.value(phi - h * e)[: D - 1]) / (2 * h)
                for e in np.eye(D - 1)
            ]
        ).T
        want = stats.dirichlet(alpha).logpdf(pi) + math.log(abs(np.linalg.det(J)))
        assert block.log_density(phi) == pytest.approx(want, abs=1e-7)
        fd = [
            (block.log_density(phi + h * e) - block.log_density(phi - h * e)) / (2 * h)
            for e in np.eye(D - 1)
        ]
        np.testing.assert_allclose(block.grad_log_density(phi), fd, rtol=1e-6, atol=1e-7)
        g = rng.normal(size=D)  # the chain rule of a linear function of pi
        fd = [
            (g @ block.value(phi + h * e) - g @ block.value(phi - h * e)) / (2 * h)
            for e in np.eye(D - 1)
        ]
        np.testing.assert_allclose(block.chain(phi, g), fd, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(block.inverse_simplex(pi)[0], phi, atol=1e-10)


def test_dirichlet_draws():
    alpha = (1.0, 2.0, 3.0, 4.0)
    block = Block("freqs", Dirichlet(alpha), 3)
    draws = np.array([block.value(p) for p in block.sample(np.random.default_rng(1), 20_000)])
    np.testing.assert_allclose(draws.mean(axis=0), np.array(alpha) / 10.0, atol=0.005)
    # the first part's marginal is Beta(1, 9)
    assert stats.kstest(draws[:, 0], stats.beta(1.0, 9.0).cdf).pvalue > 1e-3


# -- the grammar and the model's parameters -----------------------------------------------


def test_defaults_are_mrbayes_priors():
    mp = model_prior(model_spec("GTR+G4+I"), None)
    assert mp.free == ["rates", "freqs", "shape", "pinv"]
    assert mp.n == 5 + 3 + 1 + 1
    priors = {b.name: b.prior for b in mp.blocks}
    assert priors["rates"] == Dirichlet((1.0,) * 6)
    assert priors["freqs"] == Dirichlet((1.0,) * 4)
    assert priors["shape"] == Scalar("exp", (1.0,))
    assert priors["pinv"] == Scalar("uniform", (0.0, 1.0))
    assert isinstance(mp.branch_prior, ExponentialPrior) and mp.branch_prior.rate == 10.0
    hky = model_prior(model_spec("HKY"), None)
    assert hky.free == ["freqs", "kappa"]
    assert hky.blocks[1].prior == Scalar("ratio", (1.0, 1.0))
    assert model_prior(model_spec("JC69"), None).n == 0


def test_grammar():
    opts = parse_prior_options(["exp:5", "tratio=beta:2,1", "Alpha=Gamma:2,4", "pinvar=fixed:0.2"])
    assert opts == {
        "brlens": ("exp", "5"),
        "kappa": ("beta", "2,1"),
        "shape": ("gamma", "2,4"),
        "pinv": ("fixed", "0.2"),
    }
    mp = model_prior(
        model_spec("HKY+G4+I"),
        ["brlens=gamma:2,20", "kappa=lognormal:1,0.5", "freqs=fixed:equal", "pinv=fixed:0.2"],
    )
    assert mp.free == ["kappa", "shape"]
    assert isinstance(mp.branch_prior, GammaPrior) and mp.branch_prior.rate == 20.0
    assert mp.base.pinv == 0.2 and np.allclose(mp.base.frequencies, 0.25)
    assert mp.fixed == {"freqs": "equal", "pinv": 0.2}
    m = mp.model(np.array([math.log(3.0), math.log(0.7)]))
    assert m.exchangeabilities[1] == pytest.approx(3.0) and m.alpha == pytest.approx(0.7)
    # a symmetric Dirichlet from one number, fixed exchangeabilities
    mp = model_prior(model_spec("GTR"), ["rates=fixed:1,2,1,1,2,1", "freqs=dirichlet:5"])
    assert mp.free == ["freqs"] and mp.blocks[0].prior == Dirichlet((5.0,) * 4)
    assert mp.base.exchangeabilities[1] == 2.0


@pytest.mark.parametrize(
    "model, priors, message",
    [
        ("GTR+G4", ["kappa=beta:1,1"], "has no kappa"),
        ("JC69", ["shape=exp:1"], "has no shape"),
        ("HKY", ["pinv=uniform:0,1"], "has no pinv"),
        ("HKY+G4", ["shape=uniform:0,inf"], "improper"),
        ("HKY+G4", ["shape=exp:0"], "improper"),
        ("HKY", ["kappa=gamma:0,1"], "improper"),
        ("GTR", ["rates=dirichlet:1,1,0,1,1,1"], "improper"),
        ("GTR+I", ["pinv=uniform:0.5,0.5"], "improper"),
        ("HKY+G4", ["shape=fixed:-1"], "must be in"),
        ("HKY+I", ["pinv=fixed:1"], "must be in"),
        ("HKY+I", ["pinv=uniform:0,2"], "lies in"),
        ("HKY", ["freqs=fixed:0.5,0.5,0.5,0.5"], "sum to 1"),
        ("HKY", ["colour=exp:1"], "unknown parameter"),
        ("HKY", ["kappa=exp:1", "tratio=beta:1,1"], "twice"),
        ("HKY+G4", ["shape=dirichlet:1"], "takes exp"),
        ("HKY", ["brlens=gamma:1"], "branch-length prior"),
        ("HKY", ["exp:-3"], "improper"),
    ],
)
def test_bad_priors_are_input_errors(model, priors, message):
    with pytest.raises(InputError, match=message):
        model_prior(model_spec(model), priors)


def test_a_prior_on_a_parameter_fixed_by_an_option_is_refused():
    with pytest.raises(InputError, match="already fixed by --kappa"):
        model_prior(model_spec("HKY", kappa=2.0), ["kappa=beta:1,1"])
    with pytest.raises(InputError, match="already fixed by \\+F"):
        model_prior(model_spec("HKY+F"), ["freqs=dirichlet:1"])
    # fixed by the options: nothing free
    mp = model_prior(model_spec("HKY+G4", kappa=2.0, frequencies="empirical", gamma_shape=0.5))
    assert mp.n == 0
