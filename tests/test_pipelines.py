"""What one command writes, the next one reads: sbn tables into marglik, tables into pandas."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.marglik import main as marglik
from phylo.cli.sbn import main as sbn
from phylo.tables import read_table

from .conftest import DATA

RUNS = [str(DATA / "example.run1.t"), str(DATA / "example.run2.t")]
ALN = str(DATA / "example.nex")


def ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipe")
    model = str(tmp / "model.json")
    ok(CliRunner().invoke(sbn, ["fit", *RUNS, "-o", model, "-q"]))
    return tmp, model


def test_top_table_feeds_marglik_compare(fitted):
    tmp, model = fitted
    top = str(tmp / "top.tsv")
    ok(CliRunner().invoke(sbn, ["top", model, "-k", "3", "-o", top]))
    _, columns, rows = read_table(top)
    assert columns == ["rank", "probability", "cumulative", "log_prob", "newick"]
    r = ok(
        CliRunner().invoke(
            marglik,
            ["compare", ALN, "--trees", top, "-r", top, "-m", "gl", "--seed", "1", "-q"],
        )
    )
    summary = r.stdout.split("\n\n")[1].splitlines()
    per_tree = [line.split("\t") for line in summary[1:]]
    assert len(per_tree) == 3
    # the reference column is the top table's probabilities, normalised over the 3 trees
    p = np.array([float(row["probability"]) for row in rows])
    assert [float(x[-1]) for x in per_tree] == pytest.approx(p / p.sum(), rel=1e-6)


def test_summary_tsv_is_a_reference_and_sample_table_is_a_tree_list(fitted):
    tmp, model = fitted
    summary = str(tmp / "summary.tsv")
    ok(CliRunner().invoke(sbn, ["summary", *RUNS, "-k", "1000", "--format", "tsv", "-o", summary]))
    draws = str(tmp / "draws.tsv")
    ok(CliRunner().invoke(sbn, ["sample", model, "-n", "6", "--seed", "2", "--log-prob", "-o",
                                draws]))  # fmt: skip
    out = str(tmp / "c.tsv")
    r = CliRunner().invoke(
        marglik,
        ["compare", ALN, "--trees", draws, "-r", summary, "-m", "gl", "--seed", "1", "-o", out,
         "-q"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    from phylo.execution import read_table as read_results

    _, _, drawn = read_table(draws)
    _, _, results = read_results(out)
    assert len(results) == len({row["newick"] for row in drawn})  # one task per topology
    assert "mean_kl" in r.stdout  # the summary's reference came from the summary table


def test_tables_load_in_pandas(fitted):
    pd = pytest.importorskip("pandas")
    tmp, model = fitted
    top = str(tmp / "top5.tsv")
    ok(CliRunner().invoke(sbn, ["top", model, "-k", "5", "-o", top]))
    frame = pd.read_csv(top, sep="\t", comment="#")
    assert list(frame.columns) == ["rank", "probability", "cumulative", "log_prob", "newick"]
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5]
    assert np.allclose(frame["cumulative"], np.cumsum(frame["probability"]), rtol=1e-13)
    assert np.allclose(np.exp(frame["log_prob"]), frame["probability"], rtol=1e-13)
