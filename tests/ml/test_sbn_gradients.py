"""Gradients of expectations under an SBN, checked exactly on 5 taxa (15 unrooted topologies,
105 rooted trees): every estimator's expectation, computed by enumerating all its possible
samples, equals the exact gradient, computed independently from the 105 rooted derivations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from phylo.ml import sbn_gradients as G
from phylo.ml.enumeration import unordered_samples_without_replacement
from phylo.sbn import fit
from phylo.trees import parse_newick, read_trees

NAMES = ["t0", "t1", "t2", "t3", "t4"]


def all_unrooted_newicks(names):
    """Every unrooted binary topology, by stepwise addition of taxa to every edge."""
    trees = [f"({names[0]},{names[1]},{names[2]})"]

    def insert(tree, leaf):
        # all ways to attach `leaf` to an edge: wrap each subtree token in (x,leaf)
        out = []
        depth = 0
        starts = []
        i = 0
        while i < len(tree):
            c = tree[i]
            if c == "(":
                starts.append(i)
                i += 1
            elif c == ")":
                s = starts.pop()
                if starts:  # not the root
                    out.append(tree[:s] + "(" + tree[s : i + 1] + f",{leaf})" + tree[i + 1 :])
                i += 1
            elif c == ",":
                i += 1
            else:
                j = i
                while j < len(tree) and tree[j] not in "(),":
                    j += 1
                out.append(tree[:i] + f"({tree[i:j]},{leaf})" + tree[j:])
                i = j
        del depth
        return out

    for leaf in names[3:]:
        trees = [t for tree in trees for t in insert(tree, leaf)]
    return [t + ";" for t in trees]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    newicks = all_unrooted_newicks(NAMES)
    path = tmp_path_factory.mktemp("sbn") / "all.nwk"
    path.write_text("\n".join(newicks) + "\n")
    sample = read_trees(str(path), burnin=0)
    assert sample.n_topologies == 15
    model = fit(sample, "sa")
    rng = np.random.default_rng(3)
    dist = G.SBNDistribution(model, rng.normal(size=model.n_params))
    topologies = sample.parents
    keys = {row.tobytes(): i for i, row in enumerate(topologies)}
    f_table = rng.normal(size=15)
    log_target = rng.normal(size=15) * 2

    def f(parents):
        return np.array(
            [f_table[keys[np.asarray(r, np.int32).tobytes()]] for r in np.atleast_2d(parents)]
        )

    def lt(parents):
        return np.array(
            [log_target[keys[np.asarray(r, np.int32).tobytes()]] for r in np.atleast_2d(parents)]
        )

    # every complete rooted derivation, by depth-first expansion
    derivations = []

    def walk(prefix):
        tokens, _ = dist.expand(prefix)
        if not tokens:
            derivations.append(prefix)
        for t in tokens:
            walk(prefix + (t,))

    walk(())
    return dict(
        dist=dist,
        topologies=topologies,
        keys=keys,
        f=f,
        lt=lt,
        derivations=derivations,
        f_table=f_table,
        log_target=log_target,
    )


def exact_topology_quantities(s):
    """q(T) and grad q(T) of the 15 topologies from the 105 derivations (independent of the
    SBN's own rooting kernels)."""
    dist = s["dist"]
    d = s["derivations"]
    log_qd = dist.derivation_log_prob(d)
    score_d = dist.derivation_score(d)
    topo = dist.derivation_topology(d)
    q = np.zeros(15)
    dq = np.zeros((15, dist.n_params))
    for lq, sc, row in zip(log_qd, score_d, topo):
        i = s["keys"][row.tobytes()]
        q[i] += np.exp(lq)
        dq[i] += np.exp(lq) * sc
    return q, dq


def test_derivations_enumerate_the_distribution(setup):
    s = setup
    dist = s["dist"]
    assert len(s["derivations"]) == 105
    q, _ = exact_topology_quantities(s)
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(np.log(q), dist.log_prob(s["topologies"]), atol=1e-12)


def test_unrooted_score_is_the_exact_gradient(setup):
    s = setup
    dist = s["dist"]
    q, dq = exact_topology_quantities(s)
    assert np.allclose(dist.score(s["topologies"]), dq / q[:, None], atol=1e-10)
    # and central differences of log q agree
    h = 1e-6
    j = 7
    e = np.zeros(dist.n_params)
    e[j] = h
    up = dist.with_logits(dist.phi + e).log_prob(s["topologies"])
    dn = dist.with_logits(dist.phi - e).log_prob(s["topologies"])
    assert np.allclose((up - dn) / (2 * h), dist.score(s["topologies"])[:, j], atol=1e-6)


def exact_gradient(s):
    _, dq = exact_topology_quantities(s)
    return s["f_table"] @ dq


def test_reinforce_is_unbiased(setup):
    s = setup
    dist, tops = s["dist"], s["topologies"]
    q = np.exp(dist.log_prob(tops))
    mean = np.zeros(dist.n_params)
    for a, b in itertools.product(range(15), repeat=2):
        mean += q[a] * q[b] * G.reinforce_from_samples(dist, s["f"], tops[[a, b]])
    assert np.allclose(mean, exact_gradient(s), atol=1e-10)
    mean1 = sum(
        q[a] * G.reinforce_from_samples(dist, s["f"], tops[[a]], baseline=0.0) for a in range(15)
    )
    assert np.allclose(mean1, exact_gradient(s), atol=1e-10)


def test_unordered_set_is_unbiased(setup):
    s = setup
    dist = s["dist"]
    d = s["derivations"]
    log_qd = dist.derivation_log_prob(d)
    for k in (1, 2):
        sets, log_ps = unordered_samples_without_replacement(log_qd, k)
        mean = np.zeros(dist.n_params)
        for idx, lp in zip(sets, log_ps):
            mean += np.exp(lp) * G.unordered_set_from_derivations(dist, s["f"], [d[i] for i in idx])
        assert np.allclose(mean, exact_gradient(s), atol=1e-10), k


def test_stochastic_beam_search_samples_sets_with_their_probabilities(setup):
    """Inclusion frequencies of the most probable rooted trees in k=2 beam samples match
    their exact inclusion probabilities (4 standard errors)."""
    s = setup
    dist = s["dist"]
    d = s["derivations"]
    sets, log_ps = unordered_samples_without_replacement(dist.derivation_log_prob(d), 2)
    incl = np.zeros(len(d))
    for idx, lp in zip(sets, log_ps):
        incl[idx] += np.exp(lp)
    rng = np.random.default_rng(11)
    n = 1500
    hits = np.zeros(len(d))
    index = {p: i for i, p in enumerate(d)}
    from phylo.ml.unordered_set import stochastic_beam_search

    for _ in range(n):
        beam = stochastic_beam_search(dist.expand, 2, rng)
        for p in beam.sequences:
            hits[index[tuple(p)]] += 1
    top = np.argsort(-incl)[:6]
    se = np.sqrt(incl[top] * (1 - incl[top]) / n)
    assert np.all(np.abs(hits[top] / n - incl[top]) < 4 * se)


def test_sum_and_sample_is_unbiased(setup):
    s = setup
    dist, tops = s["dist"], s["topologies"]
    top = dist.model.top(4)
    q = np.exp(dist.log_prob(tops))
    summed_keys = {r.tobytes() for r in top.parents}
    rest = [i for i in range(15) if tops[i].tobytes() not in summed_keys]
    q_rest = q[rest].sum()
    mean = np.zeros(dist.n_params)
    for i in rest:
        mean += (q[i] / q_rest) * G.sum_and_sample_from(
            dist, s["f"], top.parents, top.log_prob, tops[i]
        )
    assert np.allclose(mean, exact_gradient(s), atol=1e-10)
    # all the mass summed: no draw needed, the estimate is exact
    full = dist.model.top(15)
    assert np.allclose(
        G.sum_and_sample_from(dist, s["f"], full.parents, full.log_prob, None),
        exact_gradient(s),
        atol=1e-10,
    )
    # and the sampling version runs its rejection step
    g = G.sum_and_sample_gradient(dist, s["f"], 4, np.random.default_rng(0))
    assert g.shape == (dist.n_params,)


def test_vimco_is_unbiased_for_the_multi_sample_bound(setup):
    s = setup
    dist, tops = s["dist"], s["topologies"]
    q, dq = exact_topology_quantities(s)
    score = dq / q[:, None]
    log_w = s["log_target"] - np.log(q)
    K = 2
    bound = 0.0
    grad = np.zeros(dist.n_params)
    mean = np.zeros(dist.n_params)
    for idx in itertools.product(range(15), repeat=K):
        idx = list(idx)
        pq = np.prod(q[idx])
        lw = log_w[idx]
        L = logsumexp(lw) - np.log(K)
        bound += pq * L
        # d/dphi [prod q] L + prod q dL; dlog w_j = -score_j
        wn = np.exp(lw - logsumexp(lw))
        grad += pq * (score[idx].sum(axis=0) * L - wn @ score[idx])
        est_L, est_g = G.vimco_from_samples(dist, s["lt"], tops[idx])
        assert est_L == pytest.approx(L, abs=1e-12)
        mean += pq * est_g
    assert np.allclose(mean, grad, atol=1e-10)
    # the bound is below log Z (the normaliser of the target)
    assert bound < logsumexp(s["log_target"])


def test_variational_inference_over_topologies_with_vimco(setup):
    """Gradient ascent on the 4-sample bound moves q towards the target: KL(q || p) drops."""
    s = setup
    dist = s["dist"]
    tops = s["topologies"]
    log_p = s["log_target"] - logsumexp(s["log_target"])

    def kl(d):
        lq = d.log_prob(tops)
        return float(np.exp(lq) @ (lq - log_p))

    rng = np.random.default_rng(5)
    phi = np.zeros(dist.n_params)
    cur = dist.with_logits(phi)
    start = kl(cur)
    m = np.zeros_like(phi)
    v = np.zeros_like(phi)
    for t in range(1, 301):
        _, g = G.vimco_gradient(cur, s["lt"], 4, rng)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        phi = phi + 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        cur = dist.with_logits(phi)
    assert kl(cur) < 0.25 * start, (start, kl(cur))


def test_needs_an_unrooted_sbn(setup, tmp_path):
    from phylo.errors import InputError

    p = tmp_path / "r.nwk"
    p.write_text("((t0,t1),(t2,(t3,t4)));\n(((t0,t1),t2),(t3,t4));\n")
    rooted = fit(read_trees(str(p), burnin=0, rooted=True), "sa")
    with pytest.raises(InputError, match="unrooted"):
        G.SBNDistribution(rooted)
    assert parse_newick("((t0,t1),(t2,(t3,t4)));").n_taxa == 5
