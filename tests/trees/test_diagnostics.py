"""Tree-space diagnostics against reference code written from RWTY's and MrBayes's definitions.

The samples are "sticky" chains over a pool of random topologies (stay with probability
``p``, else jump to a random member), written as Newick files and read back.  The references
work on the Newick strings with dendropy (path lengths between taxa, bipartitions) and plain
Python: RWTY's ``topological.approx.ess`` with ``use.all.samples = TRUE`` (every pair of trees
at each lag; the exponential semivariogram fitted by ``scipy.optimize.curve_fit``), the ESS of
split indicators, MrBayes's in-run ASDSF, and the pooling rule.
"""

from __future__ import annotations

import math

import dendropy
import numpy as np
import pytest
from scipy.optimize import curve_fit

from phylo.trees import diagnostics as D
from phylo.trees import read_trees
from phylo.trees.diagnosis import diagnose, format_text, tables, to_dict

from .randomtrees import random_rooted, to_newick
from .test_traces import geyer_reference

NAMES = [f"t{i}" for i in range(10)]


def sticky_chain(rng, pool, n, stay):
    state = int(rng.integers(len(pool)))
    out = []
    for _ in range(n):
        if rng.random() > stay:
            state = int(rng.integers(len(pool)))
        out.append(to_newick(pool[state], rng=rng, lengths=False) + ";")
    return out


def write_runs(tmp_path, runs):
    paths = []
    for r, trees in enumerate(runs):
        p = tmp_path / f"run{r + 1}.nwk"
        p.write_text("\n".join(trees) + "\n")
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    rng = np.random.default_rng(2016)
    pool = [random_rooted(rng, NAMES) for _ in range(12)]
    runs = [sticky_chain(rng, pool, 400, 0.93), sticky_chain(rng, pool, 400, 0.93)]
    paths = write_runs(tmp_path_factory.mktemp("chains"), runs)
    return runs, paths


# -- reference code ------------------------------------------------------------------------


def dendro(newick, tns):
    t = dendropy.Tree.get(
        data=newick, schema="newick", taxon_namespace=tns, rooting="force-unrooted"
    )
    t.collapse_basal_bifurcation(set_as_unrooted_tree=True)
    return t


def path_vectors(newicks):
    """dendropy's edge counts between every pair of taxa (what ape's cophenetic gives RWTY on
    trees with unit branch lengths), one vector per distinct Newick string."""
    tns = dendropy.TaxonNamespace(NAMES)
    cache = {}
    taxa = [tns.get_taxon(n) for n in NAMES]
    for s in set(newicks):
        pdm = dendro(s, tns).phylogenetic_distance_matrix()
        cache[s] = np.array(
            [pdm.path_edge_count(taxa[i], taxa[j]) for i in range(10) for j in range(i + 1, 10)]
        )
    return cache


def split_sets(newicks):
    """Each tree's nontrivial splits, as the side without t0 (frozensets of names)."""
    tns = dendropy.TaxonNamespace(NAMES)
    out = {}
    for s in set(newicks):
        t = dendro(s, tns)
        sides = set()
        for node in t.postorder_node_iter():
            if node is t.seed_node or node.is_leaf():
                continue
            below = frozenset(leaf.taxon.label for leaf in node.leaf_iter())
            side = below if "t0" not in below else frozenset(NAMES) - below
            if 1 < len(side) < len(NAMES) - 1:
                sides.add(side)
        out[s] = frozenset(sides)
    return out


def rwty_approx_ess(newicks, distance="pd", max_lag=100):
    """RWTY's topological.approx.ess (use.all.samples = TRUE) for one run."""
    N = len(newicks)
    if N < max_lag:
        max_lag = math.floor(N * 0.9)
    K = min(max_lag, N - 100)
    if distance == "pd":
        vec = path_vectors(newicks)

        def d2(a, b):
            return float(((vec[a] - vec[b]) ** 2).sum())
    else:
        sp = split_sets(newicks)

        def d2(a, b):
            return float(len(sp[a] ^ sp[b]) ** 2)

    f = np.array(
        [np.mean([d2(newicks[i], newicks[i + k]) for i in range(N - k)]) for k in range(1, K + 1)]
    )
    ks = np.arange(1, K + 1, dtype=float)
    (a, b), _ = curve_fit(
        lambda k, a, b: a * (1 - np.exp(-k / b)), ks, f, p0=(f.max(), 5.0), maxfev=20000
    )
    hits = [k for k in range(K) if f[k] / a > 0.95]
    m = hits[0] + 1 if hits else K + 1
    D = f.max()
    S = sum((N - k) * f[k - 1] for k in range(1, m)) + (N - m + 1) * (N - m) * D / 2
    S = S / 2 / N**2
    return 1 / (1 - 4 * S / D), not hits, m, f


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", ["pd", "rf"])
def test_approximate_ess_matches_rwty(chains, distance):
    runs, paths = chains
    sample = read_trees(paths, burnin=0)
    got = D.approximate_ess(sample, distance)
    assert got.lags.tolist() == list(range(1, 101))
    for r, trees in enumerate(runs):
        ess, upper, m, f = rwty_approx_ess(trees, distance)
        assert np.allclose(got.sq_distance[r], f, rtol=1e-12)
        assert got.lag_m[r] == m and bool(got.upper_bound[r]) == upper
        assert got.ess[r] == pytest.approx(ess, rel=1e-9)
    assert got.pooled == pytest.approx(got.ess.sum())
    # the chain stays with probability 0.93: the ESS is far below the number of trees
    assert np.all(got.ess < 100)


def test_approximate_ess_upper_bound_and_short_runs(tmp_path):
    rng = np.random.default_rng(0)
    pool = [random_rooted(rng, NAMES) for _ in range(6)]
    # a chain that moves once in 100 samples: distances still rise at lag 100
    runs = [sticky_chain(rng, pool, 300, 0.99), sticky_chain(rng, pool, 300, 0.99)]
    sample = read_trees(write_runs(tmp_path, runs), burnin=0)
    got = D.approximate_ess(sample)
    assert np.all(got.upper_bound) and np.all(got.lag_m == 101)
    for r, trees in enumerate(runs):
        ess, upper, m, _ = rwty_approx_ess(trees)
        assert upper and m == 101
        assert got.ess[r] == pytest.approx(ess, rel=1e-9)
    one = read_trees(write_runs(tmp_path, [[runs[0][0]] * 200, runs[1][:200]]), burnin=0)
    assert math.isnan(D.approximate_ess(one).ess[0])  # one topology: no distances at all
    short = read_trees(write_runs(tmp_path, [runs[0][:110], runs[1][:110]]), burnin=0)
    got = D.approximate_ess(short)  # 110 trees: 10 lags, fewer than RWTY's 20
    assert got.lags.size == 0 and np.all(np.isnan(got.ess))


def test_sampled_pairs_equal_all_pairs_when_there_are_enough(chains):
    _, paths = chains
    sample = read_trees(paths, burnin=0)
    every = D.approximate_ess(sample)
    drawn = D.approximate_ess(sample, pairs=400, rng=np.random.default_rng(1))
    assert np.allclose(drawn.sq_distance, every.sq_distance, rtol=1e-12)
    some = D.approximate_ess(sample, pairs=50, rng=np.random.default_rng(1))
    assert not np.allclose(some.sq_distance, every.sq_distance)
    again = D.approximate_ess(sample, pairs=50, rng=np.random.default_rng(1))
    assert np.array_equal(again.sq_distance, some.sq_distance)


def test_split_indicator_ess_matches_reference(chains):
    runs, paths = chains
    sample = read_trees(paths, burnin=0)
    got = D.split_ess(sample, 0.1)
    sets = split_sets(runs[0] + runs[1])
    all_trees = runs[0] + runs[1]
    counts = {}
    for s in all_trees:
        for sp in sets[s]:
            counts[sp] = counts.get(sp, 0) + 1
    expected = {sp for sp, c in counts.items() if 0.1 <= c / len(all_trees) <= 0.9}
    names = sample.taxa.names
    mine = []
    for b in got.bits:
        side = frozenset(names[i] for i in range(10) if (int(b[0]) >> i) & 1)
        mine.append(side if "t0" not in side else frozenset(NAMES) - side)
    assert set(mine) == expected and len(mine) == len(expected)
    for row, sp in enumerate(mine):
        for r, trees in enumerate(runs):
            x = [1.0 if sp in sets[s] else 0.0 for s in trees]
            if len(set(x)) == 1:
                assert math.isnan(got.ess[row, r])
            else:
                assert got.ess[row, r] == pytest.approx(geyer_reference(x), rel=1e-9)


def test_log_prob_ess_follows_each_tree(chains):
    from phylo.sbn import fit

    runs, paths = chains
    sample = read_trees(paths, burnin=0)
    model = fit(sample, "sa")
    got = D.log_prob_ess(sample)
    for r, trees in enumerate(runs):
        logp = model.log_prob(list(trees))  # each Newick string on its own
        assert got[r] == pytest.approx(geyer_reference(list(logp)), rel=1e-9)


def reference_asdsf(runs_trees, sets, min_freq=0.1):
    freqs = []
    for trees in runs_trees:
        c = {}
        for s in trees:
            for sp in sets[s]:
                c[sp] = c.get(sp, 0) + 1
        freqs.append({k: v / len(trees) for k, v in c.items()})
    splits = set().union(*freqs)
    sds = []
    for sp in splits:
        f = [fr.get(sp, 0.0) for fr in freqs]
        if max(f) >= min_freq:
            mu = sum(f) / len(f)
            sds.append(math.sqrt(sum((x - mu) ** 2 for x in f) / (len(f) - 1)))
    return sum(sds) / len(sds) if sds else math.nan


def test_asdsf_trace_matches_the_definition(tmp_path):
    rng = np.random.default_rng(4)
    pool = [random_rooted(rng, NAMES) for _ in range(8)]
    runs = [sticky_chain(rng, pool, 230, 0.8) for _ in range(3)]
    sample = read_trees(write_runs(tmp_path, runs), burnin=0)
    sets = split_sets(sum(runs, []))
    t = D.asdsf_trace(sample, every=20, burnin=0.25, window=40)
    assert t.samples.tolist() == list(range(21, 230, 20)) + [230]
    for m, value, n in zip(t.samples, t.cumulative, t.cumulative_splits):
        b = int(0.25 * m)
        assert value == pytest.approx(reference_asdsf([x[b:m] for x in runs], sets), rel=1e-12)
        assert n > 0
    assert t.window_start.tolist() == [0, 40, 80, 120, 160]
    for a, value in zip(t.window_start, t.window):
        assert value == pytest.approx(reference_asdsf([x[a : a + 40] for x in runs], sets))
    # the last checkpoint is the ASDSF of sbn summary with the same burn-in
    kept = read_trees([str(tmp_path / f"run{r}.nwk") for r in (1, 2, 3)], burnin=57)
    assert t.cumulative[-1] == pytest.approx(kept.asdsf(), rel=1e-12)


def test_pooling_check(tmp_path):
    rng = np.random.default_rng(3)
    a, b, c = (random_rooted(rng, NAMES) for _ in range(3))
    nw = lambda t: to_newick(t, lengths=False) + ";"
    same = write_runs(tmp_path, [[nw(a)] * 30 + [nw(b)] * 10, [nw(a)] * 28 + [nw(b)] * 12])
    s = read_trees(same, burnin=0)
    check = D.pooling_check(s)
    assert not check.disagree and check.message() is None and D.pooling_warning(s) is None
    apart = write_runs(tmp_path, [[nw(a)] * 30 + [nw(b)] * 10, [nw(c)] * 40])
    s = read_trees(apart, burnin=0)
    check = D.pooling_check(s)
    assert check.disagree
    assert check.asdsf == pytest.approx(
        reference_asdsf(
            [[nw(a)] * 30 + [nw(b)] * 10, [nw(c)] * 40], split_sets([nw(a), nw(b), nw(c)])
        )
    )
    # topology a (0.75 in run 1) and c (1.0 in run 2) are missing from the other run
    freqs = sorted((round(f, 6), r_in, r_out) for _, r_in, f, r_out in check.missing)
    assert freqs == [(0.25, 1, 2), (0.75, 1, 2), (1.0, 2, 1)]
    msg = check.message()
    assert f"ASDSF is {check.asdsf:.4g}" in msg and "never occurs in run 1" in msg
    assert "sbn diagnose" in msg and "2 more such topologies" in msg
    # only the topology rule: a rare-ish topology (0.2) that the other run never visits
    one = write_runs(tmp_path, [[nw(a)] * 80 + [nw(b)] * 20, [nw(a)] * 100])
    check = D.pooling_check(read_trees(one, burnin=0))
    assert check.asdsf < 0.15 and check.disagree
    assert [(m[1], round(m[2], 6), m[3]) for m in check.missing] == [(1, 0.2, 2)]
    assert not D.pooling_check(
        read_trees(one, burnin=0), topology_freq=0.25, max_asdsf=0.2
    ).disagree
    assert D.pooling_check(read_trees(one[:1], burnin=0)).message() is None  # one run


def test_diagnose_report(chains):
    _, paths = chains
    sample = read_trees(paths, burnin=0)
    d = diagnose(sample, burnin=0.1)
    assert d.burnin == [40, 40] and d.used == [360, 360]
    kept = D.subsample(sample, [40, 40])
    assert np.allclose(d.approx.ess, D.approximate_ess(kept).ess)
    text = format_text(d)
    assert "approximate topological ESS (path distance)" in text and "Suggested burn-in" in text
    doc = to_dict(d)
    assert doc["runs"][0]["used"] == 360 and len(doc["approximate_ess"]["lags"]) == 100
    t = tables(d)
    assert t["ess"][0] == ["method", "run", "file", "ess", "upper_bound"]
    cum = [r for r in t["asdsf"][1] if r[0] == "cumulative"]
    assert cum[-1][2] == 399 and cum[-1][5] == pytest.approx(d.trace.cumulative[-1])


def test_subsample_keeps_the_chosen_trees(chains):
    runs, paths = chains
    sample = read_trees(paths, burnin=0)
    part = D.subsample(sample, [100, 50], [300, 400])
    ref = read_trees(paths, burnin=0)
    assert part.runs[0].n_used == 200 and part.runs[1].burnin == 50
    for r, (a, b) in enumerate(((100, 300), (50, 400))):
        assert [part.newick(i) for i in part.traces[r]] == [
            ref.newick(i) for i in ref.traces[r][a:b]
        ]
    assert np.all(np.diff(part.frequencies()) <= 1e-15)


def test_sampling_interval_from_tree_names(tmp_path):
    p = tmp_path / "a.t"
    p.write_text(
        "#NEXUS\nbegin trees;\n tree gen.0 = (a,b,c);\n tree gen.500 = (a,b,c);\n"
        " tree gen.1000 = (a,b,c);\nend;\n"
    )
    assert D.sampling_interval(str(p)) == (0, 500)
    p.write_text(
        "#NEXUS\nbegin trees;\ntree STATE_1000 = (a,b,c);\ntree STATE_3000 = (a,b,c);\nend;\n"
    )
    assert D.sampling_interval(str(p)) == (1000, 2000)
    p.write_text("(a,b,c);\n(a,b,c);\n")
    assert D.sampling_interval(str(p)) is None
    p.write_text("tree gen.0 = (a,b,c);\ntree gen.10 = (a,b,c);\ntree gen.30 = (a,b,c);\n")
    assert D.sampling_interval(str(p)) is None


def test_burnin_suggestion_finds_the_start_away_from_the_posterior(tmp_path):
    rng = np.random.default_rng(8)
    start = [random_rooted(rng, NAMES) for _ in range(5)]  # where the chains begin
    posterior = [random_rooted(rng, NAMES) for _ in range(5)]
    runs = [
        sticky_chain(rng, start, 120, 0.9) + sticky_chain(rng, posterior, 480, 0.5),
        sticky_chain(rng, start, 60, 0.9) + sticky_chain(rng, posterior, 540, 0.5),
    ]
    sample = read_trees(write_runs(tmp_path, runs), burnin=0)
    s = D.suggest_burnin(sample)
    # at least the trees from the start, and not much more
    assert 120 <= s.by_trace[("log clade credibility", 0)] <= 140
    assert 60 <= s.by_trace[("log clade credibility", 1)] <= 80
    assert s.samples == s.by_trace[("log clade credibility", 0)] and s.fraction == s.samples / 600
    lnl = [np.r_[np.linspace(-900, -500, 200), rng.normal(-500, 2, 400)], rng.normal(-500, 2, 600)]
    s = D.suggest_burnin(sample, lnl)
    assert (
        180 <= s.by_trace[("log likelihood", 0)] <= 210
        and s.samples == s.by_trace[("log likelihood", 0)]
    )
    assert "MSER-5" in s.rule
