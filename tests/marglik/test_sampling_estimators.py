"""The sampling estimators (power posteriors, one posterior sample, nested sampling, naive
Monte Carlo) against the exact 3-taxon marginal likelihood computed by quadrature."""

import numpy as np
import pytest

from phylo.marglik.estimators import REGISTRY, get, names, run

from .exact import EXAMPLE, example_posterior

# fast settings for the 3-taxon problem (defaults are sized for DS1)
FAST = {
    "ss": dict(samples=300),
    "gss": dict(samples=300, pilot=500),
    "ps": dict(samples=300),
    "psm": dict(samples=300),
    "bs": dict(samples=4000, warmup=500),
    "hm": dict(samples=2000, warmup=300),
    "shm": dict(samples=2000, warmup=300),
    "cpo": dict(samples=2000, warmup=300, draws=500),
    "ppd": dict(samples=2000, warmup=300, draws=500),
    "ns": dict(length=100),
    "nmc": dict(samples=100_000),
}
TINY = {
    "ss": dict(temperatures=6, samples=30, burnin=10, warmup=60),
    "gss": dict(temperatures=6, samples=30, burnin=10, warmup=60, pilot=60),
    "ps": dict(temperatures=6, samples=30, burnin=10, warmup=60),
    "psm": dict(temperatures=6, samples=30, burnin=10, warmup=60),
    "bs": dict(samples=100, warmup=60),
    "hm": dict(samples=100, warmup=60),
    "shm": dict(samples=100, warmup=60),
    "cpo": dict(samples=100, warmup=60, draws=20),
    "ppd": dict(samples=100, warmup=60, draws=20),
    "ns": dict(live=10, length=10, precision=1e-3),
    "nmc": dict(samples=2000),
}
MINE = sorted(FAST)
CONSISTENT = [m for m in MINE if m in ("ss", "gss", "ps", "psm", "bs", "ns", "nmc")]


def test_registered_with_families_and_flags():
    all_names = names()
    for m in MINE:
        assert m in all_names
    fam = {m: get(m).family for m in MINE}
    assert {fam[m] for m in ("ss", "gss", "ps", "psm")} == {"power posteriors"}
    assert {fam[m] for m in ("bs", "hm", "shm", "cpo", "ppd")} == {"one posterior sample"}
    assert {fam[m] for m in ("ns", "nmc")} == {"other sampling"}
    for m in MINE:
        assert REGISTRY[m].consistent == (m in CONSISTENT)


@pytest.mark.parametrize("method", CONSISTENT)
def test_consistent_estimators_match_quadrature(method):
    post, exact = example_posterior()
    est = run(method, post, np.random.default_rng(11), **FAST[method])
    assert np.isfinite(est.se) and est.se > 0
    assert est.n_evaluations > 0 and est.seconds > 0
    # 4 standard errors, plus 0.01 for the trapezoid rule's discretisation bias (ps)
    assert abs(est.log_ml - exact) < 4 * est.se + 0.01, (est.log_ml, est.se, exact)


@pytest.mark.parametrize("method", MINE)
def test_same_seed_same_number(method):
    post, _ = example_posterior()
    a = run(method, post, np.random.default_rng(5), **TINY[method])
    b = run(method, post, np.random.default_rng(5), **TINY[method])
    assert a.log_ml == b.log_ml and np.isfinite(a.log_ml)
    c = run(method, post, np.random.default_rng(6), **TINY[method])
    assert c.log_ml != a.log_ml


def test_harmonic_mean_is_biased_upwards():
    # with 440 sites the posterior is far narrower than the prior and the harmonic mean
    # misses the low-likelihood draws that carry its expectation
    post, exact = example_posterior([s * 20 for s in EXAMPLE])
    values = np.array(
        [run("hm", post, np.random.default_rng(100 + r), **FAST["hm"]).log_ml for r in range(6)]
    )
    excess = values - exact
    assert excess.mean() > 0
    assert excess.mean() > 2 * values.std(ddof=1), (excess.mean(), values.std(ddof=1))


def test_ppd_exceeds_cpo_on_the_same_draws():
    # per site, the arithmetic mean of the likelihood is at least its harmonic mean
    post, _ = example_posterior()
    a = run("ppd", post, np.random.default_rng(3), **FAST["ppd"]).log_ml
    b = run("cpo", post, np.random.default_rng(3), **FAST["cpo"]).log_ml
    assert a > b


def test_gss_more_precise_than_ss_at_equal_settings():
    post, _ = example_posterior()
    s = run("ss", post, np.random.default_rng(1), samples=300)
    g = run("gss", post, np.random.default_rng(1), samples=300, pilot=500)
    assert g.se < s.se


@pytest.mark.parametrize("method", ["ss", "gss", "psm", "bs"])
def test_concentrated_posterior_matches_quadrature(method):
    # 440 sites: the power posteriors travel far from the prior to a narrow posterior
    post, exact = example_posterior([s * 20 for s in EXAMPLE])
    est = run(method, post, np.random.default_rng(12), **FAST[method])
    assert abs(est.log_ml - exact) < 4 * est.se + 0.02, (est.log_ml, est.se, exact)
