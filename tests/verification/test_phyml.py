"""Log-likelihoods against PhyML (and IQ-TREE where PhyML cannot fix a parameter).

PhyML evaluates the user tree with fixed branch lengths and parameters (``-o n``); its
standard output reports the log-likelihood with all digits ("Log likelihood of the current
tree"), which must equal ours to 1e-6.  Models are set identically: ``-f`` gives the
frequencies, ``-t`` the transition/transversion rate ratio (PhyML's kappa), ``-a`` the
Gamma shape with mean categories (``--use_median`` for medians).  Branches are kept at
least 1e-5 long because PhyML clamps shorter ones.

The Debian build of PhyML (3.3.20220408) cannot fix GTR exchangeabilities from the command
line, so with PhyML GTR has all exchangeabilities 1 and unequal frequencies; GTR with
unequal exchangeabilities is checked against IQ-TREE, which prints 4 decimals.
"""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest

from phylo.likelihood import (
    GTR,
    HKY,
    JC69,
    TreeLikelihood,
    random_tree,
    read_alignment,
    simulate_alignment,
)
from tests.conftest import require_program, shared_path
from tests.likelihood._trees import read_first_tree

MIN_BRANCH = 1e-5


def newick(tree, lengths) -> str:
    """Newick text of a canonical tree with the given branch lengths (full precision)."""
    parent = np.asarray(tree.parent)
    n = len(tree.taxa)
    kids = [[] for _ in range(parent.shape[0])]
    for v, a in enumerate(parent):
        if a >= 0:
            kids[a].append(v)

    def rec(v):
        s = tree.taxa[v] if v < n else "(" + ",".join(rec(c) for c in kids[v]) + ")"
        if parent[v] >= 0:
            s += f":{float(lengths[v])!r}"
        return s

    return rec(parent.shape[0] - 1) + ";\n"


def phyml_loglik(tmp_path, alignment, tree, lengths, args) -> float:
    exe = require_program("phyml")
    aln = tmp_path / "aln.phy"
    aln.write_text(alignment.to_phylip())
    (tmp_path / "tree.nwk").write_text(newick(tree, lengths))
    cmd = [
        exe,
        "-i",
        "aln.phy",
        "-d",
        "nt",
        "-u",
        "tree.nwk",
        "-o",
        "n",
        "-b",
        "0",
        "--no_memory_check",
        "--r_seed",
        "1",
        "--leave_duplicates",
    ] + args
    env = dict(os.environ, PHYMLMPI="no")
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    m = re.search(
        r"Log likelihood of the current tree: (-?[0-9.eE+-]+?)\.?\s*$", out.stdout, re.MULTILINE
    )
    assert m, out.stdout[-2000:] + out.stderr[-2000:]
    # PhyML prints the model it used; make sure it is the one we asked for
    stats = (tmp_path / "aln.phy_phyml_stats.txt").read_text()
    return float(m.group(1)), stats


def _freq_arg(pi):
    return ",".join(repr(float(x)) for x in pi)


PI = np.array([0.1, 0.2, 0.3, 0.4])

CASES = {
    "JC69": (JC69(), ["-m", "JC69", "-c", "1"]),
    "HKY85": (HKY(2.5, PI), ["-m", "HKY85", "-t", "2.5", "-f", _freq_arg(PI), "-c", "1"]),
    "GTR+G4": (
        GTR([1, 1, 1, 1, 1, 1], PI, alpha=0.7, categories=4),
        ["-m", "GTR", "-f", _freq_arg(PI), "-c", "4", "-a", "0.7"],
    ),
    "HKY85+G4+I": (
        HKY(2.0, PI, alpha=0.6, categories=4, pinv=0.25),
        ["-m", "HKY85", "-t", "2.0", "-f", _freq_arg(PI), "-c", "4", "-a", "0.6", "-v", "0.25"],
    ),
    "GTR+G4median": (
        GTR([1, 1, 1, 1, 1, 1], PI, alpha=0.4, categories=4, median=True),
        ["-m", "GTR", "-f", _freq_arg(PI), "-c", "4", "-a", "0.4", "--use_median"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_simulated_matches_phyml(tmp_path, name):
    model, args = CASES[name]
    rng = np.random.default_rng(20240 + len(name))
    tree = random_tree(20, rng, mean_branch_length=0.08, min_branch_length=MIN_BRANCH)
    sim_model = GTR([1.2, 3.0, 0.8, 1.1, 3.5, 1.0], PI, alpha=0.5, categories=4)
    aln = simulate_alignment(tree, sim_model, 600, rng)
    t = tree.branch_lengths[:-1]
    ours = TreeLikelihood(aln, tree, model).log_likelihood(t)
    theirs, stats = phyml_loglik(tmp_path, aln, tree, tree.branch_lengths, args)
    assert abs(ours - theirs) < 1e-6, (ours, theirs)
    if "G4" in name:
        assert "Number of classes: \t\t\t4" in stats


@pytest.mark.parametrize("name", ["JC69", "HKY85", "GTR+G4"])
def test_ds1_matches_phyml(tmp_path, name):
    aln = read_alignment(str(shared_path("ds/zcrabbit-vbpi/data/hohna_datasets_fasta/DS1.fasta")))
    tree = read_first_tree(shared_path("ds/phylovi-bito/data/DS1.subsampled_10.t.nwk"), aln.taxa)
    lengths = np.maximum(np.asarray(tree.branch_lengths, dtype=float), MIN_BRANCH)
    lengths[-1] = 0.0
    model, args = CASES[name]
    ours = TreeLikelihood(aln, tree, model).log_likelihood(lengths[:-1])
    theirs, _ = phyml_loglik(tmp_path, aln, tree, lengths, args)
    assert abs(ours - theirs) < 1e-6, (ours, theirs)


def test_ds1_nexus_matches_phyml(tmp_path):
    """The TreeBASE NEXUS file (MISSING=- GAP=?) gives PhyML's value on its own data."""
    aln = read_alignment(str(shared_path("marglik/alignments/DS1.nex")))
    tree = read_first_tree(shared_path("ds/phylovi-bito/data/DS1.subsampled_10.t.nwk"), aln.taxa)
    lengths = np.maximum(np.asarray(tree.branch_lengths, dtype=float), MIN_BRANCH)
    ours = TreeLikelihood(aln, tree, JC69()).log_likelihood(lengths[:-1])
    theirs, _ = phyml_loglik(tmp_path, aln, tree, lengths, ["-m", "JC69", "-c", "1"])
    assert abs(ours - theirs) < 1e-6


def test_128_taxa_no_underflow_matches_phyml(tmp_path):
    """128 taxa: per-pattern rescaling keeps every site finite and equal to PhyML's."""
    rng = np.random.default_rng(128)
    tree = random_tree(128, rng, mean_branch_length=0.15, min_branch_length=MIN_BRANCH)
    model = JC69(alpha=0.5, categories=4)
    aln = simulate_alignment(tree, model, 400, rng)
    lik = TreeLikelihood(aln, tree, model)
    sites = lik.pattern_log_likelihoods(tree.branch_lengths[:-1])
    assert np.all(np.isfinite(sites))
    # a naive product of 128 tips' worth of probabilities underflows double precision
    assert sites.min() < -745.0 or lik.log_likelihood(tree.branch_lengths[:-1]) < -745.0
    theirs, _ = phyml_loglik(
        tmp_path, aln, tree, tree.branch_lengths, ["-m", "JC69", "-c", "4", "-a", "0.5"]
    )
    assert abs(lik.log_likelihood(tree.branch_lengths[:-1]) - theirs) < 1e-6


def test_gtr_unequal_rates_matches_iqtree(tmp_path):
    """GTR with unequal exchangeabilities, +G4: IQ-TREE prints 4 decimals."""
    exe = require_program("iqtree2")
    rng = np.random.default_rng(77)
    tree = random_tree(12, rng, mean_branch_length=0.1, min_branch_length=MIN_BRANCH)
    rates = [1.5, 4.0, 0.7, 1.2, 5.0, 1.0]
    model = GTR(rates, PI, alpha=0.5, categories=4)
    aln = simulate_alignment(tree, model, 400, rng)
    (tmp_path / "a.phy").write_text(aln.to_phylip())
    (tmp_path / "t.nwk").write_text(newick(tree, tree.branch_lengths))
    spec = "GTR{" + ",".join(map(str, rates)) + "}+F{" + _freq_arg(PI) + "}+G4{0.5}"
    subprocess.run(
        [
            exe,
            "-s",
            "a.phy",
            "-te",
            "t.nwk",
            "-m",
            spec,
            "-blfix",
            "-redo",
            "-pre",
            "g",
            "-nt",
            "1",
            "-seed",
            "1",
            "-quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    txt = (tmp_path / "g.iqtree").read_text()
    theirs = float(re.search(r"Log-likelihood of the tree: (-?[0-9.]+)", txt).group(1))
    ours = TreeLikelihood(aln, tree, model).log_likelihood(tree.branch_lengths[:-1])
    assert abs(ours - theirs) < 1.5e-4


def test_ds1_invariant_sites_matches_phyml(tmp_path):
    """+G4+I on DS1.  PhyML's invariant-site test "does not handle ambiguities" and gives a
    column in which every taxon is missing a likelihood below 1; the exact value is 1
    (see ``test_missing_column_has_likelihood_one``).  Without DS1's 9 such columns the two
    programs agree, and dropping them leaves our value unchanged."""
    from phylo.likelihood import Alignment

    aln = read_alignment(str(shared_path("ds/zcrabbit-vbpi/data/hohna_datasets_fasta/DS1.fasta")))
    tree = read_first_tree(shared_path("ds/phylovi-bito/data/DS1.subsampled_10.t.nwk"), aln.taxa)
    lengths = np.maximum(np.asarray(tree.branch_lengths, dtype=float), MIN_BRANCH)
    lengths[-1] = 0.0
    keep = np.bitwise_and.reduce(aln.codes, axis=0) != 15
    assert (~keep).sum() == 9
    seqs = ["".join(c for c, k in zip(s, keep) if k) for s in aln.sequences()]
    reduced = Alignment.from_sequences(aln.taxa, seqs)
    model, args = CASES["HKY85+G4+I"]
    full = TreeLikelihood(aln, tree, model).log_likelihood(lengths[:-1])
    ours = TreeLikelihood(reduced, tree, model).log_likelihood(lengths[:-1])
    assert abs(full - ours) < 1e-9
    theirs, _ = phyml_loglik(tmp_path, reduced, tree, lengths, args)
    assert abs(ours - theirs) < 1e-6
