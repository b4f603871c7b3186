"""The marginal likelihood over all topologies (phylo.marglik.total).

References are computed independently of the code under test: on 4 and 5 taxa every
topology's exact p(D | tau) comes from Gauss-Jacobi quadrature of the JC69 likelihood written
out in tests/marglik/exact.py (3 and 15 topologies, enumerated there too), so the exact
p(D) = sum_tau p(D | tau) / (2n-5)!! is known; tree samples are drawn from the exact topology
posterior.  The statistics of the stratified estimator are checked on synthetic problems by
repeating it many times.

The alignments were simulated once under JC69 (phylo.likelihood.simulate_alignment, seeds 3
and 8) on ((t0:0.15,t1:0.2):0.12,(t2:0.1,t3:0.25)) and
((t0:0.1,t1:0.2):0.15,(t2:0.1,(t3:0.2,t4:0.15):0.12)) and written here.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.marglik import total as T
from phylo.trees import parse_newick

from .exact import (
    EXAMPLE,
    EXAMPLE_NEWICK,
    EXAMPLE_TAXA,
    exact_log_ml,
    exponential_log_prior,
    jc_tree_log_ml,
    unrooted_topologies,
)

SEQS4 = [
    "AAAGACCAGACGCTGGCGGCATCCTACTAGCCGTAGCGGA",
    "AAGGGCAAGCCGCGGTCGGCAGCCTTATAGCAGTAGCGGA",
    "GATGACCAGACGCGGTCGGCATCCTGCTTGCTGTAGTGGA",
    "AATGTCCAGACGCGGTCGGCATCCAGCTTGGTGTACCGGA",
]
SEQS5 = [
    "CTCTTCCCACACAATA",
    "CTCCTCGCACATAATC",
    "CTCTTCCCACACAATC",
    "CCCTTGCCGCGCAATT",
    "CTCTTCCCCCTCAATC",
]
#: Gauss-Jacobi nodes per branch: converged to about 1e-9 (4 taxa) and 2e-6 (5 taxa), see
#: test_quadrature_references
NODES = {4: 14, 5: 7}


@functools.cache
def exact(n: int):
    """``(names, newicks, log p(D | tau) per topology, log p(D))`` of the n-taxon problem."""
    seqs = SEQS4 if n == 4 else SEQS5
    names = [f"t{i}" for i in range(n)]
    tops = unrooted_topologies(names)
    lz = np.array(
        [jc_tree_log_ml(seqs, parse_newick(t, taxa=names).parent, 10.0, NODES[n]) for t in tops]
    )
    return names, tops, lz, float(logsumexp(lz) - math.log(len(tops)))


def write_problem(folder, n: int, n_trees: int, rng, only=None):
    """An alignment file and a Newick tree sample drawn from the exact topology posterior
    (or ``n_trees`` copies of topology ``only``)."""
    names, tops, lz, _ = exact(n)
    seqs = SEQS4 if n == 4 else SEQS5
    aln = folder / "aln.fasta"
    aln.write_text("".join(f">{a}\n{s}\n" for a, s in zip(names, seqs)))
    post = np.exp(lz - logsumexp(lz))
    idx = rng.choice(len(tops), size=n_trees, p=post) if only is None else [only] * n_trees
    trees = folder / "trees.nwk"
    trees.write_text("".join(tops[i] + "\n" for i in idx))
    return str(aln), str(trees)


# -- the references --------------------------------------------------------------------------


def test_quadrature_references():
    # Gauss-Jacobi on u = exp(-4t/3) against the Gauss-Legendre rule on log t of the 3-taxon
    # reference (on a box reaching 1e-11 on log t: the default box's lower end, e^-14, leaves
    # out about 2e-5 of prior mass)
    names = list(EXAMPLE_TAXA)
    star = parse_newick(EXAMPLE_NEWICK, taxa=names).parent
    a = exact_log_ml(EXAMPLE, exponential_log_prior(10.0), lo=-25.0, hi=3.0, nodes=160)
    assert abs(jc_tree_log_ml(EXAMPLE, star, 10.0) - a) < 1e-8
    # exact for a polynomial of degree S per branch from ceil((S+1)/2) nodes on
    tree = parse_newick(unrooted_topologies(names + ["t3"])[0], taxa=names + ["t3"]).parent
    short = [s[:10] for s in SEQS4]
    assert abs(jc_tree_log_ml(short, tree, 10.0, 6) - jc_tree_log_ml(short, tree, 10.0, 9)) < 1e-10
    # the node counts used here have converged
    for n, tol in ((4, 1e-7), (5, 1e-5)):
        names_n, tops, _, _ = exact(n)
        seqs = SEQS4 if n == 4 else SEQS5
        t = parse_newick(tops[-1], taxa=names_n).parent
        m = NODES[n]
        assert abs(jc_tree_log_ml(seqs, t, 10.0, m) - jc_tree_log_ml(seqs, t, 10.0, m + 1)) < tol
    # the enumeration: (2n-5)!! distinct topologies
    for n in (4, 5, 6):
        nm = [f"t{i}" for i in range(n)]
        got = {parse_newick(x, taxa=nm).parent.tobytes() for x in unrooted_topologies(nm)}
        assert len(got) == round(math.exp(T.log_topology_count(n)))


def test_topology_count():
    assert T.log_topology_count(4) == pytest.approx(math.log(3))
    assert T.log_topology_count(5) == pytest.approx(math.log(15))
    assert T.log_topology_count(6) == pytest.approx(math.log(105))
    assert T.log_topology_count(27) == pytest.approx(73.1455, abs=5e-5)  # DS1, issue 14


def test_topology_keys_round_trip():
    rng = np.random.default_rng(2)
    from phylo.likelihood import random_tree

    for n in (5, 64, 200):  # one byte per node up to 128 taxa, two beyond
        t = random_tree(n, rng)
        key = T.topology_key(t.parent)
        assert np.array_equal(T.key_parent(key), t.parent)
        assert key[0] == ("a" if n <= 128 else "b")


# -- against quadrature ------------------------------------------------------------------------


def _run(tmp_path, n, seed, n_trees=200, **kw):
    aln, trees = write_problem(tmp_path, n, n_trees, np.random.default_rng(seed))
    return T.total_marginal_likelihood(aln, [trees], seed=seed, **kw)


@pytest.mark.parametrize(
    "n, options",
    [
        (4, {"k": 1, "draws": 30}),
        (4, {}),
        (5, {"k": 2, "draws": 40}),
        (5, {"k": 0, "draws": 60}),
        (5, {"top_mass": 0.5, "draws": 40}),
        (5, {}),
    ],
)
def test_lands_within_its_standard_error(tmp_path, n, options):
    *_, truth = exact(n)
    est = _run(tmp_path, n, 11, **options)
    assert est.status == "complete" and 0 < est.se < 0.1
    # three standard errors, plus the quadrature's own error
    assert abs(est.log_z - truth) < 3 * est.se + 1e-5, (est.log_z, truth, est.se)
    st = est.stage
    if options.get("k"):
        assert st.k == options["k"] and st.draws == options["draws"]
        assert 0 < st.exact_share < 1 and st.remainder_topologies > 0
    if not options:  # adaptive: every topology ends up in the exact part
        assert est.converged and st.remainder_nats <= 0.05


def test_exact_part_alone_is_the_weighted_sum(tmp_path):
    # with every topology exact, the estimate is logsumexp(log Z_tau) - log 15 of the method's
    # own estimates (glis is exact to its standard errors here)
    est = _run(tmp_path, 5, 3, k=15, draws=50)
    names, tops, lz, truth = exact(5)
    st = est.stage
    assert st.k == 15 and st.draws == 0 and st.exact_share == 1.0 and st.top_mass > 1 - 1e-9
    assert est.se == pytest.approx(st.se_exact)
    assert abs(est.log_z - truth) < 3 * est.se + 1e-5


def test_joint_importance_sampler(tmp_path):
    names, tops, lz, truth = exact(5)
    aln, trees = write_problem(tmp_path, 5, 200, np.random.default_rng(4))
    from phylo.marglik.estimators import get, parse_settings

    ctx = T.TaskContext(
        aln, {"model": "JC69"}, "exp:10", "glis", parse_settings(get("glis"), {}), 4
    )
    sample = T.read_sample([trees], ctx.taxa)
    q = T.fit_proposal(sample)
    ev = T.LocalEvaluator(ctx)
    est = T.joint_estimate(q, ev.joint, 4, 5, 600)
    assert est.draws == 600 and est.topologies <= 15 and 0 < est.se < 0.1
    assert abs(est.log_z - truth) < 3 * est.se + 1e-5, (est.log_z, truth, est.se)


# -- the support -----------------------------------------------------------------------------


def test_support_and_its_widening(tmp_path):
    # a sample of one topology: its SBN knows nothing else, so the estimate is that
    # topology's share alone; widened to its NNI neighbours, the estimate is the sum over the
    # widened support, and closer to the truth
    names, tops, lz, truth = exact(5)
    best = int(np.argmax(lz))
    aln, trees = write_problem(tmp_path, 5, 30, None, only=best)
    plain = T.total_marginal_likelihood(aln, [trees], seed=1, k=1, draws=30)
    log_p = -math.log(15)
    assert plain.stage.draws == 0  # q has nothing outside the exact part
    assert abs(plain.log_z - (log_p + lz[best])) < 3 * plain.se + 1e-5
    wide_q = T.fit_proposal(T.read_sample([trees], names), widen=0.05)
    in_support = np.isfinite(wide_q.log_prob([parse_newick(t, taxa=names) for t in tops]))
    assert 5 <= in_support.sum() < 15  # the topology and its 4 neighbours, maybe more
    wide = T.total_marginal_likelihood(aln, [trees], wide_q, seed=1, k=1, draws=200)
    target = logsumexp(lz[in_support]) + log_p
    assert abs(wide.log_z - target) < 3 * wide.se + 1e-5
    assert plain.log_z < wide.log_z < truth + 3 * wide.se


# -- the statistics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "noise, proportional, K, N, size",
    [(0.0, False, 5, 25, 40), (0.2, True, 2, 40, 15), (0.3, True, 0, 40, 10)],
)
def test_combine_is_unbiased_with_the_stated_variance(noise, proportional, K, N, size):
    # made-up log Z_tau for `size` topologies of 6 taxa and a q unrelated to them (weights
    # vary) or close to proportional (weights nearly equal: the topologies' own errors, shared
    # by repeated draws, dominate); the remainder by importance sampling from q outside its K
    # most probable, repeated 4000 times: the mean of Z^ is Z, and the mean stated variance
    # is the variance of Z^ (times 1 + rel^2, the plug-in's inflation of (Z^ rel)^2)
    rng = np.random.default_rng(7)
    log_z = rng.normal(0.0, 1.5, size)
    logits = log_z + rng.normal(0.0, 0.05, size) if proportional else rng.normal(0, 2, size)
    log_q = logits - logsumexp(logits)
    n_taxa = 6
    log_p = -T.log_topology_count(n_taxa)
    order = np.argsort(-log_q)
    top, rest = order[:K], order[K:]
    q_rest = np.exp(log_q[rest])
    q_rest /= q_rest.sum()
    Z = np.exp(logsumexp(log_z + log_p))
    # each topology's estimate: unbiased on the Z scale (lognormal), relative error rel
    rel = math.sqrt(math.expm1(noise**2))
    est, var = [], []
    for _ in range(4000):
        log_zhat = log_z + noise * rng.standard_normal(size) - noise**2 / 2
        e = [T.TopologyEstimate(log_zhat[i], rel) for i in top]
        j = rest[rng.choice(rest.size, size=N, p=q_rest)]
        r = [T.TopologyEstimate(log_zhat[i], rel) for i in j]
        out = T.combine(n_taxa, e, log_q[top], r, log_q[j], [int(i) for i in j])
        est.append(math.exp(out["log_z"]))
        var.append((out["se"] * math.exp(out["log_z"])) ** 2)
    est, var = np.array(est), np.array(var)
    assert abs(est.mean() - Z) < 4 * est.std() / math.sqrt(est.size)
    assert est.var() * (1 + rel**2) / var.mean() == pytest.approx(1.0, abs=0.1)


def test_combine_parts():
    # everything exact: log Z = logsumexp(log p + log Z_tau), the delta-method error
    e = [T.TopologyEstimate(-10.0, 0.02), T.TopologyEstimate(-11.0, 0.04)]
    out = T.combine(4, e, np.log([0.7, 0.3]), [], np.empty(0))
    z = np.exp([-10.0, -11.0]) / 3
    assert out["log_z"] == pytest.approx(math.log(z.sum()))
    assert out["se"] == pytest.approx(math.sqrt((z[0] * 0.02) ** 2 + (z[1] * 0.04) ** 2) / z.sum())
    assert out["exact_share"] == 1.0 and out["draws"] == 0
    # one remainder topology drawn three times: its weight (1 - Q) p Z / q, its error counted
    # three times over in one term
    r = [T.TopologyEstimate(-12.0, 0.1)] * 3
    out = T.combine(4, e[:1], np.log([0.6]), r, np.log([0.1] * 3), ["x", "x", "x"])
    w = 0.4 * math.exp(-12.0) / 3 / 0.1
    tot = math.exp(-10.0) / 3 + w
    assert out["log_z"] == pytest.approx(math.log(tot))
    assert out["se_sampling"] == 0.0
    assert out["se_remainder_estimates"] == pytest.approx(w * 0.1 / tot)
    assert out["remainder_topologies"] == 1 and out["ess"] == pytest.approx(3.0)


@pytest.mark.parametrize("k", [0.0, 0.3, 0.6, 0.9])
def test_pareto_khat_recovers_the_shape(k):
    # generalized Pareto draws (shape k; k = 0 is the exponential) as importance weights: the
    # fit to their tail agrees with scipy's maximum-likelihood fit of the same exceedances,
    # and over three samples with k
    fits = []
    for seed in (2, 3, 4):
        u = np.random.default_rng(seed).random(20000)
        x = -np.log(u) if k == 0 else (u ** (-k) - 1) / k
        lw = np.log(x)
        khat = T.pareto_khat(lw)
        M = T.tail_size(x.size) - 1
        srt = np.sort(x)
        mle = stats.genpareto.fit(srt[-M:] - srt[-M - 1], floc=0)[0]
        assert khat == pytest.approx(mle, abs=0.04)
        # weights known only by their largest ones give the same fit
        tail = np.sort(lw)[-T.tail_size(lw.size) :]
        assert T.pareto_khat_from_tail(tail, lw.size) == pytest.approx(khat)
        fits.append(khat)
    assert np.mean(fits) == pytest.approx(k, abs=0.06)


def test_khat_needs_a_tail():
    assert math.isnan(T.pareto_khat(np.zeros(10)))
    assert math.isnan(T.pareto_khat(np.zeros(100)))  # all equal


def test_candidates_are_the_top_k_of_q(tmp_path):
    names, tops, lz, _ = exact(5)
    _, trees = write_problem(tmp_path, 5, 300, np.random.default_rng(5))
    sample = T.read_sample([trees], names)
    q = T.fit_proposal(sample)
    cands = T.candidates(q, sample.parents)
    top = q.top(6)
    assert [T.topology_key(p) for p in top.parents] == cands.keys[:6]
    assert np.allclose(top.log_prob, cands.log_q[:6])


def test_the_result_does_not_depend_on_how_topologies_are_estimated(tmp_path):
    aln, trees = write_problem(tmp_path, 5, 200, np.random.default_rng(8))
    names = [f"t{i}" for i in range(5)]
    from phylo.marglik.estimators import get, parse_settings

    opts = parse_settings(get("glis"), {"samples": 2000})
    one = T.TaskContext(aln, {"model": "JC69"}, "exp:10", "glis", opts, 21)
    two = T.TaskContext(aln, {"model": "JC69"}, "exp:10", "glis", opts, 21)
    sample = T.read_sample([trees], names)
    q = T.fit_proposal(sample)
    cands = T.candidates(q, sample.parents)
    a = T.stratified_estimate(q, cands, T.LocalEvaluator(one), 21, 5, k=3, draws=50)
    other = T.LocalEvaluator(two)
    # a second evaluator asked in reverse order, one topology at a time
    ev = lambda keys: {k: other([k])[k] for k in reversed(keys)}
    b = T.stratified_estimate(q, cands, ev, 21, 5, k=3, draws=50)
    assert a.log_z == b.log_z and a.se == b.se
    c = T.stratified_estimate(q, cands, T.LocalEvaluator(one), 22, 5, k=3, draws=50)
    assert c.log_z != a.log_z  # another seed, other draws and estimates


def test_incomplete_when_estimates_are_missing(tmp_path):
    aln, trees = write_problem(tmp_path, 5, 200, np.random.default_rng(8))
    names = [f"t{i}" for i in range(5)]
    sample = T.read_sample([trees], names)
    q = T.fit_proposal(sample)
    cands = T.candidates(q, sample.parents)
    fake = lambda keys: {k: T.TopologyEstimate(-60.0, 0.01) for k in keys[::2]}
    est = T.stratified_estimate(q, cands, fake, 1, 5, k=4, draws=20)
    assert est.status == "incomplete" and est.missing > 0 and math.isnan(est.log_z)


def test_unusable_weights_are_warned_about():
    # a remainder topology whose estimate failed: left out with a warning, not a NaN
    e = [T.TopologyEstimate(-10.0, 0.01)]
    r = [T.TopologyEstimate(math.nan, math.nan), T.TopologyEstimate(-11.0, 0.01)]
    out = T.combine(4, e, np.log([0.5]), r, np.log([0.2, 0.3]), ["a", "b"])
    assert out["failed"] == 1 and np.isfinite(out["log_z"])
    st = T.Stage(
        k=1, draws=2, attempts=2, topologies=3, **{k: v for k, v in out.items() if k != "draws"}
    )
    text = " ".join(T._stage_warnings(st, 0.05))
    assert "1 topologies got no estimate" in text
    # heavy tails: the k-hat and ESS are given
    rng = np.random.default_rng(1)
    lw = 2.0 * np.log(rng.random(400)) * -1.0  # weights u^-2: k = 2
    heavy = T.combine(
        6,
        [],
        np.empty(0),
        [T.TopologyEstimate(x, 0.0) for x in lw],
        np.zeros(400) - 5.0,
    )
    st = T.Stage(
        k=0,
        draws=400,
        attempts=400,
        topologies=400,
        **{k: v for k, v in heavy.items() if k != "draws"},
    )
    text = " ".join(T._stage_warnings(st, 0.05))
    assert "heavy-tailed" in text and "ESS" in text and "remainder dominates" in text


# -- calibration (slow) ------------------------------------------------------------------------


def _support_target(trees_path, names, tops, lz):
    """log of the sum of p(tau) Z_tau over the topologies the SBN fitted to the sample can
    produce: what the estimator estimates (the sample may have missed some topologies)."""
    q = T.fit_proposal(T.read_sample([trees_path], names))
    inside = np.isfinite(q.log_prob([parse_newick(t, taxa=names) for t in tops]))
    return float(logsumexp(lz[inside]) - math.log(len(tops))), int(inside.sum())


@pytest.mark.slow
def test_standard_errors_are_calibrated(tmp_path):
    """Over 80 replicates (each a new tree sample and seed) of a remainder-heavy setting on 5
    taxa (2 exact topologies holding about 30% of Z, 200 remainder draws), (log Z^ - log Z_q)
    / se looks standard normal, Z_q being the exact sum over the topologies the SBN can
    produce.  (With 30 draws the z-scores have a heavier left tail, sd about 1.3: the
    standard error of few importance weights is itself uncertain.)"""
    names, tops, lz, _ = exact(5)
    z = []
    for rep in range(80):
        folder = tmp_path / f"r{rep}"
        folder.mkdir()
        aln, trees = write_problem(folder, 5, 100, np.random.default_rng(1000 + rep))
        target, _ = _support_target(trees, names, tops, lz)
        est = T.total_marginal_likelihood(aln, [trees], seed=rep, k=2, draws=200)
        z.append((est.log_z - target) / est.se)
    z = np.array(z)
    print(f"z-scores: mean {z.mean():.3f}, sd {z.std(ddof=1):.3f}")
    assert abs(z.mean()) < 0.35
    assert 0.75 < z.std(ddof=1) < 1.3
    assert stats.kstest(z, "norm").pvalue > 0.01


def _stage(share, se=0.01):
    return T.Stage(
        k=1, draws=1, attempts=1, topologies=1, top_mass=0.5, log_z=0.0, se=se, log_exact=0.0,
        log_remainder=0.0, exact_share=0.5, remainder_nats=share, se_exact=0.0,
        se_sampling=0.0, se_remainder_estimates=0.0, remainder_topologies=1, ess=1.0, khat=0.0,
    )  # fmt: skip


def test_k_stops_growing_when_the_share_is_out_of_reach():
    # DS1-like: the share halves with every doubling of K: one more stage fits the budget
    assert T._share_out_of_reach([_stage(0.153), _stage(0.073)], 0.05, 124, 2000) is None
    # a flat posterior: 0.5 -> 0.45 nats needs 21 more doublings (0.45 * 0.9^21 < 0.05)
    why = T._share_out_of_reach([_stage(0.5), _stage(0.45)], 0.05, 300, 2000)
    assert "21 more doublings" in why and "0.45 nats" in why
    assert "did not lower" in T._share_out_of_reach([_stage(0.4), _stage(0.41)], 0.05, 300, 2000)


# -- branch lengths drawn from an `sbn vi` model ------------------------------------------------


def test_vi_branch_proposal_estimates_each_topology_and_the_total(tmp_path):
    # a family trained briefly on the 5-taxon problem's sample (support: the 12 of its 15
    # topologies in 20 draws); the per-topology estimator must match quadrature within its
    # standard error for every topology of the support, and fall back to glis outside it
    from phylo.execution import task_rng
    from phylo.likelihood import JC69, TopologyBatchLikelihood, model_spec, read_alignment
    from phylo.trees import read_trees
    from phylo.trees.topology import canonical
    from phylo.vi import Settings, Target, VariationalFamily, train

    names, tops, lz, truth = exact(5)
    aln, trees = write_problem(tmp_path, 5, 20, np.random.default_rng(3))
    # the alignment's taxa in another order than the model's: branches must be matched
    records = open(aln).read().split(">")[1:]
    open(aln, "w").write("".join(">" + r for r in reversed(records)))
    family = VariationalFamily.from_sample(read_trees([trees]))
    assert list(family.taxa) != list(read_alignment(aln).taxa)
    target = Target(TopologyBatchLikelihood(read_alignment(aln), family.taxa, JC69()))
    settings = Settings(iterations=1500, lr=0.01, anneal_iterations=100, trace_every=500,
                        test_every=1500)  # fmt: skip
    train(family, target, settings, task_rng(1, "vi"))
    path = str(tmp_path / "vi.json")
    family.save(path)

    ctx = T.TaskContext(aln, model_spec("JC69"), "exp:10", T.VI_METHOD, {"draws": 4000}, 5,
                        None, path)  # fmt: skip
    in_support = np.isfinite(family.sbn.log_prob(tops))
    assert 1 < in_support.sum() < len(tops)
    for i, newick in enumerate(tops):
        tree = parse_newick(newick, taxa=list(ctx.taxa)).unrooted()  # keys: alignment order
        key = T.topology_key(canonical(tree.parent, 5, False))
        row = T.run_task(ctx, (key, "z"))
        if in_support[i]:
            assert "vi_fallback" not in row["diagnostics"]
            assert 0 < row["se"] < 0.1 and row["evaluations"] == 4000
        else:
            assert "vi_fallback=outside_support" in row["diagnostics"]
        assert abs(row["log_ml"] - lz[i]) < 4 * row["se"] + 1e-4, (i, row["log_ml"], lz[i])

    # the total over q's support (the topologies outside it have no way to be counted)
    est = T.run_total(aln, [trees], sbn_path=path, method=T.VI_METHOD, seed=2)
    on_support = float(logsumexp(lz[in_support]) - math.log(len(tops)))
    assert truth - on_support > 0.01
    assert est.complete and abs(est.estimate.log_z - on_support) < 3 * est.estimate.se + 1e-4
    with pytest.raises(InputError, match="give it with --sbn"):
        T.run_total(aln, [trees], method=T.VI_METHOD, seed=2)


def test_models_compared_over_topologies(tmp_path):
    # K80 with kappa fixed at 1 is JC69: over all 15 topologies both must land on the
    # quadrature's log p(D) within their errors, their Bayes factor on 0, and each model's
    # number must be marglik total's for that model with the same seed
    from click.testing import CliRunner

    from phylo.cli.marglik import main as marglik
    from phylo.tables import read_table

    *_, truth = exact(5)
    aln, trees = write_problem(tmp_path, 5, 200, np.random.default_rng(11))
    out = tmp_path / "models.tsv"
    args = ["compare-models", aln, trees, "--over-topologies", "--model", "JC69", "--model",
            "K80", "--prior", "kappa=fixed:1", "--seed", "4", "-o", str(out), "-q"]  # fmt: skip
    r = CliRunner().invoke(marglik, args)
    assert r.exit_code == 0, r.output
    rows = {row["model"]: row for row in read_table(str(out))[2]}
    z = {m: (float(rows[m]["log_ml"]), float(rows[m]["se"])) for m in ("JC69", "K80")}
    for m, (lz, se) in z.items():
        assert rows[m]["tree"] == "total" and 0 < se < 0.1
        assert abs(lz - truth) < 3 * se + 1e-4, (m, lz, truth, se)
    bf, se = z["JC69"][0] - z["K80"][0], math.hypot(z["JC69"][1], z["K80"][1])
    assert abs(bf) < 3 * se
    assert "JC69\tK80\t" in r.output
    direct = T.run_total(aln, [trees], seed=4)
    assert direct.estimate.log_z == pytest.approx(z["JC69"][0], rel=1e-14)  # 15 digits
    # without --over-topologies TREES is one file of fixed topologies
    r = CliRunner().invoke(marglik, ["compare-models", aln, trees, trees, "--model", "JC69",
                                     "--model", "K80"])  # fmt: skip
    assert r.exit_code == 2 and "give one TREES file" in r.output


def test_vi_is_warns_about_a_model_fitted_on_the_elbo(tmp_path):
    # the ELBO's lognormals are narrow importance proposals (on DS1 vi-is was biased low by up
    # to 0.12 nats with them): a run with such a model says so, one with VBPI's objective not
    from phylo.likelihood import read_alignment
    from phylo.trees import read_trees
    from phylo.vi import Settings, variational_inference

    aln, trees = write_problem(tmp_path, 5, 20, np.random.default_rng(3))
    said = {}
    for objective in ("bound", "elbo"):
        res = variational_inference(
            read_alignment(aln), read_trees([trees]),
            Settings(iterations=30, anneal_iterations=10, branch_objective=objective),
            seed=1, threads=1, evaluate_repeats=0,
        )  # fmt: skip
        path = str(tmp_path / f"{objective}.json")
        res.family.save(path)
        out = str(tmp_path / f"{objective}.tsv")
        est = T.run_total(aln, [trees], sbn_path=path, method=T.VI_METHOD, seed=2, k=4, draws=0,
                          output=out)  # fmt: skip
        said[objective] = any("fitted on the ELBO" in w for w in est.warnings())
        # and whichever the objective: a warning when some topology's weights are heavy-tailed
        lines = open(out.replace(".tsv", ".topologies.tsv")).read().splitlines()
        body = [ln.split("\t") for ln in lines if ln and not ln.startswith("#")]
        col = body[0].index("diagnostics")
        khats = [float(r[col].split("khat=")[1].split(";")[0]) for r in body[1:]]
        heavy = sum(k > T.KHAT_LIMIT for k in khats)
        noted = [w for w in est.warnings() if "heavy-tailed importance weights" in w]
        assert len(khats) == 4 and len(noted) == (heavy > 0)
        if heavy:
            assert noted[0].startswith(f"{heavy} of 4 topologies")
    assert said == {"bound": False, "elbo": True}
