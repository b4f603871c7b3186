"""ESS, PSRF, the MSER burn-in rule and parameter files, against independent code.

Every reference below is written from the published definition with plain Python loops
(no FFT, no numpy reductions): Geyer's (1992) initial monotone sequence estimator, the
Tracer/MrBayes estimator transcribed from its definition, Gelman and Rubin's PSRF in the form
MrBayes prints, and White's MSER-5.  AR(1) series check the ESS against its closed form
``n (1 - phi) / (1 + phi)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.trees.traces import autocovariance, ess, mser_truncation, psrf, read_parameters


def gammas(x, unbiased=False):
    n = len(x)
    mu = sum(x) / n
    out = []
    for k in range(n):
        s = 0.0
        for i in range(n - k):
            s += (x[i] - mu) * (x[i + k] - mu)
        out.append(s / ((n - k) if unbiased else n))
    return out


def geyer_reference(x):
    """Geyer (1992): Gamma_m = gamma_2m + gamma_2m+1, positive and made monotone."""
    x = [float(v) for v in x]
    n = len(x)
    g = gammas(x)
    total = 0.0
    smallest = math.inf
    m = 0
    while 2 * m + 1 < n:
        big = g[2 * m] + g[2 * m + 1]
        if big <= 0:
            break
        smallest = min(smallest, big)
        total += smallest
        m += 1
    return n * g[0] / (-g[0] + 2.0 * total)


def tracer_reference(x):
    """Tracer's and MrBayes's ESS: gamma_k over n - k, pairs (k-1, k) for even k."""
    x = [float(v) for v in x]
    n = len(x)
    g = gammas(x, unbiased=True)
    var = g[0]
    lag = 2
    while lag < min(n - 1, 2000):
        if g[lag - 1] + g[lag] > 0:
            var += 2.0 * (g[lag - 1] + g[lag])
        else:
            break
        lag += 2
    return n * g[0] / var


def ar1(rng, n, phi):
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def test_autocovariance_matches_the_sums():
    rng = np.random.default_rng(1)
    x = rng.normal(size=37)
    assert np.allclose(autocovariance(x), gammas(list(x)), atol=1e-12)
    assert np.allclose(autocovariance(x, unbiased=True), gammas(list(x), True), atol=1e-12)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9, -0.4])
def test_geyer_and_tracer_match_the_references(phi):
    rng = np.random.default_rng(7)
    x = ar1(rng, 301, phi)  # odd length: the last autocovariance has no partner
    assert ess(x) == pytest.approx(geyer_reference(x), rel=1e-10)
    assert ess(x, "tracer") == pytest.approx(tracer_reference(x), rel=1e-10)
    cols = np.stack([x, x[::-1] * 2 + 1], axis=1)
    assert np.allclose(ess(cols), [ess(x), ess(x[::-1])], rtol=1e-10)


@pytest.mark.parametrize("phi", [0.9, 0.5, -0.5])
def test_ess_of_ar1_is_near_its_closed_form(phi):
    n = 200_000
    x = ar1(np.random.default_rng(3), n, phi)
    truth = n * (1 - phi) / (1 + phi)
    assert ess(x) == pytest.approx(truth, rel=0.06)


def test_ess_of_constant_and_tiny_traces():
    assert math.isnan(ess(np.ones(50)))
    assert math.isnan(ess([1.0]))
    assert math.isnan(ess([1.0, np.nan, 2.0]))


def psrf_reference(runs):
    m = len(runs)
    means, variances = [], []
    for r in runs:
        mu = sum(r) / len(r)
        means.append(mu)
        variances.append(sum((v - mu) ** 2 for v in r) / (len(r) - 1))
    w = sum(variances) / m
    grand = sum(means) / m
    b = sum((mu - grand) ** 2 for mu in means) / (m - 1)
    n = sum(len(r) for r in runs) / m
    return math.sqrt((n - 1) / n + (m + 1) / m * b / w)


def test_psrf_matches_the_reference():
    rng = np.random.default_rng(5)
    runs = [rng.normal(loc, 1.0, size=n) for loc, n in ((0.0, 200), (0.3, 180), (-0.1, 220))]
    assert psrf(runs) == pytest.approx(psrf_reference([list(r) for r in runs]), rel=1e-12)
    same = rng.normal(size=100)
    assert psrf([same, same]) == pytest.approx(math.sqrt(99 / 100))
    assert psrf([same, same + 5]) > 3
    assert math.isnan(psrf([same]))


def mser_reference(x, batch=5):
    k = len(x) // batch
    z = [sum(x[j * batch : (j + 1) * batch]) / batch for j in range(k)]
    best, best_d = math.inf, 0
    for d in range(k // 2 + 1):
        kept = z[d:]
        mu = sum(kept) / len(kept)
        crit = sum((v - mu) ** 2 for v in kept) / len(kept) ** 2
        if crit < best:
            best, best_d = crit, d
    return best_d * batch


def test_mser_finds_a_transient():
    rng = np.random.default_rng(11)
    n = 1000
    x = rng.normal(size=n)
    x[:150] += np.linspace(30, 0, 150)  # a decaying start
    got = mser_truncation(x)
    assert got == mser_reference(list(x))
    assert 100 <= got <= 200
    flat = rng.normal(size=n)
    assert mser_truncation(flat) == mser_reference(list(flat))
    assert mser_truncation(np.arange(12.0)) == 0  # fewer than 4 batches


def test_parameter_file_errors(tmp_path):
    p = tmp_path / "bad.p"
    p.write_text("[ID: 1]\nGen\tLnL\tTL\n0\t-10.5\t0.3\n100\t-9.5\tzero\n")
    with pytest.raises(InputError) as err:
        read_parameters(str(p))
    assert err.value.line == 4 and err.value.column == 10 and "'zero'" in str(err.value)
    p.write_text("Gen\tLnL\n0\t-10.5\n100\n")
    with pytest.raises(InputError, match="expected 2 tab-separated values") as err:
        read_parameters(str(p))
    assert err.value.line == 3
    p.write_text("[only a comment]\n")
    with pytest.raises(InputError, match="no samples"):
        read_parameters(str(p))
    p.write_text("state\tposterior\tlikelihood\n# a BEAST comment\n0\t-5\t-4\n1000\t-4\t-3\n")
    t = read_parameters(str(p))
    assert t.names == ["posterior", "likelihood"] and list(t.generation) == [0, 1000]
    assert t.column("likelihood").tolist() == [-4.0, -3.0]


def test_the_monotone_step_matters_where_it_should():
    # a strongly autocorrelated short trace whose pair sums rise again before they turn
    # negative: the initial positive sequence alone would give a smaller ESS
    x = ar1(np.random.default_rng(4), 201, 0.95)
    g = gammas(list(x))
    pairs = [g[2 * m] + g[2 * m + 1] for m in range(100)]
    first_bad = next(m for m, p in enumerate(pairs) if p <= 0)
    positive = sum(pairs[:first_bad])
    assert ess(x) == pytest.approx(geyer_reference(x), rel=1e-10)
    assert ess(x) > 1.1 * 201 * g[0] / (-g[0] + 2 * positive)
