"""The unordered set estimator (Kool, van Hoof & Welling 2020), checked by exact enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml.discrete import Categorical
from phylo.ml.enumeration import (
    exact_moments,
    ordered_samples_without_replacement,
    plackett_luce_log_prob,
    unordered_samples_without_replacement,
)
from phylo.ml.gumbel import gumbel_top_k
from phylo.ml.rao_blackwell import stochastic_sum_and_sample_gradient
from phylo.ml.unordered_set import (
    builtin_baseline,
    log_leave_one_out_ratios,
    sample_categorical_set,
    stochastic_beam_search,
    unordered_set_estimate,
    unordered_set_gradient,
)


def complex_step_gradient(fun, theta, h=1e-30):
    """Derivative of a real-analytic function to machine precision (no subtraction)."""
    theta = np.asarray(theta, dtype=float)
    out = np.empty(theta.size)
    for j in range(theta.size):
        t = theta.astype(complex)
        t[j] += 1j * h
        out[j] = fun(t).imag / h
    return out


def expected_value(theta, f):
    p = np.exp(theta - theta.real.max())
    return np.sum(p / p.sum() * f)


def brute_set_log_prob(log_p, domain, subset):
    """log P(subset drawn first) from `domain` (indices), renormalised, by summing orderings."""
    if len(subset) == 0:
        return 0.0
    dom = list(domain)
    sub_lp = log_p[dom] - logsumexp(log_p[dom])
    pos = {c: i for i, c in enumerate(dom)}
    return logsumexp(
        [
            plackett_luce_log_prob(sub_lp, [pos[c] for c in order])
            for order in itertools.permutations(subset)
        ]
    )


@pytest.fixture
def problem():
    rng = np.random.default_rng(20200426)
    n = 6
    theta = rng.normal(scale=1.5, size=n)
    f = rng.normal(size=n) + 2.0
    return Categorical(theta), f


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_ratios_match_brute_force_definitions(problem, k):
    dist, _ = problem
    lp = dist.log_probs
    rng = np.random.default_rng(k)
    sample = sorted(rng.choice(dist.n, size=k, replace=False))
    ratios = log_leave_one_out_ratios(lp[sample])
    everything = range(dist.n)
    log_ps = brute_set_log_prob(lp, everything, sample)
    assert ratios.log_prob_set == pytest.approx(log_ps, abs=1e-12)
    for a, s in enumerate(sample):
        without_s = [c for c in everything if c != s]
        rest_s = [c for c in sample if c != s]
        log_ps_s = brute_set_log_prob(lp, without_s, rest_s)
        assert ratios.log_r1[a] == pytest.approx(log_ps_s - log_ps, abs=1e-12)
        for b, s2 in enumerate(sample):
            if s2 == s:
                assert ratios.log_r2[a, b] == 0.0
                continue
            dom2 = [c for c in without_s if c != s2]
            rest2 = [c for c in rest_s if c != s2]
            expected = brute_set_log_prob(lp, dom2, rest2) - log_ps_s
            assert ratios.log_r2[a, b] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "k,scale,rest", [(3, 1.0, 0.3), (8, 2.0, 1e-9), (12, 0.5, 0.9), (5, 3.0, 1e-3)]
)
def test_exact_recursion_and_quadrature_agree(k, scale, rest):
    rng = np.random.default_rng(k)
    w = np.exp(rng.normal(scale=scale, size=k))
    w = (1.0 - rest) * w / w.sum()
    log_p, log_rest = np.log(w), np.log(rest)
    a = log_leave_one_out_ratios(log_p, log_rest, method="exact")
    b = log_leave_one_out_ratios(log_p, log_rest, method="quadrature")
    assert a.log_prob_set == pytest.approx(b.log_prob_set, abs=1e-10)
    np.testing.assert_allclose(a.log_r1, b.log_r1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.log_r2, b.log_r2, rtol=0, atol=1e-10)


def test_whole_support_gives_unit_ratios_and_the_exact_gradient(problem):
    dist, f = problem
    everything = dist.enumerate()
    ratios = log_leave_one_out_ratios(dist.log_probs, log_rest=-np.inf)
    assert ratios.log_prob_set == 0.0
    assert np.all(ratios.log_r1 == 0.0)
    grad = unordered_set_gradient(dist.log_probs, f, dist.score(everything), log_rest=-np.inf)
    exact = complex_step_gradient(lambda t: expected_value(t, f), dist.logits)
    np.testing.assert_allclose(grad, exact, rtol=0, atol=1e-13)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("baseline", [None, "builtin", 1.7])
def test_gradient_is_unbiased_by_enumeration(problem, k, baseline):
    dist, f = problem
    sets, log_prob = unordered_samples_without_replacement(dist.log_probs, k)
    assert logsumexp(log_prob) == pytest.approx(0.0, abs=1e-13)
    estimates = np.array(
        [
            unordered_set_gradient(
                dist.log_probs[s],
                f[s],
                dist.score(s),
                baseline=baseline,
                log_rest=dist.log_mass_outside(s),
            )
            for s in sets
        ]
    )
    mean, _ = exact_moments(log_prob, estimates)
    exact = complex_step_gradient(lambda t: expected_value(t, f), dist.logits)
    np.testing.assert_allclose(mean, exact, rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [1, 3])
def test_value_estimate_and_direct_dependence_are_unbiased(problem, k):
    dist, f = problem
    c = np.linspace(-1.0, 1.0, dist.n)

    def f_theta(theta):  # f depends on theta directly: f(x) + c_x theta_x^2
        return f + c * theta**2

    def objective(theta):
        return expected_value(theta, f_theta(theta))

    theta = dist.logits
    sets, log_prob = unordered_samples_without_replacement(dist.log_probs, k)
    grads, values = [], []
    for s in sets:
        vg = np.zeros((k, dist.n))
        vg[np.arange(k), s] = 2.0 * c[s] * theta[s]
        grads.append(
            unordered_set_gradient(
                dist.log_probs[s],
                f_theta(theta)[s],
                dist.score(s),
                value_grads=vg,
                log_rest=dist.log_mass_outside(s),
            )
        )
        values.append(
            unordered_set_estimate(
                dist.log_probs[s], f_theta(theta)[s], log_rest=dist.log_mass_outside(s)
            )
        )
    mean_grad, _ = exact_moments(log_prob, np.array(grads))
    mean_value, _ = exact_moments(log_prob, np.array(values))
    np.testing.assert_allclose(
        mean_grad, complex_step_gradient(objective, theta), rtol=0, atol=1e-10
    )
    assert mean_value[0] == pytest.approx(objective(theta), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_estimator_is_the_conditional_expectation_of_stochastic_sum_and_sample(problem, k):
    """Kool et al. 2020: e_US(S) = E[e_SSAS(B) | set(B) = S], checked exactly for every S."""
    dist, f = problem
    g = f[:, None] * dist.score(dist.enumerate())
    orders, log_prob = ordered_samples_without_replacement(dist.log_probs, k)
    by_set = {}
    for b, lp in zip(orders, log_prob):
        ssas = stochastic_sum_and_sample_gradient(dist.log_probs[b], f[b], dist.score(b))
        by_set.setdefault(tuple(sorted(b)), []).append((lp, ssas))
    for s, items in by_set.items():
        lps = np.array([lp for lp, _ in items])
        cond = np.exp(lps - logsumexp(lps)) @ np.array([e for _, e in items])
        s = np.array(s)
        us = unordered_set_gradient(
            dist.log_probs[s], f[s], dist.score(s), baseline=None, log_rest=dist.log_mass_outside(s)
        )
        np.testing.assert_allclose(us, cond, rtol=0, atol=1e-12)
    assert g.shape == (dist.n, dist.n)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_rao_blackwell_variance_orderings_hold_exactly(problem, k):
    """Conditioning on the unordered set cannot increase the covariance (Rao-Blackwell)."""
    dist, f = problem
    orders, log_prob = ordered_samples_without_replacement(dist.log_probs, k)
    single, ssas, us = [], [], []
    for b in orders:
        single.append(f[b[0]] * dist.score(b[:1])[0])
        ssas.append(stochastic_sum_and_sample_gradient(dist.log_probs[b], f[b], dist.score(b)))
        us.append(
            unordered_set_gradient(
                dist.log_probs[b],
                f[b],
                dist.score(b),
                baseline=None,
                log_rest=dist.log_mass_outside(b),
            )
        )
    m1, c_single = exact_moments(log_prob, np.array(single))
    m2, c_ssas = exact_moments(log_prob, np.array(ssas))
    m3, c_us = exact_moments(log_prob, np.array(us))
    np.testing.assert_allclose(m1, m3, atol=1e-12)
    np.testing.assert_allclose(m2, m3, atol=1e-12)
    assert np.linalg.eigvalsh(c_single - c_us).min() > -1e-12
    assert np.linalg.eigvalsh(c_ssas - c_us).min() > -1e-12
    assert np.trace(c_single) > np.trace(c_us)


def test_builtin_baseline_can_raise_the_variance():
    """The built-in baseline keeps the estimator unbiased but is no variance guarantee."""
    dist = Categorical([0.69116838, 1.64323629, 0.66087415, -2.60631446])
    f = np.array([0.90535587, 0.44637457, -0.53695324, 0.5811181])
    sets, log_prob = unordered_samples_without_replacement(dist.log_probs, 2)

    def covariance(baseline):
        est = [
            unordered_set_gradient(
                dist.log_probs[s],
                f[s],
                dist.score(s),
                baseline=baseline,
                log_rest=dist.log_mass_outside(s),
            )
            for s in sets
        ]
        return exact_moments(log_prob, np.array(est))

    (m0, c0), (m1, c1) = covariance(None), covariance("builtin")
    np.testing.assert_allclose(m0, m1, atol=1e-12)
    assert np.trace(c1) > 1.5 * np.trace(c0)


def test_builtin_baseline_uses_second_order_ratios(problem):
    dist, f = problem
    s = np.array([0, 2, 5])
    ratios = log_leave_one_out_ratios(dist.log_probs[s])
    b = builtin_baseline(dist.log_probs[s], f[s], ratios)
    # b(S, s) = p(s) f(s) + (1 - p(s)) * [unordered set estimate of E_{D minus s} f from S - s]
    for a, x in enumerate(s):
        others = [c for c in s if c != x]
        lp = dist.log_probs.copy()
        lp[x] = -np.inf
        lp = lp - logsumexp(lp)
        inner = unordered_set_estimate(lp[others], f[others])
        expected = dist.probs[x] * f[x] + (1.0 - dist.probs[x]) * inner
        assert b[a] == pytest.approx(expected, abs=1e-13)


def test_gumbel_top_k_draws_the_plackett_luce_distribution():
    rng = np.random.default_rng(7)
    dist = Categorical([0.3, -0.4, 1.1, 0.0])
    orders, log_prob = ordered_samples_without_replacement(dist.log_probs, 2)
    index = {tuple(o): i for i, o in enumerate(orders)}
    counts = np.zeros(len(orders))
    n = 20000
    for _ in range(n):
        counts[index[tuple(gumbel_top_k(dist.logits, 2, rng))]] += 1
    assert stats.chisquare(counts, n * np.exp(log_prob)).pvalue > 1e-3


def test_sample_categorical_set_reports_the_outside_mass():
    rng = np.random.default_rng(3)
    logits = np.array([2.0, 1.0, -1.0, 0.5, -3.0])
    idx, log_rest = sample_categorical_set(logits, 3, rng)
    p = np.exp(logits - logsumexp(logits))
    assert len(set(idx)) == 3
    assert np.exp(log_rest) == pytest.approx(1.0 - p[idx].sum(), abs=1e-15)


# --- stochastic beam search ----------------------------------------------------------------


def _toy_model(seed=11):
    """Sequences over {a, b}, stopped by 'E' or at length 2; conditionals depend on the prefix."""
    rng = np.random.default_rng(seed)
    table = {}
    for prefix in [(), ("a",), ("b",)]:
        logits = rng.normal(size=3)
        table[prefix] = logits - logsumexp(logits)

    def expand(prefix):
        if (prefix and prefix[-1] == "E") or len(prefix) == 2:
            return [], []
        return ["a", "b", "E"], table[prefix]

    complete = {}

    def walk(prefix, lp):
        tokens, lq = expand(prefix)
        if not tokens:
            complete[prefix] = lp
        for t, q in zip(tokens, lq):
            walk(prefix + (t,), lp + q)

    walk((), 0.0)
    return expand, complete


def test_stochastic_beam_search_samples_sets_without_replacement():
    expand, complete = _toy_model()
    seqs = list(complete)
    log_p = np.array([complete[s] for s in seqs])
    assert logsumexp(log_p) == pytest.approx(0.0, abs=1e-12)
    k = 3
    sets, log_prob = unordered_samples_without_replacement(log_p, k)
    index = {tuple(s): i for i, s in enumerate(sets)}
    rng = np.random.default_rng(2019)
    counts = np.zeros(len(sets))
    n = 4000
    for _ in range(n):
        beam = stochastic_beam_search(expand, k, rng)
        assert np.all(np.diff(beam.keys) <= 0)
        np.testing.assert_allclose(beam.log_probs, [complete[s] for s in beam.sequences])
        counts[index[tuple(sorted(seqs.index(s) for s in beam.sequences))]] += 1
    expected = n * np.exp(log_prob)
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    expect = np.append(expected[big], expected[~big].sum())
    assert stats.chisquare(observed, expect).pvalue > 1e-3


def test_stochastic_beam_search_returns_everything_when_k_is_large():
    expand, complete = _toy_model()
    beam = stochastic_beam_search(expand, 50, np.random.default_rng(0))
    assert sorted(beam.sequences) == sorted(complete)


def test_stochastic_beam_search_rejects_unnormalised_conditionals():
    def expand(prefix):
        return ([], []) if prefix else (["a", "b"], np.log([0.5, 0.6]))

    with pytest.raises(InputError):
        stochastic_beam_search(expand, 2, np.random.default_rng(0))


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        log_leave_one_out_ratios(np.log([0.7, 0.6]))
    with pytest.raises(InputError):
        gumbel_top_k([0.0, -np.inf, 1.0], 3, np.random.default_rng(0))
    with pytest.raises(InputError):
        log_leave_one_out_ratios(np.log([0.1, 0.2]), method="magic")


class TwoStepModel:
    """A structured distribution: y1 ~ softmax(theta[0]), y2 | y1 ~ softmax(theta[1 + y1]).

    It offers what a tree-topology distribution would: a sequential factorisation for stochastic
    beam search, log-probabilities of complete outcomes, and scores with respect to all of its
    parameters (here the 4 x 3 table of logits, flattened).
    """

    def __init__(self, theta):
        self.theta = np.asarray(theta)

    def conditional(self, row):
        t = self.theta[row]
        return t - logsumexp(t)

    def expand(self, prefix):
        if len(prefix) == 2:
            return [], []
        return [0, 1, 2], self.conditional(0 if not prefix else 1 + prefix[0])

    def log_prob(self, y):
        return self.conditional(0)[y[0]] + self.conditional(1 + y[0])[y[1]]

    def score(self, y):
        out = np.zeros_like(self.theta)
        for row, token in ((0, y[0]), (1 + y[0], y[1])):
            out[row] -= np.exp(self.conditional(row))
            out[row, token] += 1.0
        return out.ravel()


def test_a_structured_distribution_plugs_in_unbiasedly():
    rng = np.random.default_rng(31)
    theta = rng.normal(size=(4, 3))
    model = TwoStepModel(theta)
    outcomes = [(a, b) for a in range(3) for b in range(3)]
    f = rng.normal(size=len(outcomes)) + 1.0
    log_p = np.array([model.log_prob(y) for y in outcomes])
    assert logsumexp(log_p) == pytest.approx(0.0, abs=1e-13)

    def objective(t):
        t = t.reshape(4, 3)
        lsm = lambda row: row - np.log(np.sum(np.exp(row)))  # noqa: E731
        return sum(np.exp(lsm(t[0])[a] + lsm(t[1 + a])[b]) * f[3 * a + b] for a, b in outcomes)

    exact = complex_step_gradient(objective, theta.ravel())
    k = 3
    sets, log_prob = unordered_samples_without_replacement(log_p, k)
    estimates = []
    for s in sets:
        ys = [outcomes[i] for i in s]
        lp = np.array([model.log_prob(y) for y in ys])
        scores = np.array([model.score(y) for y in ys])
        estimates.append(unordered_set_gradient(lp, f[s], scores))
    mean, _ = exact_moments(log_prob, np.array(estimates))
    np.testing.assert_allclose(mean, exact, rtol=0, atol=1e-10)
    # and stochastic beam search produces such sets from the factorisation alone
    beam = stochastic_beam_search(model.expand, k, rng)
    np.testing.assert_allclose(
        beam.log_probs, [model.log_prob(y) for y in beam.sequences], atol=1e-14
    )
    assert len(set(beam.sequences)) == k
