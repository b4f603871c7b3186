"""`marglik compare-models` and the `--prior` grammar as users run them: Bayes factors against
quadrature, fixed values spelled two ways giving one answer, bad priors exiting with 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from phylo import tables
from phylo.cli.marglik import main
from phylo.errors import InputError
from phylo.execution import read_table
from phylo.marglik import bayes_factors as BF

from .exact import (
    EXAMPLE_TAXA,
    KAPPA_EXAMPLE,
    exact_log_ml,
    exact_log_ml_with_parameter,
    exponential_log_prior,
)

EXAMPLE = "data/example.fasta"
TRUE_TREE = "data/example_true.nwk"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def kappa_problem(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    fasta = d / "k80.fasta"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in zip(EXAMPLE_TAXA, KAPPA_EXAMPLE)))
    tree = d / "star.nwk"
    tree.write_text("(A,B,C);\n")
    return str(fasta), str(tree), d


def test_bayes_factor_against_quadrature(kappa_problem):
    fasta, tree, d = kappa_problem
    out = d / "models.tsv"
    res = invoke(
        "compare-models", fasta, tree, "--model", "JC69", "--model", "K80",
        "--method", "glis", "--set", "samples=20000", "--seed", "3", "-o", out, "-q",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    pair = next(line.split("\t") for line in lines if line.startswith("1\tJC69\tK80\t"))
    log_bf, se = float(pair[3]), float(pair[4])
    z_jc = exact_log_ml(KAPPA_EXAMPLE, exponential_log_prior(10.0))
    z_k80 = exact_log_ml_with_parameter(
        KAPPA_EXAMPLE, "K80", exponential_log_prior(10.0), lambda k: -2.0 * np.log1p(k),
        (-14.0, 9.0), 60, 64,
    )  # fmt: skip
    assert abs(log_bf - (z_jc - z_k80)) < 4 * se + 0.01, (log_bf, se, z_jc - z_k80)
    # the table: one row per model, what was integrated
    _, _, rows = read_table(str(out))
    assert [(r["model"], r["integrated"]) for r in rows] == [("JC69", ""), ("K80", "kappa")]


def test_summary_of_replicates():
    rows = [
        {"tree": "1", "model": "A", "replicate": 1, "log_ml": "-10.0", "se": "0.1"},
        {"tree": "1", "model": "A", "replicate": 2, "log_ml": "-10.4", "se": "0.1"},
        {"tree": "1", "model": "B", "replicate": 1, "log_ml": "-12.0", "se": "0.3"},
        {"tree": "1", "model": "B", "replicate": 2, "log_ml": "-12.0", "se": "0.3"},
    ]
    s = BF.summarise(rows, ["A", "B"])
    a, b = s["models"]
    assert a["log_ml"] == pytest.approx(-10.2) and a["se"] == pytest.approx(0.2)
    assert b["se"] == 0.0  # the spread of the replicates, not the estimator's own
    (pair,) = s["pairs"]
    assert pair["log_bf"] == pytest.approx(1.8) and pair["se"] == pytest.approx(0.2)
    single = BF.summarise(rows[:1] + rows[2:3])
    assert single["pairs"][0]["se"] == pytest.approx(math.hypot(0.1, 0.3))


def test_fixed_by_option_or_by_prior_gives_the_same_rows(tmp_path):
    common = [EXAMPLE, TRUE_TREE, "-m", "glis", "--set", "samples=500", "--seed", "9"]
    a = invoke("estimate", *common, "--model", "HKY+G4", "--kappa", "2", "--gamma-shape",
               "0.5", "-f", "empirical", "-o", tmp_path / "a.tsv")  # fmt: skip
    b = invoke("estimate", *common, "--model", "HKY+G4", "--prior", "kappa=fixed:2",
               "--prior", "shape=fixed:0.5", "--prior", "freqs=fixed:empirical",
               "-o", tmp_path / "b.tsv")  # fmt: skip
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    ra = tables.read_table(str(tmp_path / "a.tsv"))[2]
    rb = tables.read_table(str(tmp_path / "b.tsv"))[2]
    assert ra[0]["log_ml"] == rb[0]["log_ml"] and ra[0]["se"] == rb[0]["se"]
    # the old spelling of the branch-length prior is the new default
    c = invoke("estimate", EXAMPLE, TRUE_TREE, "-m", "gl", "--prior", "exp:10")
    d = invoke("estimate", EXAMPLE, TRUE_TREE, "-m", "gl", "--prior", "brlens=exp:10")
    e = invoke("estimate", EXAMPLE, TRUE_TREE, "-m", "gl")
    values = {r.output.splitlines()[-1].split("\t")[2] for r in (c, d, e)}
    assert len(values) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "GTR+G4", "--prior", "kappa=beta:1,1"], "has no kappa"),
        (["--model", "JC69", "--prior", "pinv=uniform:0,1"], "has no pinv"),
        (["--model", "HKY+G4", "--prior", "shape=uniform:0,inf"], "improper prior"),
        (["--model", "HKY+G4", "--prior", "shape=gamma:-1,2"], "improper prior"),
        (["--model", "GTR", "--prior", "rates=dirichlet:1,1,1,0,1,1"], "improper prior"),
        (["--model", "HKY+I", "--prior", "pinv=fixed:1.2"], "pinv must be in"),
        (["--model", "HKY", "--prior", "kappa=fixed:-2"], "kappa must be in"),
        (["--model", "HKY", "--prior", "freqs=fixed:0.1,0.1,0.1"], "4 positive numbers"),
        (["--model", "HKY", "--prior", "colour=exp:1"], "unknown parameter"),
        (["--model", "HKY", "--kappa", "2", "--prior", "kappa=exp:1"], "already fixed"),
        (["--prior", "exp:0"], "improper prior"),
    ],
)
def test_bad_priors_exit_2_with_one_line(args, message):
    res = CliRunner().invoke(main, ["estimate", EXAMPLE, TRUE_TREE, "-m", "gl", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "JC69"], "at least two models"),
        (["--model", "JC69", "--model", "JC69"], "given twice"),
        (["--model", "JC69", "--model", "K80", "--prior", "shape=exp:1"], "none of the models"),
        (["--model", "K80", "--model", "HKY", "--prior", "kappa=uniform:1,0"], "improper"),
        (["--model", "JC69", "--model", "K80", "-m", "gl,glis"], "one estimator"),
    ],
)
def test_compare_models_bad_input(args, message):
    res = CliRunner().invoke(main, ["compare-models", EXAMPLE, TRUE_TREE, *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1


def test_compare_models_taxa_differ(tmp_path):
    other = tmp_path / "other.nwk"
    other.write_text(open(TRUE_TREE).read().replace("T20", "x9"))
    res = CliRunner().invoke(
        main, ["compare-models", EXAMPLE, str(other), "--model", "JC69", "--model", "K80"]
    )
    assert res.exit_code == 2, res.output
    assert f"only in tree 1 of {other}: 'x9'" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_compare_models_takes_any_estimator(kappa_problem):
    """The hook for estimates over topologies: compare_models hands each model's prior to a
    callable; with the fixed-topology glis as that callable, the Bayes factor is quadrature's."""
    from phylo.likelihood import read_alignment
    from phylo.marglik.compare import read_topologies
    from phylo.marglik.estimators import run
    from phylo.marglik.posterior import Posterior

    fasta, tree, _ = kappa_problem
    aln = read_alignment(fasta)
    topology = read_topologies(tree)[0][0]
    seen = []

    def estimate(mp, rng):
        seen.append(mp.free)
        return run("glis", Posterior(aln, topology, mp), rng, samples=20_000)

    out = BF.compare_models(["JC69", "K80"], estimate, ["brlens=exp:10"], seed=3)
    assert seen == [[], ["kappa"]]
    assert [(r["tree"], r["model"], r["integrated"]) for r in out["rows"]] == [
        ("total", "JC69", ""),
        ("total", "K80", "kappa"),
    ]
    (pair,) = out["pairs"]
    z_jc = exact_log_ml(KAPPA_EXAMPLE, exponential_log_prior(10.0))
    z_k80 = exact_log_ml_with_parameter(
        KAPPA_EXAMPLE, "K80", exponential_log_prior(10.0), lambda k: -2.0 * np.log1p(k),
        (-14.0, 9.0), 60, 64,
    )  # fmt: skip
    assert abs(pair["log_bf"] - (z_jc - z_k80)) < 4 * pair["se"] + 0.01
    # the priors reach the callable: kappa fixed by a prior is not integrated
    seen.clear()
    BF.compare_models(["JC69", "K80"], estimate, ["kappa=fixed:4"], seed=3)
    assert seen == [[], []]
    with pytest.raises(InputError, match="none of the models"):
        BF.compare_models(["JC69", "K80"], estimate, ["shape=exp:1"])
