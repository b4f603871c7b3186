"""`marglik compare` and `marglik merge` as users run them: the table does not depend on how
the work is split (processes, Dask, shards), a killed run resumes, bad input exits with 2."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.marglik import main
from phylo.execution import read_table

from ..conftest import ROOT, cli_command

METHODS = "nmc,gl"
SETTINGS = ["--set", "nmc.samples=300"]


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """A 6-taxon alignment and a credible set of four topologies (frequencies made up)."""
    from phylo.likelihood import JC69, random_tree, simulate_alignment

    d = tmp_path_factory.mktemp("marglik")
    rng = np.random.default_rng(11)
    taxa = [f"t{i}" for i in range(6)]
    tree = random_tree(taxa, rng, mean_branch_length=0.1)
    aln = simulate_alignment(tree, JC69(), 120, rng)
    fasta = d / "aln.fasta"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in zip(aln.taxa, aln.sequences())))
    trees = d / "set.tsv"
    newicks = [
        "((t0,t1),(t2,t3),(t4,t5));",
        "((t0,t2),(t1,t3),(t4,t5));",
        "((t0,t1),(t2,t4),(t3,t5));",
        "((t0,t5),(t2,t3),(t4,t1));",
    ]
    trees.write_text("".join(f"{f}\t{n}\n" for f, n in zip([0.5, 0.3, 0.15, 0.05], newicks)))
    return str(fasta), str(trees)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def rows_of(path):
    _, _, rows = read_table(path)
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def compare_args(problem, out, *extra):
    aln, trees = problem
    return [
        "compare",
        aln,
        "--trees",
        trees,
        "--methods",
        METHODS,
        "--replicates",
        2,
        "--seed",
        5,
        *SETTINGS,
        "-o",
        out,
        "-q",
        *extra,
    ]


def test_same_table_for_any_jobs_and_shards(problem, tmp_path):
    one = str(tmp_path / "one.tsv")
    r = invoke(*compare_args(problem, one, "--reference", problem[1]))
    assert r.exit_code == 0, r.output
    table = rows_of(one)
    assert len(table) == 4 * 2 * 2
    assert {r["method"] for r in table} == {"nmc", "gl"}
    # the two replicates of a stochastic method differ; a deterministic one's do not
    nmc = [r for r in table if r["method"] == "nmc" and r["tree"] == "1"]
    assert nmc[0]["log_ml"] != nmc[1]["log_ml"]
    two = str(tmp_path / "two.tsv")
    assert invoke(*compare_args(problem, two, "--jobs", 2)).exit_code == 0
    assert rows_of(two) == table
    shards = []
    for i in (1, 2, 3):
        p = str(tmp_path / f"shard-{i}.tsv")
        assert invoke(*compare_args(problem, p, "--shard", f"{i}/3")).exit_code == 0
        shards.append(p)
    assert sorted(len(rows_of(p)) for p in shards) == [5, 5, 6]
    merged = str(tmp_path / "merged.tsv")
    r = invoke(
        "merge",
        str(tmp_path / "shard-*.tsv"),
        "-o",
        merged,
        "--reference",
        problem[1],
        "--trees",
        problem[1],
    )
    assert r.exit_code == 0, r.output
    assert rows_of(merged) == table
    # the summary: one line per method, with KL to the reference
    first = r.output.splitlines()
    assert first[0].split("\t")[:2] == ["method", "trees"] and "mean_kl" in first[0]


def test_another_seed_changes_stochastic_estimates_only(problem, tmp_path):
    a, b = str(tmp_path / "a.tsv"), str(tmp_path / "b.tsv")
    assert invoke(*compare_args(problem, a)).exit_code == 0
    args = compare_args(problem, b)
    args[args.index("--seed") + 1] = 6
    assert invoke(*args).exit_code == 0
    ra, rb = rows_of(a), rows_of(b)
    for x, y in zip(ra, rb):
        if x["method"] == "nmc":
            assert x["log_ml"] != y["log_ml"]


def test_summary_kl_equals_its_definition(problem, tmp_path):
    from scipy.special import logsumexp

    out = str(tmp_path / "s.tsv")
    r = invoke(*compare_args(problem, out, "--reference", problem[1]))
    lines = r.output.splitlines()
    header = lines[0].split("\t")
    gl = dict(zip(header, next(ln.split("\t") for ln in lines if ln.startswith("gl\t"))))
    m = np.array(
        [float(x["log_ml"]) for x in rows_of(out) if x["method"] == "gl" and x["replicate"] == "1"]
    )
    p = np.array([0.5, 0.3, 0.15, 0.05])
    q = np.exp(m - logsumexp(m))
    assert float(gl["mean_kl"]) == pytest.approx(float(np.sum(p * np.log(p / q))), rel=1e-5)


def test_dask_local_cluster_gives_the_same_table(problem, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = str(tmp_path / "local.tsv")
    assert invoke(*compare_args(problem, local)).exit_code == 0
    out = str(tmp_path / "dask.tsv")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        r = invoke(
            *compare_args(
                problem, out, "--executor", "dask", "--scheduler", cluster.scheduler_address
            )
        )
    assert r.exit_code == 0, r.output
    assert rows_of(out) == rows_of(local)


def _cli(*args):
    return cli_command("marglik", *args)


def test_sigkill_then_same_command_finishes_the_table(problem, tmp_path):
    aln, trees = problem
    out = str(tmp_path / "killed.tsv")
    # slower tasks, so that the kill lands between them
    args = _cli(
        "compare",
        aln,
        "--trees",
        trees,
        "--methods",
        "nmc",
        "--replicates",
        6,
        "--seed",
        9,
        "--set",
        "nmc.samples=40000",
        "-o",
        out,
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(args, cwd=str(ROOT), env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(out) and open(out).read().count("\t") > 60:  # a few rows written
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert err == b""  # no progress bar: stderr is not a terminal
    with open(out) as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.startswith("#")]
    done_before = len(lines) - 1
    assert 0 < done_before < 24
    # a half-written trailing line: its task must be detected and redone
    with open(out, "a") as fh:
        fh.write("3\tnmc\t6\t-123.4")
    r = subprocess.run(args, cwd=str(ROOT), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "damaged" in r.stderr
    clean = str(tmp_path / "clean.tsv")
    r2 = subprocess.run(args[:-1] + [clean], cwd=str(ROOT), env=env, capture_output=True, text=True)
    assert r2.returncode == 0
    assert rows_of(out) == rows_of(clean)
    # the summaries agree too, apart from the timings
    mean_col = r.stdout.splitlines()[0].split("\t").index("mean_log_ml")
    assert (
        r.stdout.splitlines()[1].split("\t")[: mean_col + 2]
        == r2.stdout.splitlines()[1].split("\t")[: mean_col + 2]
    )


def test_progress_shows_on_a_terminal_only(problem, tmp_path):
    aln, trees = problem
    out = str(tmp_path / "p.tsv")
    args = _cli("compare", aln, "--trees", trees, "--methods", "gl", "-o", out, "--seed", 1)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code, text = _stderr_on_a_terminal(args, env)
    assert code == 0
    assert "4/4" in text and "tasks" in text
    code, text = _stderr_on_a_terminal(args + ["--quiet"], env)  # --quiet: nothing
    assert code == 0 and text == ""


def _stderr_on_a_terminal(args, env):
    """Run a command with its stderr on a pseudo-terminal; return (exit status, stderr)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "magic"], "unknown method 'magic'"),
        (["--set", "nmc.nothing=3"], "no setting 'nothing'"),
        (["--shard", "0/3"], "numbered from 1"),
        (["--prior", "weird"], "unknown branch-length prior"),
    ],
)
def test_bad_options_exit_2(problem, tmp_path, args, message):
    aln, trees = problem
    r = invoke("compare", aln, "--trees", trees, "--methods", "nmc", *args, "-q")
    if "--methods" in args:
        r = invoke("compare", aln, "--trees", trees, *args, "-q")
    assert r.exit_code == 2
    assert message in r.stderr


def test_bad_inputs_exit_2(problem, tmp_path):
    aln, trees = problem
    other = tmp_path / "other.tsv"
    other.write_text("1.0\t((t0,t1),(t2,t3),(t4,x9));\n")
    r = invoke("compare", aln, "--trees", str(other), "--methods", "gl", "-q")
    assert r.exit_code == 2 and f"only in {other}: 'x9'; only in {aln}: " in r.stderr
    poly = tmp_path / "poly.nwk"
    poly.write_text("(t0,t1,t2,(t3,t4,t5));\n")
    r = invoke("estimate", aln, str(poly), "--method", "gl")
    assert r.exit_code == 2 and "binary" in r.stderr
    zero = tmp_path / "zero.nwk"
    zero.write_text("((t0:0.1,t1:0.1):0.1,(t2:0.1,t3:0.0):0.1,(t4:0.1,t5:0.1):0.1);\n")
    r = invoke("estimate", aln, str(zero), "--method", "gl")
    assert r.exit_code == 2 and "must be positive" in r.stderr
    out = str(tmp_path / "t.tsv")
    assert (
        invoke(
            "compare", aln, "--trees", trees, "--methods", "gl", "-o", out, "--seed", 1, "-q"
        ).exit_code
        == 0
    )
    r = invoke("compare", aln, "--trees", trees, "--methods", "gl", "-o", out, "--seed", 2, "-q")
    assert r.exit_code == 2 and "different run" in r.stderr


def test_estimate_matches_compare(problem, tmp_path):
    aln, trees = problem
    r = invoke("estimate", aln, trees, "--method", "gl", "--seed", 5)
    assert r.exit_code == 0, r.output
    from phylo.tables import parse_table

    comments, _, rows = parse_table(r.output)
    assert "# seed: 5" in comments
    got = {row["tree"]: row["log_ml"] for row in rows}
    out = str(tmp_path / "c.tsv")
    invoke(*compare_args(problem, out))
    for row in rows_of(out):
        if row["method"] == "gl" and row["replicate"] == "1":
            assert float(got[row["tree"]]) == pytest.approx(float(row["log_ml"]), abs=1e-6)


def test_methods_lists_every_family():
    from phylo.tables import parse_table

    r = invoke("methods", "--format", "tsv")
    assert r.exit_code == 0
    _, columns, rows = parse_table(r.output)
    assert columns[:2] == ["method", "family"]
    names = [row["method"] for row in rows]
    assert len(names) == len(set(names)) == 19
    expected = {
        "ss",
        "gss",
        "ps",
        "psm",
        "bs",
        "hm",
        "shm",
        "cpo",
        "ppd",
        "ns",
        "nmc",
        "gl",
        "ll",
        "bl",
        "glis",
        "vbis",
        "elbo",
        "map",
        "ml",
    }
    assert expected == set(names)


def test_plot_writes_a_png(problem, tmp_path):
    pytest.importorskip("matplotlib")
    out, png = str(tmp_path / "p.tsv"), tmp_path / "p.png"
    r = invoke(*compare_args(problem, out, "--reference", problem[1], "--plot", png))
    assert r.exit_code == 0, r.output
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # and from the merged table of shards
    png2 = tmp_path / "m.png"
    r = invoke("merge", out, "-o", str(tmp_path / "m.tsv"), "--plot", png2)
    assert r.exit_code == 0 and png2.read_bytes()[:4] == b"\x89PNG"
