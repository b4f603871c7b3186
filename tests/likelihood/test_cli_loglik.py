"""The ``marglik loglik`` command."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from phylo.cli.marglik import main

from phylo.likelihood import GTR, JC69, TreeLikelihood, random_tree, simulate_alignment


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(4)
    tree = random_tree(8, rng, 0.1, 1e-4)
    aln = simulate_alignment(tree, JC69(), 120, rng)
    (tmp_path / "a.fasta").write_text(
        "".join(f">{n}\n{s}\n" for n, s in zip(aln.taxa, aln.sequences()))
    )
    (tmp_path / "t.nwk").write_text(tree.to_newick() + "\n")
    return tmp_path, aln, tree


def test_loglik_several_trees(files):
    path, aln, tree = files
    t2 = tree.branch_lengths * 2
    from phylo.trees import Tree

    other = Tree(tree.taxa, tree.parent, t2)
    (path / "two.nwk").write_text(tree.to_newick() + "\n" + other.to_newick() + "\n")
    res = CliRunner().invoke(main, ["loglik", str(path / "a.fasta"), str(path / "two.nwk")])
    assert res.exit_code == 0, res.output
    values = [float(line.split()[1]) for line in res.output.strip().splitlines()]
    lik = TreeLikelihood(aln, tree, JC69())
    assert values == pytest.approx(
        [lik.log_likelihood(tree.branch_lengths[:-1]), lik.log_likelihood(t2[:-1])], abs=1e-9
    )


@pytest.mark.parametrize(
    "newick, message",
    [
        ("((t0,t1),t2,(t3,(t4,(t5,(t6,t7)))));", "no branch lengths"),
        (
            "((t0:0.1,t1:-0.1):0.1,t2:0.1,(t3:0.1,(t4:0.1,(t5:0.1,(t6:0.1,t7:0.1):0.1):0.1):0.1):0.1);",
            "negative branch length",
        ),
    ],
)
def test_loglik_bad_trees(files, newick, message):
    path, _, _ = files
    (path / "bad.nwk").write_text(newick + "\n")
    res = CliRunner().invoke(main, ["loglik", str(path / "a.fasta"), str(path / "bad.nwk")])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_loglik_prints_value(files):
    path, aln, tree = files
    res = CliRunner().invoke(main, ["loglik", str(path / "a.fasta"), str(path / "t.nwk")])
    assert res.exit_code == 0, res.output
    idx, value = res.output.split()
    expect = TreeLikelihood(aln, tree, JC69()).log_likelihood(tree.branch_lengths[:-1])
    assert idx == "1" and abs(float(value) - expect) < 1e-9
    res = CliRunner().invoke(
        main,
        [
            "loglik",
            str(path / "a.fasta"),
            str(path / "t.nwk"),
            "-m",
            "GTR+G4",
            "--alpha",
            "0.5",
            "--rates",
            "1,2,1,1,2,1",
            "-f",
            "0.1,0.2,0.3,0.4",
        ],
    )
    assert res.exit_code == 0, res.output
    model = GTR([1, 2, 1, 1, 2, 1], [0.1, 0.2, 0.3, 0.4], alpha=0.5, categories=4)
    expect = TreeLikelihood(aln, tree, model).log_likelihood(tree.branch_lengths[:-1])
    assert abs(float(res.output.split()[1]) - expect) < 1e-9


@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "WAG"], "unknown model"),
        (["--rates", "1,2"], "6 comma-separated"),
    ],
)
def test_loglik_bad_options(files, args, message):
    path, _, _ = files
    res = CliRunner().invoke(main, ["loglik", str(path / "a.fasta"), str(path / "t.nwk")] + args)
    assert res.exit_code == 2 and message in res.output
    assert "Traceback" not in res.output


def test_loglik_taxa_mismatch(files):
    path, aln, tree = files
    (path / "b.fasta").write_text(
        "".join(f">{n}x\n{s}\n" for n, s in zip(aln.taxa, aln.sequences()))
    )
    res = CliRunner().invoke(main, ["loglik", str(path / "b.fasta"), str(path / "t.nwk")])
    assert res.exit_code == 2 and "taxa differ" in res.output
    # the message names the tree file and the alignment, and the taxa of each side
    assert f"only in {path / 't.nwk'}: 't0', 't1'" in res.output
    assert f"only in {path / 'b.fasta'}: 't0x', 't1x'" in res.output
