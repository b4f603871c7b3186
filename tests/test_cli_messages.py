"""One line and exit status 2 for what a user gets wrong, in both tools."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from phylo.cli.marglik import main as marglik
from phylo.cli.sbn import main as sbn

from .conftest import DATA

NEX = str(DATA / "example.nex")
TRUE = str(DATA / "example_true.nwk")


def one_line_error(result, text):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines
    assert "Traceback" not in result.output and "Usage:" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["loglik", "{dir}", TRUE],
        ["loglik", NEX, "{dir}"],
        ["estimate", NEX, "{dir}", "-m", "gl"],
        ["compare", "{dir}", "--trees", TRUE],
        ["compare", NEX, "--trees", "{dir}"],
    ],
)
def test_a_directory_given_to_marglik_is_one_line(tmp_path, args):
    """click's usage error once printed three lines."""
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    one_line_error(CliRunner().invoke(marglik, args), "is a directory")


def test_file_names_with_pattern_characters_are_taken_literally(tmp_path):
    """'ref[1].trprobs' once silently read 'ref1.trprobs'."""
    literal = tmp_path / "ref[1].trprobs"
    decoy = tmp_path / "ref1.trprobs"
    shutil.copy(DATA / "example.trprobs", literal)
    decoy.write_text("not a tree file\n")
    run = str(DATA / "example.run1.t")
    r = CliRunner().invoke(sbn, ["compare", run, "-r", str(literal), "-m", "srf", "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(sbn, ["compare", run, "-r", str(tmp_path / "ref[3].trprobs"), "-q"])
    one_line_error(r, "no file matches")


def test_quoted_patterns_are_expanded_by_every_tree_reading_command(tmp_path):
    """``sbn kl model -r 'golden/rep_*/DS1.trprobs'`` (as the README writes it) once failed
    with 'no such file': only some commands expanded quoted patterns.  A pattern gives the
    same numbers as the files it matches, listed; one that matches nothing is one line."""
    import json

    for i in (1, 2):
        shutil.copy(DATA / f"example.run{i}.t", tmp_path / f"run{i}.t")
    model = tmp_path / "m.json"
    runs = [str(tmp_path / "run1.t"), str(tmp_path / "run2.t")]
    pattern = str(tmp_path / "run*.t")
    assert CliRunner().invoke(sbn, ["fit", *runs, "-o", str(model), "-q"]).exit_code == 0
    for cmd in (["kl", str(model), "-r"], ["summary", "--format", "json"], ["prob", str(model)]):
        listed = CliRunner().invoke(sbn, [*cmd, *runs, "-q"])
        globbed = CliRunner().invoke(sbn, [*cmd, pattern, "-q"])
        assert listed.exit_code == 0 and globbed.exit_code == 0, (cmd, globbed.output)
        if cmd[0] == "summary":  # the provenance differs in the paths only
            assert json.loads(listed.stdout)["runs"] == json.loads(globbed.stdout)["runs"]
        else:
            body = [ln for ln in listed.stdout.splitlines() if not ln.startswith("#")]
            assert body and body == [
                ln for ln in globbed.stdout.splitlines() if not ln.startswith("#")
            ]
    r = CliRunner().invoke(sbn, ["kl", str(model), "-r", str(tmp_path / "none*.t"), "-q"])
    one_line_error(r, "no file matches")
    r = CliRunner().invoke(marglik, ["total", NEX, "--trees", str(tmp_path / "none*.t"), "-q"])
    one_line_error(r, "no file matches")


def test_zero_and_negative_starting_lengths_are_replaced_with_a_note_naming_file_and_tree(
    tmp_path,
):
    # an ML-style tree with a zero and a negative length, second in the file
    import re

    true = (DATA / "example_true.nwk").read_text().strip()
    lengths = iter([":0", ":-0.01"])
    bad = re.sub(r":[0-9.eE-]+", lambda m: next(lengths, m.group(0)), true)
    other = true.replace("T02", "TX").replace("T03", "T02").replace("TX", "T03")
    trees = tmp_path / "ml trees.nwk"
    trees.write_text(other + "\n" + bad + "\n")
    out = tmp_path / "est.tsv"
    args = ["estimate", str(DATA / "example.nex"), str(trees), "-m", "gl", "--seed", "1"]
    r = CliRunner().invoke(marglik, [*args, "-o", str(out)])
    assert r.exit_code == 0, r.output
    note = f"note: {trees}: tree 2: 2 starting branch length(s)"
    assert note in r.output and "tree 1:" not in r.output
    table = out.read_text()
    assert note[len("note: ") :] in table
    rows = [line.split("\t") for line in table.splitlines() if not line.startswith("#")]
    assert rows[2][-1].endswith("start_replaced=2") or "start_replaced=2;" in rows[2][-1]
    assert "start_replaced" not in rows[1][-1]
