"""The one table format: cells, header, provenance, reading back."""

from __future__ import annotations

import os

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.provenance import record
from phylo.tables import format_value, parse_table, read_table, write_table


def test_cells():
    assert format_value(None) == "NA"
    assert format_value(float("nan")) == "NA"
    assert format_value(np.float32("nan")) == "NA"
    assert format_value(float("inf")) == "inf" and format_value(-np.inf) == "-inf"
    assert format_value(3) == "3" and format_value(np.int64(-4)) == "-4"
    assert format_value(2.0) == "2.0" and format_value(1e300) == "1e+300"
    assert format_value(True) == "true"
    # sums carry no binary noise: 15 significant digits
    assert 0.1 + 0.2 != 0.3 and format_value(0.1 + 0.2) == "0.3"
    assert format_value(sum([0.04835, 0.1])) == "0.14835"
    # ... and every value reads back within half a unit in the 15th digit (5e-15 relative)
    rng = np.random.default_rng(1)
    for x in np.concatenate([rng.normal(size=200) * 10.0 ** rng.integers(-300, 300, 200)]):
        assert float(format_value(x)) == pytest.approx(x, rel=5e-15, abs=0)
    with pytest.raises(ValueError, match="tabs or newlines"):
        format_value("a\tb")


def test_write_and_read_back(tmp_path):
    path = str(tmp_path / "t.tsv")
    prov = record(inputs=[], seed=11, parameters={"k": 3})
    write_table(path, ["a", "b", "c"], [[1, 0.5, "x"], {"a": 2, "c": "y"}], prov,
                notes=["something to know"], values=["total: 2"])  # fmt: skip
    comments, columns, rows = read_table(path)
    assert columns == ["a", "b", "c"]
    assert rows == [{"a": "1", "b": "0.5", "c": "x"}, {"a": "2", "b": "NA", "c": "y"}]
    assert comments[0].startswith("# phylo ") and "# seed: 11" in comments
    assert "# k: 3" in comments and "# total: 2" in comments
    assert "# note: something to know" in comments
    assert any(c.startswith("# libraries: python ") and "numba" in c for c in comments)
    assert any(c.startswith("# cpu: ") for c in comments)
    text = open(path).read()
    assert text.index("# note:") < text.index("a\tb\tc")  # every # line above the header
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_rows_must_fit_the_header(tmp_path):
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        write_table(str(tmp_path / "x.tsv"), ["a", "b", "c"], [[1, 2]])
    assert not (tmp_path / "x.tsv").exists()  # nothing half-written
    with pytest.raises(InputError, match="expected 2 tab-separated cells, found 3") as err:
        parse_table("# c\na\tb\n1\t2\n1\t2\t3\n", "t.tsv")
    assert err.value.line == 4 and err.value.path == "t.tsv"
    with pytest.raises(InputError, match="no header row"):
        parse_table("# only comments\n")
