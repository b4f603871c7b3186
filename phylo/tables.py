"""The one table format every command writes: tab-separated values with a provenance header.

Every table:

- starts with ``#`` lines: the provenance of :func:`phylo.provenance.record` (software and
  command, date, library versions and CPU, every input with its sha256, the seed, the
  settings), then notes if any;
- has exactly one header row of column names, then one row per record;
- spells a missing value ``NA`` and infinities ``inf`` and ``-inf``;
- writes floats with 15 significant digits, as R's ``write.table`` does: all a double holds
  reliably, and sums such as cumulative probabilities read ``0.14835``, not
  ``0.14834999999999998``;
- holds no tab or newline inside a cell.

So a table loads as it is, with the provenance skipped::

    pandas.read_csv("table.tsv", sep="\\t", comment="#")      # NA is read as missing
    read.delim("table.tsv", comment.char = "#")               # R

(``comment`` cuts a line at any ``#``: a taxon name with ``#`` in it needs
``skiprows`` instead.)  What one command writes, the next reads: :func:`read_table` returns
the columns and rows of any such table, and the tree-reading options accept the Newick
column of ``sbn top`` and ``sbn summary --format tsv``.

Results tables of batch runs (:class:`phylo.execution.ResultStore`) are the same format with
two more kinds of ``#`` lines (``# identity:``, what defines the run) and a last column
``check`` holding a checksum of each row, so that a half-written line is recognised.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InputError

MISSING = "NA"
#: Significant digits of a float in a table.
DIGITS = 15


def format_value(value: Any) -> str:
    """One cell: ``NA`` for ``None`` or NaN, ``inf``/``-inf``, floats to 15 significant
    digits (an integral float keeps a ``.0``), other values as text."""
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isnan(x):
            return MISSING
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        text = f"{x:.{DIGITS}g}"
        if "e" not in text and "." not in text:
            text += ".0"
        return text
    text = str(value)
    if any(c in text for c in "\t\n\r"):
        raise ValueError(f"a table cell may not hold tabs or newlines: {text[:60]!r}")
    return text


def is_missing(text: str | None) -> bool:
    """Whether a cell read back is a missing value (``NA``; older tables wrote ``""``)."""
    return text is None or text in (MISSING, "", "nan", "NaN")


def parse_float(text: str | None) -> float:
    """A cell as a float (NaN when missing)."""
    return math.nan if is_missing(text) else float(text)


def header_lines(
    provenance: Mapping | None = None, notes: Iterable[str] = (), values: Iterable[str] = ()
) -> list[str]:
    """The ``#`` lines at the top of a table: provenance, ``values`` (``key: value`` lines
    summarising the table) and ``notes`` (``# note: ...``)."""
    from .provenance import tsv_header

    lines = tsv_header(dict(provenance)).splitlines() if provenance else []
    lines += [f"# {v}" for v in values]
    lines += [f"# note: {n}" for n in notes]
    return lines


def render(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    provenance: Mapping | None = None,
    notes: Iterable[str] = (),
    values: Iterable[str] = (),
) -> Iterable[str]:
    """The lines of a table (each ending in a newline); see :func:`write_table`."""
    for line in header_lines(provenance, notes, values):
        yield line + "\n"
    columns = list(columns)
    yield "\t".join(columns) + "\n"
    for row in rows:
        if isinstance(row, Mapping):
            cells = [format_value(row.get(c)) for c in columns]
        else:
            cells = [format_value(v) for v in row]
            if len(cells) != len(columns):
                raise ValueError(f"a row has {len(cells)} cells for {len(columns)} columns")
        yield "\t".join(cells) + "\n"


def write_table(
    path: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    provenance: Mapping | None = None,
    notes: Iterable[str] = (),
    values: Iterable[str] = (),
) -> None:
    """Write a table atomically (``"-"`` is standard output).

    Parameters
    ----------
    path
        The file.
    columns
        Column names.
    rows
        Sequences of values in column order, or mappings from column names (absent keys
        are missing values).
    provenance
        A record of :func:`phylo.provenance.record`, written as ``#`` lines.
    notes
        Things the reader should know, as ``# note: ...`` lines.
    values
        Summary values of the table as ``# key: value`` lines.
    """
    from .outputs import atomic_open, refuse_inputs

    if provenance:
        refuse_inputs(path, [item["path"] for item in provenance.get("inputs", [])])
    with atomic_open(path) as fh:
        for line in render(columns, rows, provenance, notes, values):
            fh.write(line)


def read_table(path: str) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """Read a table: ``(# lines, column names, rows as dicts of text)``.

    An :class:`~phylo.errors.InputError` with the line number when a row has the wrong
    number of cells.
    """
    from .trees.files import display_name, read_text

    return parse_table(read_text(path), display_name(path))


def parse_table(text: str, name: str = "<table>"):
    """:func:`read_table` of a table's text."""
    comments: list[str] = []
    columns: list[str] | None = None
    rows: list[dict[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            comments.append(line)
            continue
        if not line.strip():
            continue
        cells = line.split("\t")
        if columns is None:
            columns = cells
            continue
        if len(cells) != len(columns):
            raise InputError(
                f"expected {len(columns)} tab-separated cells, found {len(cells)}", name, lineno
            )
        rows.append(dict(zip(columns, cells)))
    if columns is None:
        raise InputError("not a table (no header row)", name)
    return comments, columns, rows
