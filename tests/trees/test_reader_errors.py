"""Bad tree files: one line naming the file, line and column, exit status 2, nothing
written, whatever command reads them and however the file is read (chunks, compression)."""

from __future__ import annotations

import gzip
import re

import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.errors import InputError
from phylo.trees import read_trees
from phylo.trees.reader import ReadState, read_file

from ..conftest import DATA

GOOD = (DATA / "example.run1.t").read_text()


def damaged(text: str, line: int, old: str, new: str) -> str:
    """``text`` with the first ``old`` of line ``line`` (1-based) replaced by ``new``."""
    lines = text.split("\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "\n".join(lines)


def bad_cases():
    """(name, text, message, line, column) of damaged files."""
    lines = GOOD.split("\n")
    deep = next(i for i in range(1500, len(lines)) if lines[i].lstrip().startswith("tree")) + 1
    col = lines[deep - 1].index(":") + 2
    return [
        ("length.t", damaged(GOOD, deep, ":", ":x"), "branch length", deep, col),
        ("taxon.t", damaged(GOOD, deep, "((", "((99:1,"), "unknown taxon '99'", deep, None),
        (
            "paren.t",
            damaged(GOOD, deep, ");", "));"),
            "unbalanced parentheses: ')' without a matching '('",
            deep,
            len(lines[deep - 1]),  # the second of '));
        ),
        ("tail.t", GOOD.rstrip("\n")[:-20] + "\n", "truncated", len(lines) - 2, None),
        (
            "command.t",
            damaged(GOOD, deep, "tree", "trea"),
            "expected a 'tree' statement",
            deep,
            4,
        ),
    ]


@pytest.mark.parametrize("case", bad_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize("how", ["plain", "gzip", "small chunks"])
def test_errors_are_located_the_same_however_the_file_is_read(tmp_path, case, how):
    name, text, message, line, column = case
    p = tmp_path / (name + (".gz" if how == "gzip" else ""))
    if how == "gzip":
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    with pytest.raises(InputError) as err:
        if how == "small chunks":
            read_file(str(p), ReadState(rooted=False), chunk_size=1000)
        else:
            read_trees(str(p))
    e = err.value
    assert message in e.message and e.path == str(p)
    assert e.line == line
    if column is not None:
        assert e.column == column


@pytest.mark.parametrize(
    "command",
    [
        ["summary"],
        ["fit"],
        ["splits"],
        ["tree"],
        ["tree", "--type", "mcc"],
        ["credible"],
        ["diagnose"],
    ],
    ids=lambda c: "-".join(c),
)
def test_every_command_gives_one_line_exit_2_and_writes_nothing(tmp_path, command):
    name, text, message, line, column = bad_cases()[0]
    p = tmp_path / name
    p.write_text(text)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, [*command, str(p), "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert re.match(rf"error: {re.escape(str(p))}:{line}:{column}: .*{message}", err[0])
    assert not out.exists()
    assert r.stdout == ""


def test_bad_input_from_standard_input(tmp_path):
    name, text, message, line, column = bad_cases()[0]
    r = CliRunner().invoke(main, ["splits", "-"], input=text, catch_exceptions=False)
    assert r.exit_code == 2
    assert re.match(rf"error: <stdin>:{line}:{column}: .*{message}", r.stderr)


def test_notes_go_to_standard_error(tmp_path):
    p = tmp_path / "boot.nwk"
    p.write_text("((A:1,B:1):1,C:1,D:1);\n((A:1,C:1):1,B:1,D:1);\n")
    out = tmp_path / "splits.tsv"
    r = CliRunner().invoke(main, ["splits", str(p), "-o", str(out), "--format", "tsv"])
    assert r.exit_code == 0
    assert "note: " in r.stderr and "no burn-in by default" in r.stderr
    assert "trees\t" in out.read_text() or "\t2\t" in out.read_text()
    r = CliRunner().invoke(main, ["splits", str(p), "-o", str(out), "-q"])
    assert r.exit_code == 0 and "note:" not in r.stderr


def test_extant_only_from_the_command_line(tmp_path):
    src = DATA.parent / "tests" / "data" / "revbayes" / "bears_FBD_all.trees"
    r = CliRunner().invoke(
        main, ["summary", str(src), "--extant-only", "--rooted", "--format", "json", "-q"]
    )
    assert r.exit_code == 0, r.output
    import json

    doc = json.loads(r.stdout)
    assert len(doc["taxa"]) == 8 and doc["provenance"]["parameters"]["extant_only"]
