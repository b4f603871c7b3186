"""`marglik total` on the command line: its tables, the same estimate however the topologies'
tasks are spread (processes, shards, Dask, a killed run resumed), and bad input.

The problem is the 5-taxon one of test_total.py, whose exact p(D) is known by quadrature.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.marglik import main
from phylo.marglik import total as T
from phylo.tables import read_table

from ..conftest import ROOT, cli_command
from .test_compare_cli import _stderr_on_a_terminal
from .test_total import exact, write_problem

#: several stages on 15 topologies: K = 1, 2, 4, ... and 10, 20, 40, ... remainder draws
STAGED = ["--k-start", 1, "--draws", 10, "--tolerance", 0.01]


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    folder = tmp_path_factory.mktemp("total")
    return write_problem(folder, 5, 200, np.random.default_rng(31))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def total_args(problem, out, *extra):
    aln, trees = problem
    return ["total", aln, "--trees", trees, "--seed", 7, "-o", out, "-q", *extra]


def summary(path):
    _, cols, rows = read_table(path)
    return cols, rows


def topology_rows(path):
    from phylo.execution import read_table as read_results

    _, _, rows = read_results(path)
    return sorted((r["topology"], r["task"], r["log_ml"], r["se"]) for r in rows)


def test_writes_the_estimate_as_tsv_and_json(problem, tmp_path):
    out, js = tmp_path / "total.tsv", tmp_path / "total.json"
    r = invoke(*total_args(problem, out, "--k", 2, "--draws", 40, "--json", js, "--joint", 300))
    assert r.exit_code == 0, r.output
    cols, rows = summary(str(out))
    assert cols == list(T.SUMMARY_COLUMNS)
    assert [row["estimator"] for row in rows] == ["stratified", "joint"]
    *_, truth = exact(5)
    for row in rows:
        assert abs(float(row["log_z"]) - truth) < 3 * float(row["se"]) + 1e-5
    strat = rows[0]
    assert strat["k"] == "2" and strat["remainder_draws"] == "40"
    text = out.read_text()
    assert "# seed: 7" in text and "# input: " in text and "# method: glis" in text
    data = json.loads(js.read_text())
    assert data["estimate"]["log_z"] == pytest.approx(float(strat["log_z"]), abs=1e-9)
    assert len(data["stages"]) == 1 and data["provenance"]["seed"] == 7
    # the per-topology table beside it
    assert (tmp_path / "total.topologies.tsv").exists()
    # the library gives the same number
    aln, trees = problem
    est = T.total_marginal_likelihood(aln, [trees], seed=7, k=2, draws=40)
    assert est.log_z == pytest.approx(float(strat["log_z"]), abs=1e-9)
    # the summary for people
    assert "log Z = " in r.output and "exact part: K = 2" in r.output


def test_same_estimate_for_any_jobs_shards_or_resumption(problem, tmp_path):
    one = tmp_path / "one.tsv"
    r = invoke(*total_args(problem, one, *STAGED, "--json", tmp_path / "one.json"))
    assert r.exit_code == 0, r.output
    stages = json.loads((tmp_path / "one.json").read_text())["stages"]
    assert len(stages) >= 3  # the staging is exercised
    base = summary(str(one))[1][0]
    keep = ("log_z", "se", "k", "topologies", "remainder_draws", "ess", "khat")
    two = tmp_path / "two.tsv"
    assert invoke(*total_args(problem, two, *STAGED, "--jobs", 2)).exit_code == 0
    assert {c: summary(str(two))[1][0][c] for c in keep} == {c: base[c] for c in keep}
    assert topology_rows(str(tmp_path / "two.topologies.tsv")) == topology_rows(
        str(tmp_path / "one.topologies.tsv")
    )
    # shards: rounds of both shards, each seeing every shard's table, until one reports
    pattern = str(tmp_path / "part-*.topologies.tsv")
    reported = False
    for _ in range(12):
        for i in (1, 2):
            out = tmp_path / f"part-{i}.tsv"
            r = invoke(*total_args(problem, out, *STAGED, "--shard", f"{i}/2", "--merge", pattern))
            assert r.exit_code == 0, r.output
            reported |= "log Z = " in r.output
            if not reported:
                assert "left to the other shards" in r.output
        if reported:
            break
    assert reported
    final = tmp_path / "final.tsv"
    r = invoke(*total_args(problem, final, *STAGED, "--merge", pattern))
    assert r.exit_code == 0, r.output
    assert {c: summary(str(final))[1][0][c] for c in keep} == {c: base[c] for c in keep}
    # the joined table holds every topology, as the single run's does
    assert topology_rows(str(tmp_path / "final.topologies.tsv")) == topology_rows(
        str(tmp_path / "one.topologies.tsv")
    )
    # run again: nothing left to do, the same estimate from the table
    again = invoke(*total_args(problem, one, *STAGED))
    assert again.exit_code == 0
    assert {c: summary(str(one))[1][0][c] for c in keep} == {c: base[c] for c in keep}


def test_dask_gives_the_same_estimate(problem, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = tmp_path / "local.tsv"
    assert invoke(*total_args(problem, local, "--k", 3, "--draws", 30)).exit_code == 0
    out = tmp_path / "dask.tsv"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        r = invoke(
            *total_args(
                problem, out, "--k", 3, "--draws", 30, "--executor", "dask", "--scheduler",
                cluster.scheduler_address,
            )
        )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert summary(str(out))[1][0]["log_z"] == summary(str(local))[1][0]["log_z"]


def test_sigkill_then_same_command_finishes(problem, tmp_path):
    aln, trees = problem
    out = str(tmp_path / "killed.tsv")
    results = str(tmp_path / "killed.topologies.tsv")
    # slow tasks (many glis samples), so that the kill lands between them
    args = cli_command(
        "marglik", "total", aln, "--trees", trees, "--seed", 3, "--k", 4, "--draws", 30,
        "--set", "samples=200000", "-o", out,
    )  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(args, cwd=str(ROOT), env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:
        if os.path.exists(results) and open(results).read().count("\n\t") == 0:
            rows = [ln for ln in open(results) if ln.strip() and not ln.startswith("#")]
            if len(rows) >= 3:  # header and a few topologies
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    rows = [ln for ln in open(results) if ln.strip() and not ln.startswith("#")]
    done_before = len(rows) - 1
    assert 0 < done_before < 15
    assert not os.path.exists(out)  # no estimate yet
    with open(results, "a") as fh:  # a half-written last line
        fh.write(rows[1].split("\t")[0] + "\tz\t-61.2")
    r = subprocess.run(args, cwd=str(ROOT), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "damaged" in r.stderr
    clean = str(tmp_path / "clean.tsv")
    r2 = subprocess.run(args[:-1] + [clean], cwd=str(ROOT), env=env, capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr
    assert summary(out)[1][0]["log_z"] == summary(clean)[1][0]["log_z"]
    assert topology_rows(results) == topology_rows(str(tmp_path / "clean.topologies.tsv"))


def test_progress_shows_on_a_terminal_only(problem, tmp_path):
    aln, trees = problem
    out = str(tmp_path / "p.tsv")
    args = cli_command("marglik", "total", aln, "--trees", trees, "--seed", 1, "--k", 2, "-o", out)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code, text = _stderr_on_a_terminal(args, env)
    assert code == 0
    assert "topologies" in text and "estimating" in text
    code, text = _stderr_on_a_terminal(args + ["--quiet"], env)
    assert code == 0 and "estimating" not in text and "stage" not in text  # warnings stay


def _sbn_for_other_taxa(tmp_path):
    from phylo.sbn import fit
    from phylo.trees import read_trees

    path = tmp_path / "six.nwk"
    path.write_text("((t0,t1),(t2,t3),(t4,t5));\n" * 30)
    model = fit(read_trees(str(path), burnin=0))
    out = tmp_path / "six.json"
    model.save(str(out))
    return str(out)


def test_bad_input_exits_2(problem, tmp_path):
    aln, trees = problem
    other = tmp_path / "other.nwk"
    other.write_text("((t0,t1),(t2,(t3,x9)));\n" * 40)
    r = invoke("total", aln, "--trees", other, "-q")
    assert r.exit_code == 2 and "taxa of the tree sample" in r.stderr and "x9" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = invoke("total", aln, "--trees", trees, "--sbn", _sbn_for_other_taxa(tmp_path), "-q")
    assert r.exit_code == 2 and "other taxa" in r.stderr
    few = tmp_path / "few.nwk"
    few.write_text("((t0,t1),(t2,(t3,t4)));\n" * 5)
    r = invoke("total", aln, "--trees", few, "--burnin", 0, "-q")
    assert r.exit_code == 2 and "too few" in r.stderr
    r = invoke("total", aln, "--trees", trees, "--k", 2, "--top-mass", 0.5, "-q")
    assert r.exit_code == 2 and "not both" in r.stderr
    r = invoke("total", aln, "--trees", trees, "--method", "magic", "-q")
    assert r.exit_code == 2 and "unknown method" in r.stderr
    r = invoke("total", aln, "-q")
    assert r.exit_code == 2 and "tree sample" in r.stderr
    # a results table of another run (another seed) is not continued
    out = tmp_path / "t.tsv"
    assert (
        invoke("total", aln, "--trees", trees, "--k", 1, "--seed", 1, "-o", out, "-q").exit_code
        == 0
    )
    r = invoke("total", aln, "--trees", trees, "--k", 1, "--seed", 2, "-o", out, "-q")
    assert r.exit_code == 2 and "different run" in r.stderr


def test_unusable_remainder_is_a_warning_with_numbers(problem, tmp_path):
    # one remainder draw: no variance estimate; said so, and the standard error is infinite,
    # not a silent NaN
    out = tmp_path / "one.tsv"
    r = invoke(*total_args(problem, out, "--k", 1, "--draws", 1))
    assert r.exit_code == 0
    assert "warning: the remainder rests on one draw" in r.stderr
    row = summary(str(out))[1][0]
    assert row["se"] == "inf" and math.isfinite(float(row["log_z"]))


def test_sbn_given_with_its_own_taxon_order(problem, tmp_path):
    # an SBN fitted (`sbn fit`) to trees whose first tree lists the taxa in another order: q is
    # the same distribution, so with every topology exact the estimate is the same number, and
    # with draws (relabelled into the alignment's order) it is within its error of the truth
    from phylo.cli.sbn import main as sbn_main

    aln, trees = problem
    lines = open(trees).read().splitlines()
    shuffled = tmp_path / "shuffled.nwk"
    shuffled.write_text("((t4,t3),(t2,(t1,t0)));\n" + "\n".join(lines) + "\n")
    model = tmp_path / "q.json"
    r = CliRunner().invoke(sbn_main, ["fit", str(shuffled), "--burnin", "0", "-o", str(model)])
    assert r.exit_code == 0, r.output
    assert json.loads(model.read_text())["taxa"][0] == "t4"
    own, given = tmp_path / "own.tsv", tmp_path / "given.tsv"
    assert invoke("total", aln, str(shuffled), "--burnin", 0, "--seed", 2, "--k", 15,
                  "-o", own, "-q").exit_code == 0  # fmt: skip
    assert invoke("total", aln, "--trees", shuffled, "--burnin", 0, "--sbn", model, "--seed", 2,
                  "--k", 15, "-o", given, "-q").exit_code == 0  # fmt: skip
    assert summary(str(own))[1][0]["log_z"] == summary(str(given))[1][0]["log_z"]
    # two tree files, and draws from the given SBN
    both = tmp_path / "both.tsv"
    r = invoke("total", aln, "--trees", trees, shuffled, "--sbn", model, "--seed", 2, "--k", 2,
               "--draws", 60, "-o", both, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    row = summary(str(both))[1][0]
    *_, truth = exact(5)
    assert abs(float(row["log_z"]) - truth) < 3 * float(row["se"]) + 1e-5
    assert row["remainder_draws"] == "60"


def test_sbn_alone_supplies_its_own_top_topologies(problem, tmp_path):
    # without --trees the one-by-one candidates are the SBN's own most probable topologies:
    # with --k 3 the exact part is q's top 3, and the estimate lands within its error of the
    # quadrature; with --k 15 (all of them exact) it is the exact sum over topologies
    from phylo.cli.sbn import main as sbn_main
    from phylo.sbn import load_model

    aln, trees = problem
    model = tmp_path / "q.json"
    r = CliRunner().invoke(sbn_main, ["fit", str(trees), "--burnin", "0", "-o", str(model)])
    assert r.exit_code == 0, r.output
    q = load_model(str(model))
    out = tmp_path / "alone.tsv"
    r = invoke("total", aln, "--sbn", model, "--seed", 3, "--k", 3, "--draws", 60, "-o", out)
    assert r.exit_code == 0, r.output
    exact_keys = {row[0] for row in topology_rows(str(out).replace(".tsv", ".topologies.tsv"))
                  if row[1] == "z"}  # fmt: skip
    order = T.TaxonOrders(q.taxa, q.taxa)
    top3 = {T.topology_key(p) for p in order.alignment(q.top(3).parents)}
    assert top3 <= exact_keys
    *_, truth = exact(5)
    row = summary(str(out))[1][0]
    assert abs(float(row["log_z"]) - truth) < 3 * float(row["se"]) + 1e-5
    every = tmp_path / "every.tsv"
    assert invoke("total", aln, "--sbn", model, "--seed", 3, "--k", 15, "-o", every,
                  "-q").exit_code == 0  # fmt: skip
    row = summary(str(every))[1][0]
    assert row["remainder_draws"] == "0" or float(row["exact_share"]) == 1.0
    assert abs(float(row["log_z"]) - truth) < 3 * float(row["se"]) + 1e-4
