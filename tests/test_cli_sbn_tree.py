"""The `sbn tree`, `sbn splits`, `sbn credible` and `sbn prob --credible-level` commands:
outputs readable by other programs, numbers equal to the library's and MrBayes's, and one
clear line with exit status 2 on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.tables import read_table
from phylo.trees import read_trees, split_table

from .conftest import DATA, ROOT

RUN1 = str(DATA / "example.run1.t")
RUN2 = str(DATA / "example.run2.t")
TRPROBS = str(DATA / "example.trprobs")
BEAST = str(ROOT / "tests" / "data" / "beast2" / "small.trees.gz")


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line_error(r, *words):
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_nexus_tree_has_translate_block_and_annotations(tmp_path):
    out = tmp_path / "mcc.tre"
    r = run("tree", RUN1, RUN2, "--type", "mcc", "-o", str(out), "-q")
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith("#NEXUS\n[")
    assert "\ttranslate\n\t\t1 T01,\n" in text and "\t\t20 T20\n\t\t;\n" in text
    assert "sha256:" in text.split("begin taxa")[0]  # provenance comment
    tree_line = [x for x in text.splitlines() if x.strip().startswith("tree ")][0]
    assert tree_line.strip().startswith("tree MCC = [&U] [&log_clade_credibility=")
    assert "posterior=" in tree_line and "length_95%_HPD={" in tree_line
    dendropy = pytest.importorskip("dendropy")
    t = dendropy.Tree.get(path=str(out), schema="nexus", extract_comment_metadata=True)
    assert len(t.leaf_nodes()) == 20
    assert {x.taxon.label for x in t.leaf_nodes()} == {f"T{i:02d}" for i in range(1, 21)}


def test_newick_tree_and_map_probability(tmp_path):
    r = run("tree", RUN1, RUN2, "--type", "map", "--format", "newick", "-q")
    assert r.exit_code == 0, r.output
    line = r.stdout.strip()
    assert line.startswith("[&probability=") and line.endswith(";")
    p = float(line.split("probability=")[1].split(",")[0])
    # the model's most probable topology: 'sbn top -k 1' on the same fitted model
    model = tmp_path / "m.json"
    assert run("fit", RUN1, RUN2, "-o", str(model), "-q").exit_code == 0
    r2 = run("top", str(model), "-k", "1", "-o", str(tmp_path / "top.tsv"))
    assert r2.exit_code == 0
    _, _, rows = read_table(str(tmp_path / "top.tsv"))
    assert p == pytest.approx(float(rows[0]["probability"]), rel=1e-12)
    r3 = run("tree", RUN1, RUN2, "--type", "map", "--model", str(model), "--format", "newick")
    assert r3.stdout.strip().split("] ", 1)[1] == line.split("] ", 1)[1]


def test_splits_tsv_and_json_equal_the_library():
    sample = read_trees([RUN1, RUN2], lengths=True)
    table = split_table(sample, min_freq=0.1, values=True)
    r = run("splits", RUN1, RUN2, "--format", "tsv", "-q")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert any(x.startswith("# input: ") for x in lines)
    header = [x for x in lines if not x.startswith("#")][0].split("\t")
    assert header[:9] == [
        "id",
        "split",
        "taxa",
        "size",
        "trees",
        "frequency",
        "freq_run1",
        "freq_run2",
        "sd",
    ]
    rows = [x.split("\t") for x in lines if not x.startswith("#")][1:]
    assert len(rows) == len(table) == 31  # MrBayes's 31 informative splits of the example
    col = {c: i for i, c in enumerate(header)}
    for i, row in enumerate(rows):
        assert float(row[col["frequency"]]) == pytest.approx(table.pooled[i], rel=1e-14)
        assert float(row[col["length_mean"]]) == pytest.approx(table.lengths.mean[i], rel=1e-14)
        assert float(row[col["length_var"]]) == pytest.approx(table.lengths.var[i], rel=1e-14)
        assert row[col["split"]].count("*") == int(row[col["size"]])
    r = run("splits", RUN1, RUN2, "--format", "json", "--trivial", "-q")
    data = json.loads(r.stdout)
    assert data["provenance"]["inputs"][0]["path"] == RUN1
    assert len(data["splits"]) == 31 + 20  # and the 20 terminal branches


def test_rooted_splits_have_heights():
    r = run("splits", BEAST, "--rooted", "--burnin", "0.1", "--format", "tsv", "-q")
    assert r.exit_code == 0, r.output
    header = [x for x in r.stdout.splitlines() if not x.startswith("#")][0].split("\t")
    assert "height_mean" in header and "height_hpd_upper" in header


def test_credible_sets_from_samples_match_mrbayes_and_from_a_model(tmp_path):
    # MrBayes sumt on these runs: 50% credible set 154 trees, 95% 495
    for level, size in ((0.5, 154), (0.95, 495)):
        r = run("credible", RUN1, RUN2, "--level", str(level))
        assert r.exit_code == 0, r.output
        rows = [x for x in r.stdout.splitlines() if not x.startswith("#")][1:]
        assert len(rows) == size
    model = tmp_path / "m.json"
    assert run("fit", RUN1, RUN2, "-o", str(model), "-q").exit_code == 0
    out = tmp_path / "cs.tsv"
    r = run("credible", str(model), "--level", "0.5", "-o", str(out))
    assert r.exit_code == 0
    _, cols, rows = read_table(str(out))
    assert cols == ["rank", "probability", "cumulative", "log_prob", "newick"]
    cum = np.array([float(x["cumulative"]) for x in rows])
    assert cum[-1] >= 0.5 > cum[-2]


def test_prob_with_credible_level(tmp_path):
    model = tmp_path / "m.json"
    assert run("fit", RUN1, RUN2, "-o", str(model), "-q").exit_code == 0
    out = tmp_path / "p.tsv"
    r = run("prob", str(model), TRPROBS, "--unique", "--credible-level", "-o", str(out), "-q")
    assert r.exit_code == 0, r.output
    _, cols, rows = read_table(str(out))
    assert cols == [
        "topology",
        "frequency",
        "log_prob",
        "credible_level",
        "credible_exact",
        "newick",
    ]
    levels = [(float(x["log_prob"]), float(x["credible_level"])) for x in rows]
    # more probable topologies have lower credible levels; the most probable has its own mass
    levels.sort(key=lambda t: -t[0])
    assert levels[0][1] == pytest.approx(np.exp(levels[0][0]), rel=1e-9)
    assert all(a[1] <= b[1] + 1e-12 for a, b in zip(levels, levels[1:]))
    assert all(x["credible_exact"] == "true" for x in rows)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    one_line_error(run("tree", RUN1, "--outgroup", "Nope", "-q"), "outgroup taxon 'Nope'")
    one_line_error(run("tree", RUN1, "--heights", "mean", "-q"), "--heights needs rooted trees")
    one_line_error(
        run("tree", TRPROBS, "--type", "mcc", "-q"), "without branch lengths", "example.trprobs"
    )
    one_line_error(run("tree", BEAST, "--rooted", "--outgroup", "T01", "-q"), "--outgroup")
