"""Log-likelihoods against BEAGLE's CPU implementation (Ayres et al. 2019), through the
ctypes wrapper of the benchmarks; skipped when ``libhmsbeagle.so.1`` is not installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from phylo.likelihood import GTR, JC69, TreeLikelihood, random_tree, simulate_alignment
from tests.conftest import ROOT


def _beagle():
    spec = importlib.util.spec_from_file_location("_beagle", ROOT / "benchmarks" / "_beagle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lib = mod.load()
    if lib is None:
        pytest.skip("libhmsbeagle.so.1 is not installed")
    return mod, lib


@pytest.mark.parametrize(
    "model",
    [JC69(), GTR([1.2, 3.0, 0.8, 1.1, 3.5, 1.0], [0.3, 0.2, 0.2, 0.3], alpha=0.5, categories=4)],
)
@pytest.mark.parametrize("n, scaling", [(30, False), (150, True)])
def test_matches_beagle(model, n, scaling):
    mod, lib = _beagle()
    rng = np.random.default_rng(n)
    tree = random_tree(n, rng, 0.1, 1e-5)
    aln = simulate_alignment(tree, model, 300, rng)
    seqs = aln.sequences()
    seqs[0] = "R" + seqs[0][1:]  # an ambiguous tip goes in as partials
    aln = type(aln).from_sequences(aln.taxa, seqs)
    lik = TreeLikelihood(aln, tree, model)
    t = tree.branch_lengths[:-1]
    bg = mod.BeagleLikelihood(lib, lik, threads=1, scaling=scaling)
    try:
        theirs = bg.log_likelihood(t)
    finally:
        bg.close()
    ours = lik.log_likelihood(t)
    assert abs(ours - theirs) < 1e-9 * abs(ours)
