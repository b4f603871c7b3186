"""The branch-length family: which split and primary subsplit pairs each edge uses (checked
against the trees' clades, independently of the SBN tables), the sums and their adjoint,
the lognormal densities, and the file fields."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from phylo.trees import bitsets
from phylo.vi import BranchLengthModel, LognormalBranches, VariationalFamily
from phylo.vi.branches import INITIAL_MEAN, psp_parameters
from tests.sbn.samples import random_training


def _set(bits):
    return frozenset(bitsets.to_indices(bits))


def _describe(support, m):
    """(parent key as (sibling, clade) taxon sets, child subsplit as a set of two sets)."""
    sib, clade = support.keys[support.param_key[m]]
    a, b = support.subsplits[support.param_sub[m]]
    key = (None if sib < 0 else _set(support.clades[sib]), _set(support.clades[clade]))
    return key, frozenset({_set(support.clades[a]), _set(support.clades[b])})


def _expected_edges(parent, n):
    """For the edge above each node v: its split, and the PSPs of the side below v (None
    for a leaf) and of the side above, as (parent key, subsplit) in taxon sets."""
    N = len(parent)
    below = [set() for _ in range(N)]
    for v in range(n):
        u = v
        while u >= 0:
            below[u].add(v)
            u = parent[u]
    every = frozenset(range(n))
    children = [[c for c in range(N) if parent[c] == v] for v in range(N)]
    out = []
    for v in range(N - 1):
        cv = frozenset(below[v])
        rest = every - cv
        split = frozenset({cv, rest})
        down = None
        if v >= n:
            c1, c2 = children[v]
            down = ((rest, cv), frozenset({frozenset(below[c1]), frozenset(below[c2])}))
        p = parent[v]
        if p == N - 1:
            o1, o2 = [c for c in children[p] if c != v]
            sides = frozenset({frozenset(below[o1]), frozenset(below[o2])})
        else:
            s = [c for c in children[p] if c != v][0]
            sides = frozenset({frozenset(below[s]), every - frozenset(below[p])})
        out.append((split, down, ((cv, rest), sides)))
    return out


@pytest.mark.parametrize("n", [5, 8])
def test_each_edge_uses_its_split_and_primary_subsplit_pairs(n):
    _, _, sample = random_training(n, 12, np.random.default_rng(n))
    family = VariationalFamily.from_sample(sample, init="uniform")
    bl = family.branches
    s = family.sbn.support
    draws = family.topologies(sample.parents)
    idx = draws.index
    zero = bl.n
    for t, parent in enumerate(draws.parents):
        for v, (split, down, up) in enumerate(_expected_edges(parent, n)):
            m_split = bl.param_ids[idx[t, v, 0]]
            assert s.param_key[m_split] == 0
            assert _describe(s, m_split)[1] == split
            if down is None:
                assert idx[t, v, 1] == zero
            else:
                assert _describe(s, bl.param_ids[idx[t, v, 1]]) == down
            assert _describe(s, bl.param_ids[idx[t, v, 2]]) == up


def test_psp_parameters_are_the_pcsps_under_a_full_split():
    _, _, sample = random_training(7, 10, np.random.default_rng(3))
    s = VariationalFamily.from_sample(sample).sbn.support
    ids = set(psp_parameters(s).tolist())
    everyone = frozenset(range(7))
    for m in range(s.n_params):
        (sib, clade), _ = _describe(s, m)
        assert (m in ids) == (sib is not None and sib | clade == everyone)


def test_without_psp_only_splits_enter():
    _, _, sample = random_training(6, 8, np.random.default_rng(4))
    family = VariationalFamily.from_sample(sample, psp=False)
    assert family.branches.n == family.sbn.support.n_rootsplits
    idx = family.topologies(sample.parents).index
    assert np.all(idx[..., 1:] == family.branches.n)


def test_moments_are_sums_and_accumulate_is_their_adjoint():
    _, _, sample = random_training(7, 10, np.random.default_rng(5))
    family = VariationalFamily.from_sample(sample)
    bl = family.branches
    rng = np.random.default_rng(6)
    v = rng.normal(size=2 * bl.n)
    bl.set_vector(v)
    idx = family.topologies(sample.parents).index
    mu, ls = bl.moments(idx)
    full_mu = np.append(v[: bl.n], [0.0, INITIAL_MEAN])
    full_ls = np.append(v[bl.n :], [0.0, 0.0])
    assert np.allclose(mu, full_mu[idx].sum(-1)) and np.allclose(ls, full_ls[idx].sum(-1))
    # <A^T d, v> = <d, A v> for the linear map A: parameters -> per-branch moments
    d_mu, d_ls = rng.normal(size=mu.shape), rng.normal(size=ls.shape)
    g = bl.accumulate(idx, d_mu, d_ls)
    bl.set_vector(np.zeros(2 * bl.n))
    mu0, ls0 = bl.moments(idx)  # the constant part (missing-split slots)
    assert np.isclose(g @ v, np.sum(d_mu * (mu - mu0)) + np.sum(d_ls * (ls - ls0)))


def test_lognormal_densities():
    rng = np.random.default_rng(7)
    mean, sd = rng.normal(-2.5, 0.5, 5), np.exp(rng.normal(-1, 0.3, 5))
    q = LognormalBranches(mean, sd)
    T = q.sample(4, rng)
    ref = stats.lognorm.logpdf(T, s=sd, scale=np.exp(mean)).sum(axis=1)
    assert np.allclose(q.log_pdf(T), ref)
    ref_log = stats.norm.logpdf(np.log(T), mean, sd).sum(axis=1)
    assert np.allclose(q.log_pdf_log(np.log(T)), ref_log)
    big = q.sample(200_000, rng)
    se = big.std(axis=0) / np.sqrt(big.shape[0])
    assert np.all(np.abs(big.mean(axis=0) - q.mean()) < 5 * se)


def test_file_fields_round_trip_and_are_checked():
    _, _, sample = random_training(6, 8, np.random.default_rng(8))
    family = VariationalFamily.from_sample(sample)
    bl = family.branches
    bl.set_vector(np.random.default_rng(9).normal(size=2 * bl.n))
    data = bl.to_dict()
    back = BranchLengthModel.from_dict(data, family.sbn.support)
    assert np.array_equal(back.vector(), bl.vector()) and back.psp
    bad = dict(data, parameters=data["parameters"][::-1])
    with pytest.raises(ValueError, match="do not match"):
        BranchLengthModel.from_dict(bad, family.sbn.support)
    with pytest.raises(ValueError, match="one mean"):
        BranchLengthModel.from_dict(dict(data, mean=data["mean"][:-1]), family.sbn.support)
