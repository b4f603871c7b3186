"""`sbn diagnose`, and the warning `sbn fit` and `sbn summary` print before pooling runs that
disagree: on standard error, also with --quiet, never changing the exit status."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.tables import read_table
from phylo.trees import read_trees
from phylo.trees.diagnostics import pooling_check

from .conftest import DATA

RUN1 = str(DATA / "example.run1.t")
RUN2 = str(DATA / "example.run2.t")
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_text_report_on_the_example_runs():
    r = run("diagnose", RUN1, RUN2)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "approximate topological ESS (path distance)" in out
    assert "SBN log probability" in out and "split indicators (median of" in out
    # the ASDSF after the default 25% burn-in is sbn summary's (and MrBayes sumt's)
    assert "ASDSF after burn-in: 0.00612418 over 31 splits" in out
    assert "(generation " in out  # MrBayes names trees by generation: gen.0, gen.200, ...
    assert "tree length" in out and "Suggested burn-in:" in out and "rule: MSER-5" in out
    assert "warning: the runs disagree" not in r.stderr + out


def test_json_tables_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    prefix = tmp_path / "d"
    r = run("diagnose", RUN1, RUN2, "--format", "json", "--tables", prefix, "--plot", prefix,
            "--every", 50, "--window", 200, "--distance", "rf")  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["approximate_ess"]["distance"] == "rf"
    assert doc["asdsf"] == pytest.approx(0.006124175986, rel=1e-9)
    assert doc["asdsf_trace"]["samples"][:3] == [51, 101, 151]
    assert doc["asdsf_trace"]["generation"][:2] == [10000, 20000]  # sample 50 is gen.10000
    assert doc["provenance"]["inputs"][0]["sha256"]
    for name in ("splits", "asdsf", "ess"):
        assert (tmp_path / f"d.{name}.png").read_bytes()[:8] == PNG
    comments, cols, rows = read_table(str(prefix) + ".ess.tsv")
    assert cols == ["method", "run", "file", "ess", "upper_bound"]
    assert comments[0].startswith("# phylo ")  # the provenance, whatever the command line
    _, cols, rows = read_table(str(prefix) + ".asdsf.tsv")
    windows = [x for x in rows if x["kind"] == "window"]
    assert [int(x["first_sample"]) for x in windows] == list(range(0, 2001 - 200 + 1, 200))
    _, cols, rows = read_table(str(prefix) + ".parameters.tsv")
    assert [x["parameter"] for x in rows] == ["tree length"]


def test_three_runs_plot(tmp_path):
    pytest.importorskip("matplotlib")
    runs = []
    for r, (src, start) in enumerate(((RUN1, 0), (RUN2, 0), (RUN1, 1))):
        text = open(src).read()
        if start:  # a third run: run 1 shifted by half its length
            head, body = text.split("tree gen.", 1)
            trees = ("tree gen." + body).split("\n")
            trees = [t for t in trees if t.strip().startswith("tree")]
            text = head + "\n".join(trees[1000:] + trees[:1000]) + "\nend;\n"
        p = tmp_path / f"r{r}.t"
        p.write_text(text)
        runs.append(p)
    r = run("diagnose", *runs, "--plot", tmp_path / "x", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "x.splits.png").read_bytes()[:8] == PNG


def test_bad_input_is_one_line(tmp_path):
    r = CliRunner().invoke(main, ["diagnose", RUN1, RUN2, "--p", RUN1])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "error: give one parameter file per tree file: 2 tree files, 1 parameter files"
    ]
    bad = tmp_path / "bad.p"
    bad.write_text("Gen\tLnL\n0\t-1\n1\tx\n")
    r = CliRunner().invoke(main, ["diagnose", RUN1, "--p", str(bad)])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "bad.p" in r.stderr and "3" in r.stderr and "not a number" in r.stderr
    r = CliRunner().invoke(main, ["diagnose", str(DATA / "example.trprobs")])
    assert r.exit_code == 2 and "weighted summaries" in r.stderr


def disagreeing_runs(tmp_path):
    """Run 1, and run 2 with taxa T01 and T12 swapped in its translate table: the runs
    disagree on every split that separates the two."""
    text = open(RUN2).read()
    swapped, n = re.subn(r"(?m)^(\s+)1 T01,$", r"\g<1>1 T12,", text)
    swapped, m = re.subn(r"(?m)^(\s+)12 T12,$", r"\g<1>12 T01,", swapped)
    assert n == m == 1
    p2 = tmp_path / "b.t"
    p2.write_text(swapped)
    return RUN1, str(p2)


@pytest.fixture
def apart(tmp_path):
    p1, p2 = disagreeing_runs(tmp_path)
    check = pooling_check(read_trees([p1, p2]))
    assert check.disagree and check.asdsf > 0.05
    return p1, p2, check


@pytest.mark.parametrize("quiet", [False, True])
def test_fit_and_summary_warn_before_pooling(apart, tmp_path, quiet):
    p1, p2, check = apart
    q = ["-q"] if quiet else []
    model = tmp_path / "m.json"
    r = run("fit", p1, p2, "-m", "sa", "-o", model, *q)
    assert r.exit_code == 0 and model.exists()
    lines = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert len(lines) == 1
    assert f"ASDSF is {check.asdsf:.4g} (above 0.05" in lines[0]
    assert "sbn diagnose" in lines[0] and "pool only runs that agree" in lines[0]
    r = run("summary", p1, p2, *q)
    assert r.exit_code == 0 and "Unique topologies" in r.stdout
    assert [x for x in r.stderr.splitlines() if x.startswith("warning:")] == lines
    assert "warning" not in r.stdout


def test_no_warning_for_agreeing_runs(tmp_path):
    r = run("fit", RUN1, RUN2, "-m", "sa", "-o", tmp_path / "m.json")
    assert r.exit_code == 0 and "warning" not in r.stderr
    r = run("summary", RUN1, RUN2, "-q")
    assert r.exit_code == 0 and r.stderr == ""


def test_the_warning_names_a_missing_topology(tmp_path):
    # the same trees, but run 2 never visits the most frequent topology of run 1
    s = read_trees([RUN1, RUN2])
    top = s.newick(0)
    trees1 = [top] * 300 + [s.newick(i) for i in s.traces[0][:700]]
    trees2 = [s.newick(i) for i in s.traces[1][:1000] if i != 0]
    p1, p2 = tmp_path / "x.nwk", tmp_path / "y.nwk"
    p1.write_text("\n".join(trees1) + "\n")
    p2.write_text("\n".join(trees2) + "\n")
    r = run("summary", p1, p2, "--burnin", 0)
    assert r.exit_code == 0
    msg = r.stderr
    assert "topology 1 has frequency 0.3" in msg and f"never occurs in run 2 ({p2})" in msg
    assert np.isclose(
        pooling_check(read_trees([str(p1), str(p2)], burnin=0)).missing[0][2], 0.3, atol=0.01
    )
