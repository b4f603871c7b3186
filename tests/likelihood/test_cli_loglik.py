"""The ``marglik loglik`` command."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.marglik import main
from phylo.likelihood import GTR, JC69, TreeLikelihood, random_tree, simulate_alignment
from phylo.tables import parse_table


def loglik_values(output: str) -> list[float]:
    """The log_likelihood column of the table `marglik loglik` prints (numbered from 1)."""
    comments, columns, rows = parse_table(output)
    assert columns == ["tree", "log_likelihood"]
    assert any(c.startswith("# phylo") for c in comments)  # provenance above the header
    assert [r["tree"] for r in rows] == [str(i + 1) for i in range(len(rows))]
    return [float(r["log_likelihood"]) for r in rows]


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
    values = loglik_values(res.output)
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
        (
            "((t0:0.1,t1:1e999):0.1,t2:0.1,(t3:0.1,(t4:0.1,(t5:0.1,(t6:0.1,t7:0.1):0.1):0.1):0.1):0.1);",
            "infinite branch length",
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
    (value,) = loglik_values(res.output)
    expect = TreeLikelihood(aln, tree, JC69()).log_likelihood(tree.branch_lengths[:-1])
    assert abs(value - expect) < 1e-9
    res = CliRunner().invoke(
        main,
        [
            "loglik",
            str(path / "a.fasta"),
            str(path / "t.nwk"),
            "--model",
            "GTR+G4",
            "--gamma-shape",
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
    assert abs(loglik_values(res.output)[0] - expect) < 1e-9


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "WAG"], "unknown model"),
        (["--rates", "1,2"], "6 comma-separated"),
        (["--alpha", "0.5"], "--alpha is now --gamma-shape"),
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
