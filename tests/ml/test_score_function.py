"""REINFORCE, its baselines and VIMCO, checked by enumerating every possible sample."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.ml.discrete import Categorical
from phylo.ml.enumeration import exact_moments, samples_with_replacement
from phylo.ml.score_function import MovingAverageBaseline, reinforce, reinforce_leave_one_out, vimco


def complex_step_gradient(fun, theta, h=1e-30):
    theta = np.asarray(theta, dtype=float)
    out = np.empty(theta.size)
    for j in range(theta.size):
        t = theta.astype(complex)
        t[j] += 1j * h
        out[j] = fun(t).imag / h
    return out


def log_softmax(theta):
    return theta - np.log(np.sum(np.exp(theta - theta.real.max()))) - theta.real.max()


@pytest.fixture
def problem():
    rng = np.random.default_rng(1992)
    theta = rng.normal(size=5)
    f = rng.normal(size=5) + 3.0
    return Categorical(theta), f


@pytest.mark.parametrize("baseline", [0.0, 2.5, -7.0])
def test_reinforce_is_unbiased(problem, baseline):
    dist, f = problem
    x = dist.enumerate()
    estimates = np.array([reinforce(f[[i]], dist.score([i]), baseline) for i in x])
    mean, _ = exact_moments(dist.log_probs, estimates)
    exact = complex_step_gradient(lambda t: np.sum(np.exp(log_softmax(t)) * f), dist.logits)
    np.testing.assert_allclose(mean, exact, rtol=0, atol=1e-10)


def test_reinforce_with_direct_dependence_is_unbiased(problem):
    dist, f = problem
    c = np.linspace(0.5, -0.5, dist.n)

    def objective(t):
        return np.sum(np.exp(log_softmax(t)) * (f + c * np.sin(t)))

    theta = dist.logits
    estimates = []
    for i in dist.enumerate():
        vg = np.zeros((1, dist.n))
        vg[0, i] = c[i] * np.cos(theta[i])
        estimates.append(
            reinforce([f[i] + c[i] * np.sin(theta[i])], dist.score([i]), value_grads=vg)
        )
    mean, _ = exact_moments(dist.log_probs, np.array(estimates))
    np.testing.assert_allclose(mean, complex_step_gradient(objective, theta), rtol=0, atol=1e-10)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_leave_one_out_baseline_is_unbiased(problem, m):
    dist, f = problem
    samples, log_prob = samples_with_replacement(dist.log_probs, m)
    estimates = np.array([reinforce_leave_one_out(f[s], dist.score(s)) for s in samples])
    mean, _ = exact_moments(log_prob, estimates)
    exact = complex_step_gradient(lambda t: np.sum(np.exp(log_softmax(t)) * f), dist.logits)
    np.testing.assert_allclose(mean, exact, rtol=0, atol=1e-10)
    # the same estimator written with explicit leave-one-out means
    s = samples[len(samples) // 3]
    loo = np.array([np.mean(np.delete(f[s], i)) for i in range(m)])
    np.testing.assert_allclose(
        reinforce_leave_one_out(f[s], dist.score(s)),
        reinforce(f[s], dist.score(s), loo),
        rtol=0,
        atol=1e-14,
    )


def test_moving_average_baseline_follows_its_recursion():
    b = MovingAverageBaseline(decay=0.75)
    assert b.update([2.0, 4.0]) == 3.0
    assert b.update([7.0]) == pytest.approx(0.75 * 3.0 + 0.25 * 7.0)
    assert b.value == pytest.approx(4.0)
    with pytest.raises(InputError):
        MovingAverageBaseline(decay=1.0)


def _vimco_problem(seed=4):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=4)
    g = rng.normal(size=4)  # log p(x, h) up to a constant
    return theta, g


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("control", ["geometric", "arithmetic"])
def test_vimco_is_unbiased_for_the_multisample_bound(K, control):
    theta, g = _vimco_problem()
    dist = Categorical(theta)
    samples, log_prob = samples_with_replacement(dist.log_probs, K)

    def bound(t):  # E_{h_1..K ~ q_t} log (1/K) sum_j p(h_j) / q_t(h_j)
        lq = log_softmax(t)
        total = 0.0
        for s in samples:
            log_w = g[s] - lq[s]
            total = total + np.exp(np.sum(lq[s])) * (
                np.log(np.sum(np.exp(log_w - log_w.real.max()))) + log_w.real.max() - np.log(K)
            )
        return total

    estimates, objectives = [], []
    for s in samples:
        scores = dist.score(s)
        obj, grad = vimco(
            g[s] - dist.log_probs[s], scores, log_weight_grads=-scores, control=control
        )
        estimates.append(grad)
        objectives.append(obj)
    mean, _ = exact_moments(log_prob, np.array(estimates))
    np.testing.assert_allclose(mean, complex_step_gradient(bound, theta), rtol=0, atol=1e-10)
    assert exact_moments(log_prob, np.array(objectives))[0][0] == pytest.approx(
        bound(theta.astype(complex)).real, abs=1e-12
    )


def test_vimco_without_direct_dependence_is_unbiased():
    theta, g = _vimco_problem(9)
    dist = Categorical(theta)
    K = 3
    samples, log_prob = samples_with_replacement(dist.log_probs, K)

    def objective(t):
        lq = log_softmax(t)
        return sum(np.exp(np.sum(lq[s])) * (logsumexp(g[s]) - np.log(K)) for s in samples)

    estimates = [vimco(g[s], dist.score(s))[1] for s in samples]
    mean, _ = exact_moments(log_prob, np.array(estimates))
    np.testing.assert_allclose(mean, complex_step_gradient(objective, theta), rtol=0, atol=1e-10)


def test_vimco_learning_signal_matches_the_paper_formula():
    log_w = np.log(np.array([0.5, 2.0, 1.0]))
    scores = np.eye(3)
    obj, grad = vimco(log_w, scores)
    w = np.exp(log_w)
    L = np.log(w.mean())
    expected = []
    for j in range(3):
        others = np.delete(w, j)
        geo = np.exp(np.mean(np.log(others)))
        expected.append(L - np.log((others.sum() + geo) / 3))
    assert obj == pytest.approx(L)
    np.testing.assert_allclose(grad, expected, rtol=1e-14)


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        vimco([0.0], np.zeros((1, 2)))
    with pytest.raises(InputError):
        reinforce_leave_one_out([1.0], np.zeros((1, 2)))
    with pytest.raises(InputError):
        reinforce([1.0, 2.0], np.zeros((3, 2)))
