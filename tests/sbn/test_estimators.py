"""SBN estimators against explicit enumeration of rootings and topologies (5-7 taxa)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.sbn import fit

from . import brute
from .samples import all_newicks, random_training

UNROOTED = ["ccd", "sa", "em", "em-alpha"]


def _fit(sample, method, **kw):
    if method == "em-alpha":
        kw.setdefault("alpha", 0.3)
    return fit(sample, method, **kw)


@pytest.mark.parametrize("n,n_trees", [(5, 8), (6, 25)])
@pytest.mark.parametrize("method", UNROOTED + ["srf"])
def test_probabilities_sum_to_one_unrooted(n, n_trees, method):
    rng = np.random.default_rng(n * 100 + n_trees)
    _, _, sample = random_training(n, n_trees, rng)
    model = _fit(sample, method)
    pool, nwk = all_newicks(n)
    assert len(pool) == {5: 15, 6: 105}[n]
    p = model.prob(nwk)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    # an unseen subsplit gives probability zero, and trees of the sample are positive
    assert np.all(model.prob(sample) > 0)


@pytest.mark.parametrize("n", [5, 6])
@pytest.mark.parametrize("method", ["ccd", "sa", "em-alpha"])
def test_probabilities_sum_to_one_rooted(n, method):
    rng = np.random.default_rng(7 + n)
    _, _, sample = random_training(n, 30, rng, rooted=True)
    model = _fit(sample, method)
    pool, nwk = all_newicks(n, rooted=True)
    assert len(pool) == {5: 105, 6: 945}[n]
    assert model.prob(nwk).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n,method", [(5, "sa"), (6, "em"), (6, "em-alpha"), (6, "ccd"), (7, "em")])
def test_log_prob_equals_sum_over_explicit_rootings(n, method):
    rng = np.random.default_rng(n)
    _, _, sample = random_training(n, 30, rng)
    model = _fit(sample, method)
    theta = brute.model_theta(model)
    pool, nwk = all_newicks(n)
    clade_mode = method == "ccd"
    expected = np.array([brute.tree_prob(theta, brute.rootings(t), clade_mode) for t in pool])
    np.testing.assert_allclose(model.prob(nwk), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rooted", [False, True])
@pytest.mark.parametrize("clade_mode", [False, True])
def test_simple_average_is_the_average_over_rootings(rooted, clade_mode):
    rng = np.random.default_rng(3)
    trees, w, sample = random_training(6, 20, rng, rooted=rooted)
    model = _fit(sample, "ccd" if clade_mode else "sa")
    expected = brute.simple_average(trees, w, clade_mode, rooted)
    got = brute.model_theta(model)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12)


def test_em_equals_em_by_enumeration():
    rng = np.random.default_rng(11)
    trees, w, sample = random_training(6, 30, rng)
    theta = brute.simple_average(trees, w)
    done = 0
    for it in (1, 2, 5):
        while done < it:
            theta, _ = brute.em_step(theta, trees, w)
            done += 1
        model = fit(sample, "em", max_iter=it, min_iter=0, tol=0.0)
        got = brute.model_theta(model)
        for key, value in theta.items():
            assert got[key] == pytest.approx(value, rel=1e-10, abs=1e-15)
        assert model.fit_info["iterations"] == it


@pytest.mark.parametrize(
    "method,kw",
    [
        ("em", {}),
        ("em-alpha", {"alpha": 0.5}),
        ("em-alpha", {"alpha": 0.5, "alpha_form": "bito"}),
        ("em-alpha", {"alpha": 1e-4}),
    ],
)
def test_em_never_lowers_its_objective(method, kw):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        _, _, sample = random_training(7, 60, rng)
        model = fit(sample, method, max_iter=200, min_iter=0, tol=0.0, **kw)
        trace = np.array(model.fit_info["objective"])
        assert len(trace) == 200
        assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))
        assert trace[-1] > trace[0]


def test_em_objective_is_the_log_likelihood():
    rng = np.random.default_rng(5)
    trees, w, sample = random_training(6, 30, rng)
    model = fit(sample, "em", max_iter=4, min_iter=0, tol=0.0)
    theta = brute.simple_average(trees, w)
    for k in range(4):
        theta, ll = brute.em_step(theta, trees, w)
        assert model.fit_info["objective"][k] == pytest.approx(ll, rel=1e-12)


def test_em_stopping_rule_of_the_paper():
    rng = np.random.default_rng(2)
    _, _, sample = random_training(7, 60, rng)
    model = fit(sample, "em", max_iter=1000, min_iter=50, tol=1e-5)
    trace = model.fit_info["objective"]
    k = len(trace)
    # stops at the first k > min_iter (0-based) whose change is below tol, or at max_iter
    assert k >= 52
    changes = np.abs(np.diff(trace))
    assert changes[-1] < 1e-5 or k == 1000
    assert np.all(changes[50:-1] >= 1e-5)


def test_ccd_is_larget_rooted_at_any_outgroup():
    """Unrooted CCD = Larget's CCD rooted at a fixed leaf, whichever leaf."""
    rng = np.random.default_rng(4)
    trees, w, sample = random_training(6, 25, rng)
    model = fit(sample, "ccd")
    pool, nwk = all_newicks(6)
    q = model.prob(nwk)

    full = frozenset(range(6))
    for outgroup in (0, 4):
        # counts of (clade without the outgroup -> subsplit) over the training trees
        num, den = {}, {}
        for t, wt in zip(trees, w):
            for events in brute.rootings(t):
                if events[0][2] != frozenset([frozenset([outgroup]), full - {outgroup}]):
                    continue
                for _, clade, sub in events[1:]:
                    num[(clade, sub)] = num.get((clade, sub), 0) + wt
                    den[clade] = den.get(clade, 0) + wt
        for t, qt in zip(pool, q):
            events = next(
                e
                for e in brute.rootings(t)
                if e[0][2] == frozenset([frozenset([outgroup]), full - {outgroup}])
            )
            p = 1.0
            for _, clade, sub in events[1:]:
                p *= num.get((clade, sub), 0.0) / den[clade] if clade in den else 0.0
            assert qt == pytest.approx(p, rel=1e-12, abs=1e-15)


def test_unseen_subsplit_gives_minus_infinity():
    rng = np.random.default_rng(9)
    _, _, sample = random_training(6, 5, rng)
    model = fit(sample, "em-alpha")
    pool, nwk = all_newicks(6)
    lp = model.log_prob(nwk)
    assert np.isneginf(lp).any() and np.isfinite(lp).any()
    assert math.isclose(np.exp(lp[np.isfinite(lp)]).sum(), 1.0, rel_tol=1e-12)


def test_fit_by_name_takes_one_set_of_options_for_every_method():
    rng = np.random.default_rng(7)
    _, _, sample = random_training(5, 6, rng)
    options = {"alpha": 0.3, "max_iter": 5, "min_iter": 0, "tol": 0.0}
    # the SBN methods use them ...
    em = fit(sample, "em", **options)
    assert em.fit_info["iterations"] == 5
    a = fit(sample, "em-alpha", **options)
    assert a.fit_info["alpha"] == 0.3
    assert not np.array_equal(a.log_theta, fit(sample, "em-alpha", max_iter=5).log_theta)
    # ... srf and ccd have none and give what they give without them
    for method in ("srf", "ccd"):
        with_options = fit(sample, method, **options)
        assert with_options.method == method
        np.testing.assert_array_equal(with_options.prob(sample), fit(sample, method).prob(sample))
    # a misspelt option is an error for every method, an unknown method names the known ones
    for method in ("srf", "ccd", "sa"):
        with pytest.raises(TypeError, match="alpah"):
            fit(sample, method, alpah=0.3)
    with pytest.raises(InputError, match="srf, ccd, sa, em, em-alpha"):
        fit(sample, "sbn")
