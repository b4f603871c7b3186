"""The variational family: topology probabilities and scores against the SBN's own (and
finite differences), the starting points, and the model file read by the sbn commands."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.sbn import fit, load_model
from phylo.sbn.model import group_log_softmax as sbn_group_log_softmax
from phylo.vi import SupportWarning, VariationalFamily, load_family
from phylo.vi.family import group_log_softmax
from tests.sbn.samples import random_training


@pytest.fixture
def family():
    _, _, sample = random_training(7, 15, np.random.default_rng(1))
    fam = VariationalFamily.from_sample(sample)
    fam.set_logits(fam.phi + np.random.default_rng(2).normal(size=fam.n_topology_params))
    return fam, sample


def test_group_softmax_is_the_sbn_one():
    rng = np.random.default_rng(3)
    _, _, sample = random_training(6, 10, rng)
    offsets = fit(sample, "sa").offsets
    phi = rng.normal(size=offsets[-1]) * 3
    assert np.allclose(group_log_softmax(phi, offsets), sbn_group_log_softmax(phi, offsets))


def test_draws_have_the_sbn_probabilities(family):
    fam, _ = family
    draws = fam.draw_topologies(50, np.random.default_rng(4))
    assert np.allclose(draws.log_q, fam.sbn.log_prob(draws.parents))
    assert np.allclose(draws.rooting.sum(axis=1), 1.0)


def test_score_sum_is_the_weighted_sum_of_sbn_scores(family):
    fam, sample = family
    draws = fam.topologies(sample.parents)
    w = np.random.default_rng(5).normal(size=len(draws))
    ref = w @ fam.sbn.grad_log_prob(sample.parents, wrt="logits")
    assert np.allclose(fam.score_sum(draws, w), ref)


def test_score_sum_is_the_derivative_of_the_logits(family):
    fam, sample = family
    parents = sample.parents[:4]
    w = np.array([0.5, -1.0, 2.0, 0.3])
    g = fam.score_sum(fam.topologies(parents), w)
    phi = fam.phi
    rng = np.random.default_rng(6)
    for _ in range(5):
        d = rng.normal(size=phi.size)
        h = 1e-6
        fam.set_logits(phi + h * d)
        up = w @ fam.sbn.log_prob(parents)
        fam.set_logits(phi - h * d)
        down = w @ fam.sbn.log_prob(parents)
        fam.set_logits(phi)
        assert np.isclose((up - down) / (2 * h), g @ d, rtol=1e-5, atol=1e-7)


def test_derivation_scores_are_derivatives_of_rooted_probabilities(family):
    fam, sample = family
    ids = fam.sbn.rooting_param_ids(sample.parents[:3])[:, 0, :]  # one rooting each
    w = np.array([1.0, -0.5, 0.25])
    g = fam.derivation_score_sum(list(ids), w)
    phi = fam.phi
    d = np.random.default_rng(7).normal(size=phi.size)
    h = 1e-6
    vals = []
    for sign in (1, -1):
        fam.set_logits(phi + sign * h * d)
        vals.append(sum(wi * fam.sbn.log_theta[row].sum() for wi, row in zip(w, ids)))
    fam.set_logits(phi)
    assert np.isclose((vals[0] - vals[1]) / (2 * h), g @ d, rtol=1e-5)


def test_starting_points():
    _, _, sample = random_training(6, 12, np.random.default_rng(8))
    em = fit(sample, "em-alpha")
    warm = VariationalFamily.from_sample(sample, init="em-alpha")
    assert np.allclose(warm.sbn.log_prob(sample), em.log_prob(sample), atol=1e-9)
    flat = VariationalFamily.from_sample(sample, init="uniform")
    sizes = np.diff(flat.sbn.offsets)
    assert np.allclose(np.exp(flat.sbn.log_theta), np.repeat(1.0 / sizes, sizes))
    with pytest.raises(InputError, match="initialisation"):
        VariationalFamily.from_sample(sample, init="random")


def test_single_topology_warns_and_rooted_samples_are_refused():
    _, _, sample = random_training(5, 1, np.random.default_rng(9))
    with pytest.warns(SupportWarning, match="single topology"):
        fam = VariationalFamily.from_sample(sample)
    assert np.isclose(fam.sbn.log_prob(sample)[0], 0.0)
    _, _, rooted = random_training(5, 4, np.random.default_rng(9), rooted=True)
    with pytest.raises(InputError, match="unrooted"):
        VariationalFamily.from_sample(rooted)


def test_model_file_is_an_sbn_file_with_branch_lengths(family, tmp_path):
    fam, sample = family
    fam.branches.set_vector(np.random.default_rng(10).normal(size=fam.n_branch_params))
    path = str(tmp_path / "vi.json")
    fam.save(path)
    sbn = load_model(path)
    assert sbn.method == "vi"
    assert np.allclose(sbn.log_prob(sample), fam.sbn.log_prob(sample))
    back = load_family(path)
    assert np.array_equal(back.branches.vector(), fam.branches.vector())
    assert np.allclose(back.sbn.log_theta, fam.sbn.log_theta)
    data = json.loads(open(path).read())
    del data["branch_lengths"]
    with open(path, "w") as fh:
        json.dump(data, fh)
    with pytest.raises(InputError, match="branch_lengths"):
        load_family(path)


def test_branch_distribution_of_a_newick_tree(family):
    fam, sample = family
    fam.branches.set_vector(np.random.default_rng(11).normal(size=fam.n_branch_params))
    draws = fam.topologies(sample.parents[:1])
    mu, ls = fam.branches.moments(draws.index)
    nwk = sample.newick(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q = fam.branch_distribution(nwk)
    assert np.allclose(q.mean_log, mu[0]) and np.allclose(q.sd_log, np.exp(ls[0]))
