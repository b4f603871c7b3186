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
