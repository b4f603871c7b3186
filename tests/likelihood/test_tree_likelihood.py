"""TreeLikelihood against independent computations: enumeration, log-space pruning,
finite differences, rerooting, batches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from phylo.errors import InputError
from phylo.likelihood import (
    GTR,
    HKY,
    JC69,
    Alignment,
    TreeLikelihood,
    random_tree,
    read_alignment,
    simulate_alignment,
)
from phylo.likelihood import tree_likelihood as tl_module
from phylo.trees import Tree
from tests.conftest import shared_path
from tests.likelihood._trees import parse_tree, read_first_tree

PI = [0.1, 0.2, 0.3, 0.4]
GTR_GI = GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=3, pinv=0.2)


def brute_force(aln, tree, model, t):
    """Sum over all internal states of every site: no pruning, no scaling."""
    n, N = aln.n_taxa, len(tree.parent)
    par = np.asarray(tree.parent)
    bits = np.array([1, 2, 4, 8])
    pi = model.frequencies
    total = 0.0
    for site in range(aln.n_sites):
        tip = ((aln.codes[:, site][:, None] & bits) != 0).astype(float)
        like = 0.0
        for rate, w in zip(model.category_rates(), model.category_weights()):
            P = [model.transition_matrix(t[v], rate) for v in range(N - 1)]
            s = 0.0
            for states in itertools.product(range(4), repeat=N - n):
                x = dict(zip(range(n, N), states))
                pr = pi[x[N - 1]]
                for v in range(n, N - 1):
                    pr *= P[v][x[par[v]], x[v]]
                for v in range(n):
                    pr *= P[v][x[par[v]]] @ tip[v]
                s += pr
            like += w * s
        inv = sum(pi[s] * np.prod(tip[:, s]) for s in range(4))
        total += np.log((1 - model.pinv) * like + model.pinv * inv)
    return total


def logspace_pruning(aln, tree, model, t):
    """Pruning with every partial kept as a logarithm (cannot underflow)."""
    n, N = aln.n_taxa, len(tree.parent)
    par = np.asarray(tree.parent)
    pats = aln.patterns()
    logtip = np.log(np.maximum(pats.tip_partials(), 1e-300))  # (n, 4, P)
    logtip[pats.tip_partials() == 0] = -np.inf
    out = []
    for rate in model.category_rates():
        logp = [
            np.log(np.maximum(model.transition_matrix(t[v], rate), 1e-300)) for v in range(N - 1)
        ]
        part = {v: logtip[v] for v in range(n)}
        for v in range(n, N):
            kids = [c for c in range(N - 1) if par[c] == v]
            acc = 0.0
            for c in kids:
                acc = acc + logsumexp(logp[c][:, :, None] + part[c][None, :, :], axis=1)
            part[v] = acc
        out.append(logsumexp(np.log(model.frequencies)[:, None] + part[N - 1], axis=0))
    site = logsumexp(np.array(out) + np.log(model.category_weights())[:, None], axis=0)
    if model.pinv > 0:
        # invariant sites: sum_s pi_s over the states every taxon allows
        inv = np.einsum("s,sp->p", model.frequencies, pats.tip_partials().prod(axis=0))
        with np.errstate(divide="ignore"):
            site = np.logaddexp(np.log1p(-model.pinv) + site, np.log(model.pinv * inv))
    return float(pats.weights @ site)


def fd_gradient(lik, t, rel_h=1e-4):
    """Five-point central differences with steps relative to each branch length."""
    g = np.empty_like(t)
    for i in range(t.size):
        h = rel_h * max(t[i], 1e-3)
        f = []
        for k in (-2, -1, 1, 2):
            x = t.copy()
            x[i] += k * h
            f.append(lik.log_likelihood(x))
        g[i] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
    return g


def rel_err(a, b):
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0))


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(11)
    tree = random_tree(5, rng, 0.2)
    aln = simulate_alignment(tree, GTR_GI, 40, rng)
    # ambiguity codes and missing data in some cells
    seqs = aln.sequences()
    seqs[0] = "R" + seqs[0][1:]
    seqs[1] = seqs[1][:5] + "-" + seqs[1][6:]
    seqs[2] = seqs[2][:7] + "Y" + seqs[2][8:]
    return Alignment.from_sequences(aln.taxa, seqs), tree


@pytest.mark.parametrize("model", [JC69(), HKY(3.0, PI, alpha=1.2, categories=2), GTR_GI])
def test_matches_enumeration(small, model):
    aln, tree = small
    t = tree.branch_lengths[:-1]
    lik = TreeLikelihood(aln, tree, model)
    assert abs(lik.log_likelihood(t) - brute_force(aln, tree, model, t)) < 1e-9


@pytest.mark.parametrize(
    "n, mean, sites, model, below",
    [
        # 128 taxa: patterns fall below the rescaling threshold 2^-100 = e^-69.3
        (128, 0.2, 300, HKY(2.0, PI, alpha=0.4, categories=2), -69.4),
        # 600 taxa: site likelihoods below e^-745 would underflow to 0 without rescaling
        (600, 0.6, 60, JC69(), -745.2),
    ],
)
def test_many_taxa_rescaling_matches_logspace(n, mean, sites, model, below):
    rng = np.random.default_rng(n)
    tree = random_tree(n, rng, mean, 1e-5)
    aln = simulate_alignment(tree, model, sites, rng)
    t = tree.branch_lengths[:-1]
    lik = TreeLikelihood(aln, tree, model)
    ours = lik.log_likelihood(t)
    site = lik.pattern_log_likelihoods(t)
    assert np.isfinite(site).all() and site.min() < below
    assert abs(ours - logspace_pruning(aln, tree, model, t)) < 1e-10 * abs(ours)
    ll, g = lik.gradient(t)
    assert np.isfinite(g).all() and ll == pytest.approx(ours, rel=1e-12)


@pytest.mark.parametrize(
    "model", [JC69(), GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4, pinv=0.15)]
)
def test_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(5)
    tree = random_tree(16, rng, 0.1, 1e-3)
    aln = simulate_alignment(tree, model, 300, rng)
    t = tree.branch_lengths[:-1]
    lik = TreeLikelihood(aln, tree, model)
    ll, g = lik.gradient(t)
    assert ll == pytest.approx(lik.log_likelihood(t), abs=1e-9)
    assert rel_err(g, fd_gradient(lik, t)) < 1e-6


def test_ds1_gradient_matches_finite_differences():
    aln = read_alignment(str(shared_path("ds/zcrabbit-vbpi/data/hohna_datasets_fasta/DS1.fasta")))
    tree = read_first_tree(shared_path("ds/phylovi-bito/data/DS1.subsampled_10.t.nwk"), aln.taxa)
    t = np.maximum(np.asarray(tree.branch_lengths[:-1], float), 1e-4)
    lik = TreeLikelihood(aln, tree, JC69())
    _, g = lik.gradient(t)
    assert rel_err(g, fd_gradient(lik, t)) < 1e-6


def test_rooting_at_any_internal_node():
    rng = np.random.default_rng(8)
    tree = random_tree(12, rng, 0.1)
    model = GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4, pinv=0.1)
    aln = simulate_alignment(tree, model, 200, rng)
    t = tree.branch_lengths[:-1]
    ll0, g0 = TreeLikelihood(aln, tree, model).gradient(t)
    for root in range(tree.n_taxa, tree.n_nodes):
        ll, g = TreeLikelihood(aln, tree, model, root=root).gradient(t)
        assert abs(ll - ll0) < 1e-9 * abs(ll0)
        assert np.allclose(g, g0, rtol=1e-9, atol=1e-9)
    with pytest.raises(InputError):
        TreeLikelihood(aln, tree, model, root=0)


def rooted_version(tree, edge, fraction):
    """The unrooted tree rooted on the edge above ``edge`` (a new bifurcating root)."""
    N = tree.n_nodes
    edges = [(v, int(tree.parent[v])) for v in range(N - 1)]
    lengths = list(tree.branch_lengths[:-1])
    a, b = edges[edge]
    tl = lengths[edge]
    new = N
    del edges[edge], lengths[edge]
    edges += [(a, new), (b, new)]
    lengths += [fraction * tl, (1 - fraction) * tl]
    from phylo.likelihood.simulate import tree_from_edges

    return tree_from_edges(tree.taxa, edges, lengths, root=new)


def test_rooted_tree_root_branches_share_a_gradient():
    rng = np.random.default_rng(9)
    tree = random_tree(9, rng, 0.15)
    model = HKY(2.0, PI, alpha=0.7, categories=4)
    aln = simulate_alignment(tree, model, 150, rng)
    ll_u = TreeLikelihood(aln, tree, model).log_likelihood(tree.branch_lengths[:-1])
    rt = rooted_version(tree, 4, 0.3)
    lik = TreeLikelihood(aln, rt, model)
    assert lik.n_branches == 2 * 9 - 2
    ll, g = lik.gradient(rt.branch_lengths[:-1])
    assert abs(ll - ll_u) < 1e-9 * abs(ll_u)
    kids = np.flatnonzero(np.asarray(rt.parent) == rt.n_nodes - 1)
    assert np.isclose(g[kids[0]], g[kids[1]], rtol=1e-10)
    assert rel_err(g, fd_gradient(lik, rt.branch_lengths[:-1])) < 1e-6
    # a rooted tree re-rooted elsewhere passes through its degree-2 root
    for root in range(rt.n_taxa, rt.n_nodes - 1):
        ll2, g2 = TreeLikelihood(aln, rt, model, root=root).gradient(rt.branch_lengths[:-1])
        assert abs(ll2 - ll) < 1e-9 * abs(ll) and np.allclose(g2, g, rtol=1e-9, atol=1e-9)


def test_batches_threads_and_blocks_agree(monkeypatch):
    rng = np.random.default_rng(13)
    tree = random_tree(20, rng, 0.1)
    model = GTR([1.5, 4.0, 0.7, 1.2, 5.0, 1.0], PI, alpha=0.5, categories=4)
    aln = simulate_alignment(tree, model, 1500, rng)
    t = tree.branch_lengths[:-1]
    T = t * rng.uniform(0.5, 2.0, size=(7, t.size))
    lik = TreeLikelihood(aln, tree, model)
    singles = [lik.gradient(x) for x in T]
    ll_b = lik.log_likelihood_batch(T)
    llg, G = lik.gradient_batch(T)
    for b, (ll, g) in enumerate(singles):
        assert ll_b[b] == pytest.approx(ll, abs=1e-9)
        assert llg[b] == pytest.approx(ll, abs=1e-9)
        assert np.allclose(G[b], g, rtol=1e-12, atol=1e-10)
    par = TreeLikelihood(aln, tree, model, threads=2)
    ll2, g2 = par.gradient(T[0])
    assert ll2 == pytest.approx(singles[0][0], abs=1e-9) and np.allclose(g2, singles[0][1])
    assert par.log_likelihood(T[0]) == pytest.approx(singles[0][0], abs=1e-9)
    monkeypatch.setattr(tl_module, "CACHE_BYTES", 1)  # many small pattern blocks
    small = TreeLikelihood(aln, tree, model)
    assert small._bounds.shape[0] > 3
    ll3, g3 = small.gradient(T[0])
    assert ll3 == pytest.approx(singles[0][0], abs=1e-9) and np.allclose(g3, singles[0][1])


def test_site_log_likelihoods(small):
    aln, tree = small
    lik = TreeLikelihood(aln, tree, GTR_GI)
    t = tree.branch_lengths[:-1]
    sites = lik.site_log_likelihoods(t)
    assert sites.shape == (aln.n_sites,)
    assert sites.sum() == pytest.approx(lik.log_likelihood(t), abs=1e-10)
    one = Alignment.from_sequences(aln.taxa, [s[3] for s in aln.sequences()])
    assert sites[3] == pytest.approx(TreeLikelihood(one, tree, GTR_GI).log_likelihood(t))
    arrays = lik.model_arrays()
    assert np.allclose(
        arrays["eigenvectors"] @ np.diag(arrays["eigenvalues"]) @ arrays["inverse"],
        arrays["rate_matrix"],
    )


def test_taxa_matched_by_name(small):
    aln, tree = small
    t = tree.branch_lengths[:-1]
    ll = TreeLikelihood(aln, tree, JC69()).log_likelihood(t)
    order = [4, 2, 0, 3, 1]
    shuffled = Alignment.from_sequences(
        [aln.taxa[i] for i in order], [aln.sequences()[i] for i in order]
    )
    assert TreeLikelihood(shuffled, tree, JC69()).log_likelihood(t) == pytest.approx(ll)


def test_newick_tree_input(small):
    aln, tree = small
    parsed = parse_tree(tree.to_newick(), aln.taxa)
    t_parsed = np.asarray(parsed.branch_lengths[:-1], float)
    a = TreeLikelihood(aln, parsed, GTR_GI).log_likelihood(t_parsed)
    b = TreeLikelihood(aln, tree, GTR_GI).log_likelihood(tree.branch_lengths[:-1])
    assert a == pytest.approx(b, abs=1e-10)


def test_bad_input(small):
    aln, tree = small
    lik = TreeLikelihood(aln, tree, JC69())
    t = tree.branch_lengths[:-1].copy()
    for bad in (np.r_[t[:-1], -0.1], np.r_[t[:-1], np.nan], t[:-1], np.r_[t, 0.1]):
        with pytest.raises(InputError):
            lik.log_likelihood(bad)
    with pytest.raises(InputError):
        lik.log_likelihood_batch(t[None, :-1])
    with pytest.raises(InputError, match="negative"):
        lik.gradient(np.r_[t[:-1], -1.0])
    other = Alignment.from_sequences(["x"] + list(aln.taxa[1:]), aln.sequences())
    with pytest.raises(InputError, match="only in the tree: 't0'; only in the alignment: 'x'"):
        TreeLikelihood(other, tree, JC69())
    bare = Tree(tree.taxa, tree.parent, None)
    with pytest.raises(InputError, match="no branch lengths"):
        TreeLikelihood(aln, bare, JC69()).log_likelihood()


def _split_names(tree):
    """Branch i -> frozenset of the taxon names on the side of its split without taxon 0."""
    names = list(tree.taxa)
    out = []
    for row in np.asarray(tree.splits()):
        members = [names[i] for i in range(len(names)) if (int(row[i // 64]) >> (i % 64)) & 1]
        out.append(frozenset(members))
    return out


def test_branch_order_maps_to_splits():
    """The same tree read with two taxon orders: lengths moved by split give the same value."""
    rng = np.random.default_rng(21)
    base = random_tree(10, rng, 0.1)
    model = HKY(2.0, PI, alpha=0.5, categories=4)
    aln = simulate_alignment(base, model, 200, rng)
    text = base.to_newick()
    a = parse_tree(text, aln.taxa)
    b = parse_tree(text, list(reversed(aln.taxa)))
    la, lb = TreeLikelihood(aln, a, model), TreeLikelihood(aln, b, model)
    assert np.array_equal(la.branch_splits(), np.asarray(a.splits()))
    ta = rng.uniform(0.01, 0.3, size=la.n_branches)
    # a split and its complement name the same branch
    full = frozenset(aln.taxa)
    key = lambda s: min(s, full - s, key=sorted)  # noqa: E731
    pos_b = {key(s): i for i, s in enumerate(_split_names(b))}
    tb = np.empty_like(ta)
    for i, s in enumerate(_split_names(a)):
        tb[pos_b[key(s)]] = ta[i]
    assert la.log_likelihood(ta) == pytest.approx(lb.log_likelihood(tb), abs=1e-9)
    ga = la.gradient(ta)[1]
    gb = lb.gradient(tb)[1]
    assert np.allclose([gb[pos_b[key(s)]] for s in _split_names(a)], ga, rtol=1e-10)


def test_rooted_tree_from_newick():
    from phylo.trees import parse_newick

    rng = np.random.default_rng(23)
    base = random_tree(7, rng, 0.1)
    aln = simulate_alignment(base, JC69(), 100, rng)
    text = "((t0:0.1,t1:0.2):0.05,((t2:0.1,t3:0.3):0.2,(t4:0.1,(t5:0.1,t6:0.2):0.1):0.15):0.07);"
    rooted = parse_newick(text, taxa=list(aln.taxa), rooted=True)
    unrooted = parse_newick(text, taxa=list(aln.taxa))
    lr = TreeLikelihood(aln, rooted, JC69())
    lu = TreeLikelihood(aln, unrooted, JC69())
    assert lr.n_branches == 12 and lu.n_branches == 11
    assert lr.log_likelihood() == pytest.approx(lu.log_likelihood(), abs=1e-9)


def test_missing_column_has_likelihood_one(small):
    """Under +G+I a column with every taxon missing has probability exactly 1, and the
    invariant-site term is the pruning of a rate-0 category (all branch lengths 0)."""
    aln, tree = small
    model = HKY(2.0, PI, alpha=0.5, categories=4, pinv=0.3)
    gaps = Alignment.from_sequences(aln.taxa, ["-" for _ in aln.taxa])
    t = tree.branch_lengths[:-1]
    assert TreeLikelihood(gaps, tree, model).log_likelihood(t) == pytest.approx(0.0, abs=1e-14)
    plain = HKY(2.0, PI)
    lik = TreeLikelihood(aln, tree, model)
    zero = np.exp(TreeLikelihood(aln, tree, plain).pattern_log_likelihoods(np.zeros_like(t)))
    assert np.allclose(lik._inv, zero, rtol=1e-12, atol=1e-15)  # P(0) = I up to round-off
