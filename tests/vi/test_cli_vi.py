"""``sbn vi``: the model it writes works in sbn top/prob/sample/kl as they are, the trace is a
table, the same command resumes, and bad input gives one line and status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.sbn import load_model
from phylo.tables import read_table
from phylo.vi import load_family
from phylo.vi.training import TRACE_COLUMNS

from .exact import DATA, all_topologies

FASTA = str(DATA / "five_taxa.fasta")
FAST = ["--lr", "0.01", "--anneal-iterations", "20", "--lr-decay-every", "30", "-j", "1"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    path = tmp_path_factory.mktemp("vi") / "support.nwk"
    path.write_text("\n".join(all_topologies()) + "\n")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory, trees):
    out = tmp_path_factory.mktemp("vi") / "vi_model.json"
    r = run("vi", FASTA, "--trees", trees, "-b", "0", "-n", "60", *FAST, "--seed", "3",
            "--evaluate-particles", "100", "--evaluate-repeats", "3", "-o", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    return out, r.output


def test_summary_reports_the_bounds(model):
    _, output = model
    assert "60 iterations" in output and "ELBO" in output and "log marginal likelihood" in output


def test_model_works_in_the_sbn_commands(model, trees, tmp_path):
    out, _ = model
    sbn = load_model(str(out))
    assert sbn.method == "vi"
    family = load_family(str(out))
    assert family.branches.n > 0
    data = json.loads(out.read_text())
    assert data["fit"]["iterations"] == 60 and data["provenance"]["seed"] == 3
    top = run("top", out, "-k", "3")
    assert top.exit_code == 0 and len([x for x in top.output.splitlines() if x.endswith(";")]) == 3
    prob = run("prob", out, trees, "-b", "0", "--unique")
    assert prob.exit_code == 0
    rows = [x.split("\t") for x in prob.output.splitlines() if x and not x.startswith("#")][1:]
    logp = np.array([float(r[2]) for r in rows])
    assert np.isclose(np.exp(logp).sum(), 1.0)  # all 15 topologies
    sample = run("sample", out, "-n", "5", "--seed", "1")
    assert sample.exit_code == 0 and len(sample.output.strip().splitlines()) == 5
    kl = run("kl", out, "-r", trees, "-b", "0")
    assert kl.exit_code == 0


def test_trace_is_a_table(model):
    out, _ = model
    comments, columns, rows = read_table(str(out).replace(".json", ".trace.tsv"))
    assert tuple(columns) == TRACE_COLUMNS
    assert [int(r["iteration"]) for r in rows] == [60]  # every 1000 iterations, and the last
    assert any(c.startswith("# seed: 3") for c in comments)


def test_same_command_resumes(trees, tmp_path):
    out = tmp_path / "m.json"
    args = ["vi", FASTA, "--trees", trees, "-b", "0", *FAST, "--seed", "4", "-o", out,
            "--evaluate-repeats", "0"]  # fmt: skip
    first = run(*args, "-n", "30")
    assert first.exit_code == 0, first.output
    second = run(*args, "-n", "50")
    assert second.exit_code == 0 and "resumed at iteration 30" in second.output
    straight = tmp_path / "s.json"
    args[args.index("-o") + 1] = straight
    assert run(*args, "-n", "50").exit_code == 0
    a, b = load_family(str(out)), load_family(str(straight))
    assert np.array_equal(a.sbn.log_theta, b.sbn.log_theta)
    assert np.array_equal(a.branches.vector(), b.branches.vector())
    other = run(*[x if x != "4" else "5" for x in args[:-2]], "-o", out, "-n", "60")
    assert other.exit_code == 2 and "another run" in other.output


def test_taxa_that_differ_are_one_line_and_status_2(trees, tmp_path):
    fasta = tmp_path / "renamed.fasta"
    fasta.write_text(open(FASTA).read().replace(">E", ">Z"))
    r = run("vi", fasta, "--trees", trees, "-n", "5", "--seed", "1", "-o", tmp_path / "m.json")
    assert r.exit_code == 2
    # notes on how the trees were read (plain Newick: no burn-in) may come first
    lines = [x for x in r.output.strip().splitlines() if not x.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("error:") and "taxa differ between" in lines[0]
    assert "Z" in lines[0] and "E" in lines[0]


def test_single_topology_support_warns(tmp_path):
    one = tmp_path / "one.nwk"
    one.write_text(all_topologies()[14] + "\n")
    r = run("vi", FASTA, "--trees", one, "-b", "0", "-n", "10", *FAST, "--seed", "1",
            "--evaluate-repeats", "0", "-o", tmp_path / "m.json")  # fmt: skip
    assert r.exit_code == 0
    assert "warning: the tree sample holds a single topology" in r.output


def test_diverging_run_stops_with_the_iteration(trees, tmp_path):
    out = tmp_path / "m.json"
    r = run("vi", FASTA, "--trees", trees, "-b", "0", "-n", "40", "--lr-branch", "1000",
            "--anneal-iterations", "0", "--checkpoint-every", "1", "--seed", "1",
            "-o", out)  # fmt: skip
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("error: the lower bound diverged at iteration")
    assert "is kept in" in lines[-1] or "no checkpoint" in lines[-1]
    assert not out.exists()


def test_support_from_iqtree_ufboot_trees(tmp_path):
    """UFBoot trees as IQ-TREE writes them (-B 1000 --wbt) give the support."""
    import shutil
    import subprocess

    from tests.conftest import require_program

    exe = require_program("iqtree2")
    shutil.copy(FASTA, tmp_path / "aln.fasta")
    subprocess.run(
        [exe, "-s", "aln.fasta", "-m", "JC", "-B", "1000", "--wbt", "-seed", "1", "-nt", "1",
         "-quiet"],
        cwd=tmp_path, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    boot = tmp_path / "aln.fasta.ufboot"
    n_trees = len(boot.read_text().split(";")) - 1
    assert n_trees == 1000
    out = tmp_path / "m.json"
    r = run("vi", FASTA, "--trees", boot, "-b", "0", "-n", "30", *FAST, "--seed", "2",
            "--evaluate-repeats", "0", "-o", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    distinct = {line for line in boot.read_text().split()}
    family = load_family(str(out))
    assert np.all(np.isfinite(family.sbn.log_prob(sorted(distinct))))


def test_top_and_sample_carry_the_learnt_branch_lengths(model, tmp_path):
    """``sbn top`` writes each topology with the medians of its learnt lognormals: the
    likelihood of the written tree is that of the topology at exp(mu) in the order
    branch_distribution gives (lengths on the wrong branches would change it).  ``sbn
    sample`` draws the same topologies as the SBN alone with that seed, each with lengths
    drawn from its lognormals: sum_i log t_i has mean sum_i mu_i and variance
    sum_i sigma_i^2 (medians would give variance 0)."""
    import math

    from phylo.likelihood import JC69, TreeLikelihood, read_alignment
    from phylo.trees import Tree, parse_newick

    out, _ = model
    family = load_family(str(out))
    aln = read_alignment(FASTA)
    top = run("top", out, "-k", "3")
    assert top.exit_code == 0, top.output
    newicks = [x.split("\t")[-1] for x in top.output.splitlines() if x.endswith(";")]
    assert len(newicks) == 3
    for newick in newicks:
        written = TreeLikelihood(aln, parse_newick(newick, taxa=family.taxa), JC69())
        q = family.branch_distribution(newick)
        parents, _ = family.sbn.param_table(newick)
        canonical = Tree(family.taxa, parents[0], None, False)
        at_median = TreeLikelihood(aln, canonical, JC69()).log_likelihood(np.exp(q.mean_log))
        assert math.isclose(written.log_likelihood(), at_median, rel_tol=0, abs_tol=1e-6)
    drawn = run("sample", out, "-n", 3000, "--seed", 5)
    assert drawn.exit_code == 0
    trees = drawn.output.strip().splitlines()
    expected, _ = family.sbn.sample(3000, np.random.default_rng(5))
    keys = [Tree(family.taxa, p, None, False).topology_key() for p in expected]
    parsed = [parse_newick(t, taxa=family.taxa) for t in trees]
    assert [t.unrooted().topology_key() for t in parsed] == keys
    first = keys[0]
    sums = np.array(
        [np.log(t.branch_lengths[t.branch_lengths > 0]).sum()
         for t, k in zip(parsed, keys) if k == first]
    )  # fmt: skip
    q = family.branch_distribution(trees[0])
    assert len(sums) > 100
    se = math.sqrt((q.sd_log**2).sum() / len(sums))
    assert abs(sums.mean() - q.mean_log.sum()) < 4 * se
    assert abs(sums.std(ddof=1) / math.sqrt((q.sd_log**2).sum()) - 1) < 0.15
