"""Per-clade value summaries: exact statistics against their definitions written with numpy,
the histogram's tolerance, and node heights by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phylo.trees import _kernels_values as KV
from phylo.trees.clade_values import CladeValues


def definitions(x, level=0.95):
    """Median and HPD as TreeAnnotator defines them, from the sorted values."""
    x = np.sort(x)
    n = len(x)
    med = x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2
    d = max(1, math.floor(level * n + 0.5))
    width = x[d - 1 :] - x[: n - d + 1]
    i = int(np.argmin(width))  # first minimum, as TreeAnnotator
    return med, x[i], x[i + d - 1], d


def feed(acc, keys, values, chunk):
    for a in range(0, len(keys), chunk):
        acc.add(keys[a : a + chunk], values[a : a + chunk])


def test_exact_statistics_equal_their_definitions():
    rng = np.random.default_rng(1)
    K, n = 7, 5000
    keys = rng.integers(0, K, n)
    values = rng.gamma(2.0, 0.01, n)
    values[::97] = np.nan  # missing values are ignored
    acc = CladeValues(K + 1)  # one clade never seen
    feed(acc, keys, values, 333)
    r = acc.result()
    assert r.exact and r.accuracy == 0.0
    for k in range(K):
        x = values[(keys == k) & ~np.isnan(values)]
        med, lo, hi, _ = definitions(x)
        assert r.count[k] == len(x)
        assert r.mean[k] == pytest.approx(x.mean(), rel=1e-13)
        assert r.var[k] == pytest.approx(x.var(ddof=1), rel=1e-11)
        assert (r.min[k], r.max[k]) == (x.min(), x.max())
        assert (r.median[k], r.hpd_lower[k], r.hpd_upper[k]) == (med, lo, hi)
    assert r.count[K] == 0 and np.isnan(r.mean[K]) and np.isnan(r.median[K])


def test_results_do_not_depend_on_the_chunks():
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 5, 3001)
    values = rng.exponential(0.1, 3001)
    a, b = CladeValues(5), CladeValues(5)
    feed(a, keys, values, 3001)
    feed(b, keys, values, 17)
    ra, rb = a.result(), b.result()
    for name in ("count", "mean", "var", "median", "hpd_lower", "hpd_upper"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))


def test_small_counts_even_and_odd():
    acc = CladeValues(3)
    acc.add(np.array([0, 1, 1, 2, 2, 2, 2]), np.array([5.0, 1.0, 3.0, 4.0, 1.0, 2.0, 10.0]))
    r = acc.result()
    assert r.median.tolist() == [5.0, 2.0, 3.0]
    assert np.isnan(r.var[0]) and r.var[1] == 2.0
    # n = 4: d = round(3.8) = 4, the whole range; n = 2: d = 2
    assert (r.hpd_lower[2], r.hpd_upper[2]) == (1.0, 10.0)
    assert (r.hpd_lower[1], r.hpd_upper[1]) == (1.0, 3.0)
    assert (r.hpd_lower[0], r.hpd_upper[0]) == (5.0, 5.0)


def test_histogram_reads_each_rank_within_its_accuracy():
    # a few distinct values far apart: every rank's bucket holds one value, so a wrong rank
    # gives a value off by a factor of 2 at least, far beyond the accuracy
    rng = np.random.default_rng(3)
    alpha = 1e-3
    for _ in range(20):
        counts = rng.integers(1, 40, 6)
        x = np.repeat(2.0 ** np.arange(-8, -2), counts)
        rng.shuffle(x)
        acc = CladeValues(1, exact_limit=0, accuracy=alpha)
        acc.add(np.zeros(len(x), np.int64), x)
        r = acc.result()
        assert not r.exact and r.accuracy == alpha
        med, lo, hi, _ = definitions(x)
        assert r.median[0] == pytest.approx(med, rel=alpha)
        assert r.hpd_lower[0] == pytest.approx(lo, rel=alpha)
        assert r.hpd_upper[0] == pytest.approx(hi, rel=alpha)
        assert r.mean[0] == pytest.approx(x.mean(), rel=1e-13)  # moments stay exact


def test_histogram_hpd_width_within_the_stated_tolerance():
    rng = np.random.default_rng(4)
    alpha = 1e-3
    keys = rng.integers(0, 4, 40000)
    values = rng.lognormal(-3, 1, 40000)
    values[:50] = 0.0  # zero has a bucket of its own
    acc = CladeValues(4, exact_limit=10000, accuracy=alpha)
    feed(acc, keys, values, 4096)
    assert not acc.exact  # switched after 10,000 values
    r = acc.result()
    for k in range(4):
        x = values[keys == k]
        med, lo, hi, d = definitions(x)
        assert r.median[k] == pytest.approx(med, rel=alpha, abs=1e-300)
        width = r.hpd_upper[k] - r.hpd_lower[k]
        assert abs(width - (hi - lo)) <= 2 * alpha * x.max()
        inside = np.sum((x >= r.hpd_lower[k] * (1 - alpha)) & (x <= r.hpd_upper[k] * (1 + alpha)))
        assert d <= inside <= d + 0.01 * len(x)


def test_negative_values_keep_their_order():
    acc = CladeValues(1, exact_limit=0)
    x = np.array([-4.0, -2.0, -1.0, 0.0, 1.0, 3.0, 8.0])
    acc.add(np.zeros(7, np.int64), x)
    r = acc.result()
    assert r.median[0] == 0.0
    assert r.hpd_lower[0] == pytest.approx(-4.0, rel=1e-3)
    assert r.hpd_upper[0] == pytest.approx(8.0, rel=1e-3)


def test_node_heights_by_hand():
    # ((A:1,B:2):3,C:4.5) rooted, canonical: leaves 0,1,2; node 3 = (A,B); root 4
    parents = np.array([[3, 3, 4, 4, -1]], np.int32)
    lengths = np.array([[1.0, 2.0, 4.5, 3.0, 0.0]])
    out = np.empty((1, 5))
    KV.node_heights(parents, np.array([0], np.int64), lengths, out)
    # depths: A 4, B 5, C 4.5, (A,B) 3, root 0; the deepest leaf (B) has height 0
    assert out[0].tolist() == [1.0, 0.0, 0.5, 2.0, 5.0]
