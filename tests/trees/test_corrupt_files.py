"""Random corruptions of whole tree files raise InputError and nothing else."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phylo.errors import InputError
from phylo.trees import read_trees

from ..conftest import DATA

LINES = (DATA / "example.run1.t").read_text().splitlines()
SMALL = "\n".join(LINES[:33] + ["end;"]) + "\n"  # header, translate table, 5 trees


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_corrupted_nexus_files(data):
    chars = list(SMALL)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate", "cut"]))
        pos = data.draw(st.integers(0, max(0, len(chars) - 1)))
        junk = data.draw(
            st.sampled_from(list("(),:;[]'=_ .e-1&\"") + ["\n", "tree", "end;", "begin", "ü"])
        )
        if kind == "delete" and chars:
            del chars[pos]
        elif kind == "insert":
            chars.insert(pos, junk)
        elif kind == "replace" and chars:
            chars[pos] = junk
        elif kind == "truncate":
            chars = chars[:pos]
        else:
            del chars[pos : pos + data.draw(st.integers(1, 200))]
    fd, path = tempfile.mkstemp(suffix=".t")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(chars))
        try:
            read_trees(path, burnin=0, lengths=data.draw(st.booleans()))
        except InputError as exc:
            assert exc.path == path
    finally:
        os.unlink(path)


def test_corrupt_deflate_data_is_one_clear_error(tmp_path):
    """zlib.error is not an OSError: it once escaped as a traceback."""
    import gzip

    from phylo.errors import InputError
    from phylo.trees import read_trees

    from ..conftest import DATA

    data = bytearray(gzip.compress((DATA / "example.run1.t").read_bytes()))
    for i in range(200, 260):
        data[i] ^= 0x5A
    path = tmp_path / "run.t.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt or truncated compressed data") as err:
        read_trees(str(path))
    assert err.value.path == str(path)


@pytest.mark.parametrize("weight", ["1/0", "0/0", "-1", "inf", "nan", "abc"])
def test_a_bad_weight_names_its_line(tmp_path, weight):
    from phylo.errors import InputError
    from phylo.trees import read_trees

    path = tmp_path / "w.trprobs"
    path.write_text(
        "#NEXUS\nbegin trees;\n"
        "tree a = [&W 0.5] ((A,B),(C,D),E);\n"
        f"tree b = [&W {weight}] ((A,C),(B,D),E);\nend;\n"
    )
    with pytest.raises(InputError, match="bad tree weight") as err:
        read_trees(str(path))
    assert err.value.line == 4
