"""`sbn compare` (estimators x replicates as tasks) and `sbn merge`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.execution import read_table

from ..conftest import DATA

RUNS = [str(DATA / "example.run1.t"), str(DATA / "example.run2.t")]
REF = str(DATA / "example.trprobs")


def run(*args):
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r


def results(path):
    _, cols, rows = read_table(path)
    return {
        (r["replicate"], r["method"]): (r["kl"], r["iterations"], r["unique_trees"]) for r in rows
    }


def test_compare_is_the_same_for_any_jobs_and_shards(tmp_path):
    one = str(tmp_path / "one.tsv")
    r = run("compare", *RUNS, "--reference", REF, "-m", "srf,sa,em-alpha", "-o", one, "-q")
    assert r.exit_code == 0, r.output
    table = results(one)
    assert len(table) == 6
    two = str(tmp_path / "two.tsv")
    assert (
        run(
            "compare",
            *RUNS,
            "--reference",
            REF,
            "-m",
            "srf,sa,em-alpha",
            "-o",
            two,
            "--jobs",
            "2",
            "-q",
        ).exit_code
        == 0
    )
    assert results(two) == table
    shards = []
    for i in (1, 2, 3):
        p = str(tmp_path / f"s{i}.tsv")
        assert (
            run(
                "compare",
                *RUNS,
                "--reference",
                REF,
                "-m",
                "srf,sa,em-alpha",
                "-o",
                p,
                "--shard",
                f"{i}/3",
                "-q",
            ).exit_code
            == 0
        )
        shards.append(p)
    merged = str(tmp_path / "merged.tsv")
    r = run("merge", *shards, "-o", merged)
    assert r.exit_code == 0
    assert results(merged) == table
    # each run lacks topologies that the other holds: SRF pays the floor for them, while an
    # SBN fitted to one run gives them probability
    for rep in ("1", "2"):
        assert float(table[(rep, "em-alpha")][0]) < float(table[(rep, "srf")][0])


def test_compare_refuses_another_runs_table_and_unknown_methods(tmp_path):
    out = str(tmp_path / "t.tsv")
    assert run("compare", RUNS[0], "--reference", REF, "-m", "srf", "-o", out, "-q").exit_code == 0
    r = run("compare", RUNS[0], "--reference", REF, "-m", "sa", "-o", out, "-q")
    assert r.exit_code == 2 and "different run" in r.stderr
    r = run("compare", RUNS[0], "--reference", REF, "-m", "magic", "-q")
    assert r.exit_code == 2 and "unknown method 'magic'" in r.stderr
    r = run("compare", RUNS[0], "--reference", str(tmp_path / "nothing_*.t"), "-q")
    assert r.exit_code == 2 and "no file matches" in r.stderr


def test_published_ds2_row(shared):
    base = "ds/zcrabbit-sbn/data/"
    training = [
        str(shared(f"{base}short_run_data_DS1-8/DS2/rep_{i}/DS2.trprobs")) for i in range(1, 11)
    ]
    golden = str(shared(f"{base}raw_data_DS1-4/DS2/rep_1/DS2.trprobs")).replace("rep_1", "rep_*")
    r = run("compare", *training, "--reference", golden, "--trees-per-run", "750001", "-q")
    assert r.exit_code == 0
    means = {line.split("\t")[0]: float(line.split("\t")[2]) for line in r.stdout.splitlines()[1:]}
    published = {"srf": 0.0122, "ccd": 0.0218, "sa": 0.0218, "em": 0.0199, "em-alpha": 0.0128}
    for m, v in published.items():
        assert means[m] == pytest.approx(v, rel=0.02), m
