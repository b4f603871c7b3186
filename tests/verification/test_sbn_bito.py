"""SBN estimates against the oracles of the bito library (phylovi/bito, GPL-3.0).

bito's doctests hard-code the SBN probability of each of the 100 trees of
``DS1.100_topologies.nwk`` after SBN-SA, after 1 and 23 EM iterations (values from
Zhang & Matsen's code) and after 100 EM iterations with alpha = 0.5 in bito's own prior
form (values from an independent Rev implementation, 6-7 significant digits); and the
rooted SBN-SA parameters of ``rooted_simple_average.nwk``.
"""

from __future__ import annotations

import numpy as np
import pytest

from phylo.sbn import fit
from phylo.trees import read_trees

BITO = "ds/phylovi-bito/"


@pytest.fixture(scope="module")
def ds1_100(request):
    from ..conftest import shared_path

    trees = shared_path(BITO + "data/DS1.100_topologies.nwk")
    expected = shared_path(BITO + "derived/DS1.100_topologies.expected_sbn_probabilities.csv")
    sample = read_trees([str(trees)], burnin=0)
    table = np.loadtxt(expected, delimiter=",", skiprows=1)
    return sample, table


def _probs_of_lines(model, sample):
    """Probability of every tree of the file, in file order."""
    return model.prob(sample)[sample.traces[0]]


def test_file_has_44_unique_topologies(ds1_100):
    sample, table = ds1_100
    assert sample.n_trees == 100 and table.shape == (100, 5)
    assert sample.n_topologies == 44


def test_simple_average(ds1_100):
    sample, table = ds1_100
    got = _probs_of_lines(fit(sample, "sa"), sample)
    assert np.max(np.abs(got - table[:, 1])) < 1e-10


@pytest.mark.parametrize("iterations,column", [(1, 2), (23, 3)])
def test_em_iterations(ds1_100, iterations, column):
    sample, table = ds1_100
    model = fit(sample, "em", max_iter=iterations, min_iter=0, tol=0.0)
    assert model.fit_info["iterations"] == iterations
    got = _probs_of_lines(model, sample)
    assert np.max(np.abs(got - table[:, column])) < 1e-10


def test_em_alpha_in_bito_form(ds1_100):
    sample, table = ds1_100
    model = fit(sample, "em-alpha", alpha=0.5, alpha_form="bito", max_iter=100, min_iter=0, tol=0.0)
    got = _probs_of_lines(model, sample)
    assert np.max(np.abs(got - table[:, 4])) < 1e-5
    # the paper's form of the prior is a different estimator
    paper = fit(
        sample, "em-alpha", alpha=0.5, alpha_form="paper", max_iter=100, min_iter=0, tol=0.0
    )
    assert np.max(np.abs(_probs_of_lines(paper, sample) - table[:, 4])) > 1e-3


def test_rooted_simple_average(shared):
    trees = shared(BITO + "data/rooted_simple_average.nwk")
    expected = shared(BITO + "data/rooted_simple_average_results.csv")
    sample = read_trees([str(trees)], rooted=True, burnin=0)
    model = fit(sample, "sa")
    s = model.support
    names = sample.taxa.names  # bito numbers taxa in order of first appearance
    clades = {
        tuple(int(c) for c in model_clade): k
        for k, model_clade in enumerate(
            s.clade_string(c).replace("*", "1").replace(".", "0") for c in range(s.n_clades)
        )
    }
    assert names[0] == "outgroup"
    seen = 0
    for line in open(expected):
        key, value = line.strip().split(",")
        sister, focal, child = (tuple(int(c) for c in part) for part in key.split("|"))
        other = tuple(f - c for f, c in zip(focal, child))
        a, b = clades[child], clades[other]
        sib = -1 if not any(sister) else clades[sister]
        k = next(i for i, (ks, kc) in enumerate(s.keys) if ks == sib and kc == clades[focal])
        ms = [
            m
            for m in range(s.offsets[k], s.offsets[k + 1])
            if set(s.subsplits[s.param_sub[m]]) == {a, b}
        ]
        assert len(ms) == 1
        assert np.exp(model.log_theta[ms[0]]) == pytest.approx(float(value), abs=1e-6)
        seen += 1
    assert seen == s.n_params == 145
