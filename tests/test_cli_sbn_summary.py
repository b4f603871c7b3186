"""The `sbn summary` command: outputs, and one clear line with exit status 2 on bad input."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main

from .conftest import DATA

RUN1 = str(DATA / "example.run1.t")
RUN2 = str(DATA / "example.run2.t")


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_text_summary():
    r = run("summary", RUN1, RUN2, "--top", "3")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "Taxa (20)" in out
    assert re.search(r"1\s+\S*example.run1.t\s+2001\s+500\s+1\s+1501", out)
    assert "Unique topologies: 645 in 3002 trees" in out
    # MrBayes sumt on the same files: credible sets 154/381/495/615, ASDSF 0.006124
    assert "50%: 154, 90%: 381, 95%: 495, 99%: 615" in out
    assert "31 splits): 0.006124; maximum 0.024497" in out
    assert len([line for line in out.splitlines() if re.match(r"\s+\d\s+0\.\d{5}", line)]) == 3


def test_tsv_and_json():
    r = run("summary", RUN1, RUN2, "--format", "tsv", "--top", "5", "--burnin", "0.5")
    assert r.exit_code == 0
    lines = [x for x in r.stdout.splitlines() if not x.startswith("#")]
    assert lines[0].split("\t") == ["rank", "frequency", "cumulative", "run1", "run2", "newick"]
    rows = [x.split("\t") for x in lines[1:]]
    assert len(rows) == 5
    assert all(float(a[1]) >= float(b[1]) for a, b in zip(rows, rows[1:]))
    assert "# run 1: " in r.stdout and "burnin=1000" in r.stdout
    r = run("summary", RUN1, RUN2, "--format", "json", "--thin", "2")
    doc = json.loads(r.stdout)
    assert doc["n_topologies"] > 0 and len(doc["runs"]) == 2
    assert doc["runs"][0]["used"] == 751  # trees 500, 502, ..., 2000
    assert doc["provenance"]["inputs"][0]["sha256"]


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "splits.png"
    r = run("summary", RUN1, RUN2, "--plot", str(out), "--top", "1")
    assert r.exit_code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def bad_files(tmp_path):
    good = (DATA / "example.run1.t").read_text()
    cases = {}

    def add(name, text):
        p = tmp_path / name
        p.write_text(text)
        cases[name] = str(p)

    add("truncated.t", good[: len(good) // 3])
    add("unbalanced.nwk", "((A,B),(C,D);\n")
    add("unknown.nwk", "((A,B),(C,D));\n((A,B),(C,E));\n")
    add("dup_in_tree.nwk", "((A,B),(C,A));\n")
    add(
        "dup_translate.t",
        "#NEXUS\nbegin trees;\n translate 1 A, 2 B, 3 A, 4 D;\n tree t = ((1,2),(3,4));\nend;\n",
    )
    add("nonbinary.nwk", "((A,B),(C,D));\n((A,B,C),D);\n")
    add("empty.t", "")
    other = good.replace(" T05,", " T99,")
    add("other_translate.t", other)
    d = tmp_path / "a_directory"
    d.mkdir()
    cases["a_directory"] = str(d)
    return cases


@pytest.mark.parametrize(
    "case, message, line",
    [
        ("truncated.t", "truncated", True),
        ("unbalanced.nwk", "unbalanced parentheses", True),
        ("unknown.nwk", "unknown taxon 'E'", True),
        ("dup_in_tree.nwk", "appears twice", True),
        ("dup_translate.t", "appears twice in the translate table", True),
        ("nonbinary.nwk", "not binary", True),
        ("empty.t", "file is empty", True),
        ("a_directory", "is a directory", False),
    ],
)
def test_bad_input_gives_one_line_and_status_2(tmp_path, case, message, line):
    files = bad_files(tmp_path)
    r = run("summary", files[case])
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith(f"error: {files[case]}")
    assert message in err[0]
    if line:
        assert re.match(rf"error: {re.escape(files[case])}:\d+(:\d+)?: ", err[0])
    assert r.stdout == ""


def test_translate_tables_differing_between_runs(tmp_path):
    files = bad_files(tmp_path)
    r = run("summary", RUN1, files["other_translate.t"])
    assert r.exit_code == 2
    assert re.match(
        rf"error: {re.escape(files['other_translate.t'])}:\d+: taxa of the "
        r"translate table differ .*'T99'",
        r.stderr,
    )


def test_output_file_is_not_clobbered_on_error(tmp_path):
    files = bad_files(tmp_path)
    out = tmp_path / "summary.txt"
    out.write_text("previous result\n")
    r = run("summary", files["truncated.t"], "-o", str(out))
    assert r.exit_code == 2
    assert out.read_text() == "previous result\n"
