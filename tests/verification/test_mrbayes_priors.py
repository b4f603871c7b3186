"""The default priors on the model's parameters are MrBayes's: MrBayes 3.2.7 sampling from the
prior (``mcmc data=no``) under HKY+G4+I and GTR+G4 with its defaults, against draws from
:func:`phylo.marglik.parameters.model_prior` with ours (two-sample Kolmogorov-Smirnov tests on
every parameter).  In particular MrBayes's ``tratiopr = beta(1,1)`` makes kappa / (1 + kappa)
uniform, which is what ``kappa=beta:1,1`` means here.

MrBayes's chain is thinned to one draw in 10,000 generations (kappa's draws still have a lag-1
autocorrelation near 0.15; at one in 4,000 the base frequencies' KS p-values against their
exact Beta(1, 3) marginals fell to 0.003).  The thresholds (p > 1e-3) reject the near misses
one would write by mistake: kappa under Exp(1), LogNormal(0, 1) or Beta(2, 2) on
kappa/(1+kappa) (p < 1e-10 each), the shape under Exp(1.3) (p ~ 5e-15), pinv under
Beta(1.3, 1) (6e-12), base frequencies under Dirichlet(1.5) (p < 1e-3 on three of the four
parts)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from scipy import stats

from phylo.likelihood import model_spec
from phylo.marglik.parameters import model_prior

from ..conftest import require_program

LSET = {"HKY+G4+I": "lset nst=2 rates=invgamma ngammacat=4;", "GTR+G4": "lset nst=6 rates=gamma;"}
#: MrBayes's .p columns of our parameters (a simplex by its first part).
COLUMNS = {"kappa": "kappa", "shape": "alpha", "pinv": "pinvar", "freqs": "pi(A)",
           "rates": "r(A<->C)"}  # fmt: skip


def mrbayes_prior_draws(directory, model: str, ngen: int = 20_000_000, every: int = 10_000):
    """MrBayes's draws from the prior (its ``.p`` file, the first fifth dropped)."""
    exe = require_program("mb")
    data = "\n".join(f"    {n} ACGT" for n in "abcd")
    (directory / "prior.nex").write_text(
        f"""#NEXUS
begin data;
  dimensions ntax=4 nchar=4;
  format datatype=dna;
  matrix
{data}
  ;
end;
begin mrbayes;
  set autoclose=yes nowarn=yes seed=5 swapseed=6;
  {LSET[model]}
  prset brlenspr=unconstrained:exp(10.0);
  mcmcp data=no ngen={ngen} samplefreq={every} printfreq={ngen} diagnfreq={ngen}
        nruns=1 nchains=1 filename=prior;
  mcmc;
end;
"""
    )
    subprocess.run([exe, "prior.nex"], cwd=directory, capture_output=True, check=True)
    d = np.genfromtxt(directory / "prior.p", skip_header=1, names=True, deletechars="")
    return d[len(d) // 5 :]


@pytest.fixture(scope="module")
def mrbayes(tmp_path_factory):
    """One MrBayes run per model, shared by the tests of this module."""
    runs: dict = {}

    def get(model: str):
        if model not in runs:
            runs[model] = mrbayes_prior_draws(tmp_path_factory.mktemp("mb"), model)
        return runs[model]

    return get


def our_draws(model: str, n: int = 4000) -> dict:
    mp = model_prior(model_spec(model), None)
    Phi = mp.sample(np.random.default_rng(1), n)
    rows = [mp.values(phi) for phi in Phi]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def same(a, b) -> float:
    return stats.ks_2samp(np.asarray(a), np.asarray(b)).pvalue


def test_hky_gamma_invariant_priors(mrbayes):
    mb = mrbayes("HKY+G4+I")
    ours = our_draws("HKY+G4+I")
    assert same(mb["kappa"], ours["kappa"]) > 1e-3
    # the documented mapping: MrBayes's Beta(1,1) is uniform on kappa / (1 + kappa)
    assert stats.kstest(mb["kappa"] / (1 + mb["kappa"]), "uniform").pvalue > 1e-3
    assert stats.kstest(ours["kappa"] / (1 + ours["kappa"]), "uniform").pvalue > 1e-3
    assert same(mb["alpha"], ours["shape"]) > 1e-3
    assert same(mb["pinvar"], ours["pinv"]) > 1e-3
    for i, s in enumerate("ACGT"):
        assert same(mb[f"pi({s})"], ours["freqs"][:, i]) > 1e-3


def test_gtr_exchangeabilities_prior(mrbayes):
    mb = mrbayes("GTR+G4")
    ours = our_draws("GTR+G4")
    # MrBayes prints the exchangeabilities as the simplex it samples: r(A<->C) ... r(G<->T)
    for i, pair in enumerate(["A<->C", "A<->G", "A<->T", "C<->G", "C<->T", "G<->T"]):
        assert same(mb[f"r({pair})"], ours["rates"][:, i]) > 1e-3
    for i, s in enumerate("ACGT"):
        assert same(mb[f"pi({s})"], ours["freqs"][:, i]) > 1e-3
    assert same(mb["alpha"], ours["shape"]) > 1e-3


@pytest.mark.parametrize("model", sorted(LSET))
def test_mrbayes_prints_the_parameters_we_integrate(mrbayes, model):
    """Every parameter we integrate by default is one MrBayes samples under the same model
    (so the comparison above covers them all, and none is free here but fixed there)."""
    names = set(mrbayes(model).dtype.names)
    free = set(model_prior(model_spec(model), None).free)
    assert {COLUMNS[f] for f in free} <= names
    assert {f for f, c in COLUMNS.items() if c in names} == free
