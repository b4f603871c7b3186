"""Trees listed one per row of a table: credible sets and the tables ``phylo`` writes.

Two kinds of file hold one tree per line beside numbers:

- a *credible set* as in the "19 dubious ways" data (Fourment et al. 2020):
  ``frequency<TAB>newick`` lines, no header;
- a table of :mod:`phylo.tables` with a ``newick`` column (``sbn top``, ``sbn sample
  --log-prob``, ``sbn summary --format tsv``), whose ``frequency`` or ``probability`` column,
  when present, gives each tree's weight.

:func:`read_tree_list` reads either, so that what one command writes the next one reads.
Other tree files (Newick, NEXUS) are read by :func:`phylo.trees.read_trees`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .files import display_name, read_text
from .taxa import Taxa
from .tree import Tree, parse_newick

#: Columns that give a listed tree's weight, in order of preference.
WEIGHT_COLUMNS = ("frequency", "probability")


def _first_row(lines: list[str]) -> str:
    return next((ln for ln in lines if ln.strip() and not ln.startswith("#")), "")


def list_kind(lines: list[str]) -> str | None:
    """``"credible-set"``, ``"table"`` or ``None`` for the lines of a file."""
    first = _first_row(lines)
    head, tab, _ = first.partition("\t")
    if not tab:
        return None
    if "newick" in first.split("\t"):
        return "table"
    try:
        float(head)
    except ValueError:
        return None
    return "credible-set"


def read_tree_list(path: str, taxa=None, rooted: bool = False):
    """The trees of a credible set or a table, in file order, and their weights.

    Returns ``(trees, weights)`` (weights ``None`` when a table has no weight column), or
    ``None`` when the file is neither kind.  Every tree is parsed on one taxon order: the
    given ``taxa``, else the first tree's.  Branch lengths are kept when the Newick strings
    carry them.
    """
    text = read_text(path)
    lines = text.splitlines()
    kind = list_kind(lines)
    if kind is None:
        return None
    name = display_name(path)
    trees, weights = [], []
    columns = None
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if kind == "table" and columns is None:
            columns = cells
            col_tree = columns.index("newick")
            col_weight = next((columns.index(c) for c in WEIGHT_COLUMNS if c in columns), None)
            continue
        if kind == "table":
            if len(cells) != len(columns):
                raise InputError(
                    f"expected {len(columns)} tab-separated cells, found {len(cells)}", name, i
                )
            newick = cells[col_tree]
            weight = cells[col_weight] if col_weight is not None else None
        else:
            weight, newick = line.partition("\t")[::2]
        if weight is not None:
            try:
                w = float(weight)
            except ValueError:
                w = math.nan
            if not w >= 0:
                what = "a frequency" if kind == "credible-set" else f"a {columns[col_weight]}"
                raise InputError(f"expected {what} (a number >= 0), found {weight!r}", name, i)
            weights.append(w)
        tree = parse_newick(newick.strip(), taxa=taxa, rooted=rooted, path=f"{name}:{i}")
        if taxa is None:  # one taxon order for all trees: the first tree's, from this file
            taxa = Taxa(tree.taxa.names, tree.taxa.keys, source=name)
            tree = Tree(taxa, tree.parent, tree.branch_lengths, tree.rooted)
        trees.append(tree)
    if not trees:
        raise InputError("no tree found", name)
    return trees, (np.array(weights) if weights else None)
