"""The kernels' alternative paths against each other and against independent computations:
the F81 closed form against the general eigendecomposition, shared storage slots against
their liveness, threads against one thread, rescaling on large trees against log space."""

from __future__ import annotations

import numpy as np
import pytest

from phylo.likelihood import (
    GTR,
    HKY,
    JC69,
    Alignment,
    TreeLikelihood,
    random_tree,
    simulate_alignment,
)
from phylo.likelihood import tree_likelihood as tl_module
from tests.likelihood._trees import parse_tree
from tests.likelihood.test_tree_likelihood import (
    fd_gradient,
    logspace_pruning,
    rel_err,
    rooted_version,
)

PI = [0.1, 0.2, 0.3, 0.4]


def general_path(lik):
    """The same likelihood with the F81 fast path switched off (the model vector's flag)."""
    lik._mv[-2] = 0.0
    return lik


def with_ambiguity(aln, rng, frac=0.05):
    """Ambiguity codes and gaps in random cells, so tips are not all one-hot."""
    seqs = [list(s) for s in aln.sequences()]
    codes = "RYKMSWBDHVN-"
    for row in seqs:
        for j in np.flatnonzero(rng.random(len(row)) < frac):
            row[j] = codes[rng.integers(len(codes))]
    return Alignment.from_sequences(aln.taxa, ["".join(r) for r in seqs])


@pytest.mark.parametrize(
    "model",
    [
        JC69(),
        JC69(alpha=0.4, categories=4, pinv=0.1),
        HKY(1.0, PI, alpha=0.8, categories=3),  # F81 + G3: equal exchangeabilities
    ],
)
@pytest.mark.parametrize("n", [4, 23])
def test_f81_fast_path_equals_general_path(model, n):
    rng = np.random.default_rng(100 + n)
    tree = random_tree(n, rng, 0.2, 1e-4)
    aln = with_ambiguity(simulate_alignment(tree, model, 250, rng), rng)
    fast = TreeLikelihood(aln, tree, model)
    assert fast._mv[-2] == 1.0  # the model was recognised as F81-type
    slow = general_path(TreeLikelihood(aln, tree, model))
    for _ in range(3):
        t = rng.exponential(0.3, size=fast.n_branches)
        t[rng.integers(t.size)] = 0.0  # a zero-length branch
        ll_f, g_f = fast.gradient(t)
        ll_s, g_s = slow.gradient(t)
        assert abs(ll_f - ll_s) < 1e-10 * abs(ll_s)
        assert abs(fast.log_likelihood(t) - ll_s) < 1e-10 * abs(ll_s)
        assert np.max(np.abs(g_f - g_s) / np.maximum(np.abs(g_s), 1.0)) < 1e-10
        assert np.allclose(
            fast.pattern_log_likelihoods(t), slow.pattern_log_likelihoods(t), rtol=1e-10, atol=0.0
        )


def test_f81_fast_path_rerooted_and_rooted_trees():
    """Nodes with one child (a rooted tree's root passed through) and three children."""
    rng = np.random.default_rng(7)
    tree = random_tree(10, rng, 0.15)
    model = JC69(alpha=0.6, categories=2)
    aln = simulate_alignment(tree, model, 120, rng)
    rt = rooted_version(tree, 3, 0.4)
    t = rt.branch_lengths[:-1]
    for root in (None, rt.n_taxa, rt.n_nodes - 2):
        fast = TreeLikelihood(aln, rt, model, root=root)
        slow = general_path(TreeLikelihood(aln, rt, model, root=root))
        ll_f, g_f = fast.gradient(t)
        ll_s, g_s = slow.gradient(t)
        assert abs(ll_f - ll_s) < 1e-10 * abs(ll_s)
        assert np.max(np.abs(g_f - g_s) / np.maximum(np.abs(g_s), 1.0)) < 1e-10
        assert rel_err(g_f, fd_gradient(fast, t)) < 1e-6


def test_general_pre_order_steps_match_finite_differences():
    """GTR+G4+I gradients through every pre-order step of the general kernels: two tips,
    a tip and an internal node, two internal nodes, a node with one child and one with
    three, with ambiguity codes and gaps at the tips (so tip partials are not one-hot)."""
    rng = np.random.default_rng(17)
    tree = random_tree(14, rng, 0.15, 1e-3)
    model = GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4, pinv=0.15)
    aln = with_ambiguity(simulate_alignment(tree, model, 200, rng), rng)
    rt = rooted_version(tree, 5, 0.3)
    t = rt.branch_lengths[:-1]
    kinds = set()
    for root in (None, rt.n_taxa, rt.n_nodes - 2):
        lik = TreeLikelihood(aln, rt, model, root=root)
        assert lik._mv[-2] == 0.0
        for row in lik._topo:
            nk = int(row[1])
            kinds.add((nk, int(sum(c < rt.n_taxa for c in row[2 : 2 + nk]))))
        ll, g = lik.gradient(t)
        assert abs(ll - lik.log_likelihood(t)) < 1e-10 * abs(ll)
        assert rel_err(g, fd_gradient(lik, t)) < 1e-6
    assert {(2, 0), (2, 1), (2, 2)} <= kinds
    assert any(k[0] == 1 for k in kinds) and any(k[0] == 3 for k in kinds)


def test_gtr_is_not_taken_for_f81():
    lik = TreeLikelihood(*_small_problem(GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI)))
    assert lik._mv[-2] == 0.0


def _small_problem(model, n=6, sites=50, seed=3):
    rng = np.random.default_rng(seed)
    tree = random_tree(n, rng, 0.1)
    return simulate_alignment(tree, model, sites, rng), tree, model


def _live_sets_respected(topo, n_taxa, slot, preorder):
    """No slot is overwritten while the partial in it is still needed."""
    holder = {}
    rows = topo[::-1] if preorder else topo
    if preorder:
        holder[slot[topo[-1, 0] - n_taxa]] = topo[-1, 0]
    for row in rows:
        v, nk = int(row[0]), int(row[1])
        kids = [int(c) for c in row[2 : 2 + nk] if c >= n_taxa]
        if preorder:
            assert holder.get(slot[v - n_taxa]) == v  # v's partial still there
            written = kids
            for c in written:
                assert slot[c - n_taxa] != slot[v - n_taxa]
        else:
            for c in kids:
                assert holder.get(slot[c - n_taxa]) == c  # children's partials still there
            written = [v]
            assert slot[v - n_taxa] not in [slot[c - n_taxa] for c in kids]
        for w in written:
            holder[slot[w - n_taxa]] = w


@pytest.mark.parametrize("n", [5, 40, 300])
def test_shared_slots_never_overwrite_live_partials(n):
    rng = np.random.default_rng(n)
    tree = random_tree(n, rng, 0.1)
    for root in (None, n, tree.n_nodes - 2):
        topo = tl_module.topology_arrays(tree.parent, n, root)
        slot, n_slots = tl_module.partial_slots(topo, n)
        _live_sets_respected(topo, n, slot, preorder=False)
        pslot, n_pre = tl_module.pre_order_slots(topo, n)
        _live_sets_respected(topo, n, pslot, preorder=True)
        assert n_slots <= topo.shape[0] and n_pre <= topo.shape[0]
        assert slot.min() >= 0 and pslot.min() >= 0


def test_threads_split_patterns_like_one_thread(monkeypatch):
    rng = np.random.default_rng(21)
    tree = random_tree(15, rng, 0.1)
    model = HKY(2.0, PI, alpha=0.5, categories=4)
    aln = simulate_alignment(tree, model, 1200, rng)
    t = tree.branch_lengths[:-1]
    one = TreeLikelihood(aln, tree, model)
    monkeypatch.setattr(tl_module, "SPLIT_MIN_UPDATES", 0)
    monkeypatch.setattr(tl_module, "SPLIT_MIN_PATTERNS", 1)
    monkeypatch.setattr(tl_module, "SPLIT_MIN_SITE_REPEAT_NS", 0)
    two = TreeLikelihood(aln, tree, model, threads=2, site_repeats=False)
    assert len(two._thread_bounds) == 2 and len(two._thread_lbounds) == 2
    # with site repeats each thread's part has the classes of its own patterns
    two_sr = TreeLikelihood(aln, tree, model, threads=2)
    assert len(two_sr._thread_bounds) == 2 and len(two_sr._thread_lbounds) == 2
    assert two_sr._ncols[:, 0].any() and all(plan[0][:, 0].any() for plan in two_sr._part_plans)
    ref = one.log_likelihood(t)
    assert abs(two_sr.log_likelihood(t) - ref) < 1e-12 * abs(ref)
    assert np.allclose(
        two_sr.pattern_log_likelihoods(t), one.pattern_log_likelihoods(t), rtol=1e-12, atol=0.0
    )
    T = np.stack([t, 1.3 * t, 0.7 * t])
    assert np.allclose(
        two_sr.log_likelihood_batch(T), one.log_likelihood_batch(T), rtol=1e-12, atol=0.0
    )
    assert np.allclose(two_sr.gradient(t)[1], one.gradient(t)[1], rtol=1e-10, atol=1e-10)
    ll1, g1 = one.gradient(t)
    ll2, g2 = two.gradient(t)
    assert abs(ll1 - ll2) < 1e-10 * abs(ll1)
    assert np.allclose(g1, g2, rtol=1e-10, atol=1e-10)
    assert abs(two.log_likelihood(t) - ll1) < 1e-10 * abs(ll1)
    # (one thread roots the traversal where site repeats pay; the same to rounding)
    assert np.allclose(
        two.pattern_log_likelihoods(t), one.pattern_log_likelihoods(t), rtol=1e-12, atol=0.0
    )


def test_small_problems_are_not_split_between_threads():
    lik = TreeLikelihood(*_small_problem(JC69()), threads=2)
    assert len(lik._thread_bounds) == 1 and len(lik._thread_lbounds) == 1


@pytest.mark.parametrize(
    "model",
    [
        JC69(),
        GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4),
        JC69(alpha=0.3, categories=3, pinv=0.2),
    ],
)
def test_200_taxa_rescaling_likelihood_and_gradient(model):
    """Post-order partials fall below the rescaling threshold on every path from the
    root: the pre-order pass must make up for their scaling at every node (its
    partials would fall below it too)."""
    rng = np.random.default_rng(200)
    tree = random_tree(200, rng, 0.25, 1e-4)
    aln = simulate_alignment(tree, model, 80, rng)
    t = tree.branch_lengths[:-1]
    lik = TreeLikelihood(aln, tree, model)
    ll = lik.log_likelihood(t)
    site = lik.pattern_log_likelihoods(t)
    assert np.isfinite(site).all() and site.min() < -69.4  # below 2^-100
    assert abs(ll - logspace_pruning(aln, tree, model, t)) < 1e-10 * abs(ll)
    ll_g, g = lik.gradient(t)
    assert np.isfinite(g).all() and abs(ll_g - ll) < 1e-10 * abs(ll)
    # finite differences on a sample of branches, tips and deep internal ones alike
    pick = np.unique(
        np.concatenate(
            [rng.choice(lik.n_branches, 25, replace=False), [lik.n_branches - 1, 200, 0]]
        )
    )
    assert rel_err(g[pick], _fd_subset(lik, t, pick)) < 1e-6


def test_1000_taxa_gtr_gamma_likelihood_and_gradient():
    """A thousand taxa and sites below e^-1300: post-order scaling on every path, and
    categories whose partials fall far below the others' (flushed when subnormal)."""
    rng = np.random.default_rng(1000)
    model = GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.3, categories=4)
    tree = random_tree(1000, rng, 0.3, 1e-4)
    aln = simulate_alignment(tree, model, 120, rng)
    t = tree.branch_lengths[:-1]
    lik = TreeLikelihood(aln, tree, model)
    ll = lik.log_likelihood(t)
    assert lik.pattern_log_likelihoods(t).min() < -1000
    assert abs(ll - logspace_pruning(aln, tree, model, t)) < 1e-12 * abs(ll)
    ll_g, g = lik.gradient(t)
    assert abs(ll_g - ll) < 1e-12 * abs(ll)
    pick = np.unique(
        np.concatenate(
            [rng.choice(lik.n_branches, 8, replace=False), [lik.n_branches - 1, 1000, 0]]
        )
    )
    assert rel_err(g[pick], _fd_subset(lik, t, pick)) < 1e-6


def _fd_subset(lik, t, pick):
    """Five-point central differences for a few branches.  The log-likelihood is large
    here (|log L| ~ 1e4), so steps are larger than the default's to keep rounding
    (~1e-16 |log L| / h) below 1e-7, and small enough to stay on positive lengths."""
    g = np.empty(pick.size)
    for j, i in enumerate(pick):
        h = min(1e-3 * max(t[i], 0.01), t[i] / 2.5)
        f = []
        for k in (-2, -1, 1, 2):
            x = t.copy()
            x[i] += k * h
            f.append(lik.log_likelihood(x))
        g[j] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
    return g


def test_pickles_for_worker_processes():
    import pickle

    aln, tree, model = _small_problem(
        GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=2)
    )
    for m in (model, JC69()):
        lik = TreeLikelihood(aln, tree, m)
        t = tree.branch_lengths[:-1]
        ll, g = lik.gradient(t)
        other = pickle.loads(pickle.dumps(lik))
        ll2, g2 = other.gradient(t)
        assert ll2 == ll and np.array_equal(g2, g)


def test_split_evaluations_survive_pickling(monkeypatch):
    """Per-pattern results of an evaluation split between threads, after a round trip
    through pickle (the parts write their patterns' results into the object's own)."""
    import pickle

    monkeypatch.setattr(tl_module, "SPLIT_MIN_UPDATES", 0)
    monkeypatch.setattr(tl_module, "SPLIT_MIN_PATTERNS", 1)
    monkeypatch.setattr(tl_module, "SPLIT_MIN_SITE_REPEAT_NS", 0)
    aln, tree, model = _small_problem(JC69(), n=8, sites=400)
    t = tree.branch_lengths[:-1]
    for sr in (True, False):
        lik = TreeLikelihood(aln, tree, model, threads=2, site_repeats=sr)
        assert len(lik._thread_lbounds) == 2
        want = lik.pattern_log_likelihoods(t)
        lik.gradient(t)
        other = pickle.loads(pickle.dumps(lik))
        assert np.allclose(
            other.pattern_log_likelihoods(1.5 * t),
            lik.pattern_log_likelihoods(1.5 * t),
            rtol=1e-14,
            atol=0.0,
        )
        assert np.allclose(other.pattern_log_likelihoods(t), want, rtol=1e-14, atol=0.0)


def test_vectorised_log_within_an_ulp_of_math_log():
    from phylo.likelihood import _kernels as K

    rng = np.random.default_rng(5)
    x = np.concatenate(
        [
            np.exp(rng.uniform(-708, 709, 100_000)),
            rng.uniform(0.5, 2.0, 50_000),
            1.0 + rng.uniform(-1e-12, 1e-12, 1000),
            2.0 ** np.arange(-1022, 1024),
            [np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2.0), np.sqrt(0.5)],
        ]
    )
    out = np.empty_like(x)
    K.log_array(x, out, 0, x.size)
    ref = np.log(x)
    ulps = np.abs(out - ref) / np.spacing(np.maximum(np.abs(ref), 1e-300))
    assert ulps.max() <= 1.0
    assert out[np.flatnonzero(x == 1.0)].tolist() == [0.0] * int((x == 1.0).sum())
    # what is not a positive normal number goes through math.log
    special = np.array([0.0, 5e-324, 1e-310, np.inf, np.nan, -1.0])
    out = np.empty_like(special)
    K.log_array(special, out, 0, special.size)
    assert out[0] == -np.inf and out[3] == np.inf and np.isnan(out[4]) and np.isnan(out[5])
    assert np.allclose(out[1:3], np.log(special[1:3]), rtol=1e-15)


@pytest.mark.parametrize("model", [JC69(), HKY(2.0, PI, alpha=0.5, categories=2)])
def test_impossible_patterns_take_the_rescaling_path(model):
    """Zero-length branches between tips in different states: those patterns have
    likelihood 0 (the root's direct sum refuses it and the block takes the rescaling path,
    which must give -inf for them and the exact value for the others)."""
    aln = Alignment.from_sequences(["a", "b", "c"], ["AACT", "ACCT", "AGCT"])
    tree = parse_tree("(a:1,b:1,c:1);", ["a", "b", "c"])
    lik = TreeLikelihood(aln, tree, model)
    pats = lik.patterns
    t = np.zeros(3)
    site = lik.pattern_log_likelihoods(t)
    freqs = model.resolve(aln).frequencies
    for j in range(pats.weights.size):
        column = pats.tip_partials()[:, :, j]  # (taxa, 4) indicators
        states = {int(np.argmax(row)) for row in column}
        if len(states) == 1:  # L = pi_s exactly
            assert site[j] == pytest.approx(np.log(freqs[states.pop()]), rel=1e-14)
        else:
            assert site[j] == -np.inf
    assert lik.log_likelihood(t) == -np.inf
    assert lik.log_likelihood_batch(np.stack([t, np.full(3, 0.1)]))[0] == -np.inf


def test_callers_floating_point_flags_are_restored():
    """The kernels flush subnormal numbers to zero while they run (x86 FTZ/DAZ) and put
    the caller's flags back: arithmetic after a call still produces subnormals."""
    tiny = np.array([1e-310])
    assert (tiny * 0.5)[0] == 5e-311  # subnormal arithmetic here
    lik = TreeLikelihood(
        *_small_problem(GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4))
    )
    t = np.full(lik.n_branches, 0.1)
    lik.log_likelihood(t)
    lik.gradient(t)
    lik.log_likelihood_batch(np.stack([t, t]))
    assert (tiny * 0.5)[0] == 5e-311 and (tiny + 1e-311)[0] > 1e-310
