"""MAP trees, credible sets and credible levels against brute-force enumeration.

On 5 and 6 taxa every topology is listed (15 and 105 unrooted, 105 and 945 rooted) and its
probability under the fitted SBN computed independently (``brute.tree_prob``: products of
the model's parameters over every rooting, nothing from phylo.sbn but the parameters).  The
MAP tree must be the most probable topology with its probability; the credible set of level
``a`` the shortest prefix of the sorted list reaching ``a``; the credible level of every
topology the mass of those at least as probable.
"""

from __future__ import annotations

import numpy as np
import pytest

from phylo.sbn import fit, fit_srf
from phylo.sbn.credible import credible_levels, credible_set
from phylo.trees import bitsets
from phylo.trees.consensus import summary_tree

from . import brute
from .samples import all_newicks, random_training


def brute_probs(model, n, rooted):
    theta = brute.model_theta(model)
    pool, nwk = all_newicks(n, rooted)
    events = [[brute.rooted_events(t)] if rooted else brute.rootings(t) for t in pool]
    clade_mode = model.conditioning == "clade"
    p = np.array([brute.tree_prob(theta, e, clade_mode) for e in events])
    return pool, nwk, p


def splits_of(tree, n, rooted):
    """Informative splits (rooted: clades) of a nested-tuple tree as bitset bytes."""
    out = set()

    def walk(t):
        s = brute.leaves(t)
        if isinstance(t, tuple):
            for c in t:
                walk(c)
        bits = bitsets.from_indices(sorted(s), n)
        if not rooted:
            bits = bitsets.normalise_splits(bits[None, :], n)[0]
        size = int(bitsets.popcount(bits[None, :])[0])
        if 1 < size < (n if rooted else n - 1):
            out.add(bits.tobytes())

    walk(tree)
    return out


CASES = [(5, False, "em-alpha"), (6, False, "em-alpha"), (6, False, "sa"), (5, True, "em-alpha")]


@pytest.mark.parametrize("n,rooted,method", CASES)
def test_map_tree_is_the_most_probable_topology(n, rooted, method):
    rng = np.random.default_rng(10 * n + rooted)
    _, _, sample = random_training(n, 40, rng, rooted)
    model = fit(sample, method)
    pool, _, p = brute_probs(model, n, rooted)
    best = int(np.argmax(p))
    assert np.sum(p >= p[best] * (1 - 1e-9)) == 1  # a unique maximum on these seeds
    tree = summary_tree(sample, "map", model=model)
    assert tree.attributes["probability"] == pytest.approx(p[best], rel=1e-10)
    assert tree.attributes["log_probability"] == pytest.approx(np.log(p[best]), rel=1e-10)
    assert tree.splits() == splits_of(pool[best], n, rooted)
    # the default model is SBN-EM-alpha fitted to the sample
    if method == "em-alpha":
        again = summary_tree(sample, "map")
        assert again.attributes["probability"] == pytest.approx(p[best], rel=1e-10)


@pytest.mark.parametrize("n,rooted,method", CASES)
def test_credible_sets_and_levels_by_enumeration(n, rooted, method):
    rng = np.random.default_rng(7 * n + rooted)
    _, _, sample = random_training(n, 40, rng, rooted)
    model = fit(sample, method)
    _, nwk, p = brute_probs(model, n, rooted)
    order = np.sort(p)[::-1]
    cum = np.cumsum(order)
    for level in (0.3, 0.5, 0.9, 0.95, 0.999):
        cs = credible_set(model, level)
        k = int(np.searchsorted(cum, level - 1e-12) + 1)
        assert len(cs) == k
        assert cs.mass == pytest.approx(cum[k - 1], rel=1e-10)
        np.testing.assert_allclose(np.exp(cs.top.log_prob), order[:k], rtol=1e-10)
    cl = credible_levels(model, nwk)
    want = np.array([p[p >= x * (1 - 1e-9)].sum() if x > 0 else 1.0 for x in p])
    assert cl.exact.all()
    np.testing.assert_allclose(cl.level, want, rtol=1e-9)


def test_credible_levels_bound_when_enumeration_is_cut_short():
    rng = np.random.default_rng(3)
    _, _, sample = random_training(6, 60, rng)
    model = fit(sample, "em-alpha")
    _, nwk, p = brute_probs(model, 6, False)
    cl = credible_levels(model, nwk, max_topologies=8)
    want = np.array([p[p >= x * (1 - 1e-9)].sum() if x > 0 else 1.0 for x in p])
    # the 8 most probable are exact, the rest are lower bounds
    top8 = np.argsort(-p)[:7]
    assert cl.exact[top8].all() and not cl.exact.all()
    np.testing.assert_allclose(cl.level[cl.exact], want[cl.exact], rtol=1e-9)
    assert np.all(cl.level[~cl.exact] <= want[~cl.exact] + 1e-12)
    assert np.all(cl.level[~cl.exact & (p > 0)] > 0)


def test_srf_credible_set_is_the_sorted_sample_frequencies():
    rng = np.random.default_rng(5)
    _, w, sample = random_training(6, 50, rng)
    srf = fit_srf(sample)
    f = np.sort(np.asarray(w))[::-1]
    cum = np.cumsum(f)
    for level in (0.5, 0.95):
        cs = credible_set(srf, level)
        k = int(np.searchsorted(cum, level - 1e-12) + 1)
        assert len(cs) == k
        assert cs.mass == pytest.approx(cum[k - 1], rel=1e-12)
