"""Writing annotated summary trees: NEXUS with a translate block, or Newick.

Node attributes are written as TreeAnnotator writes them, in a comment after the node's
label or closing parenthesis and before its branch length, names in alphabetical order::

    (A[&length=0.1,length_95%_HPD={0.05,0.2}]:0.1, ...)[&posterior=0.95,...]:0.02

Numbers are the shortest decimal that reads back as the same double; an interval is
``{lower,upper}``.  FigTree, R's ``treeio::read.beast`` and ``ape::read.nexus``, and dendropy
read these files.  A NEXUS file starts with a comment holding the provenance, has a taxa
block, and a trees block whose translate table numbers the taxa from 1 in their order;
attributes of a whole tree (the probability of a MAP tree) are written as a comment
``[&probability=...,log_probability=...]`` just before the tree's Newick string.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .taxa import quote


def format_number(x: float) -> str:
    """Shortest round-trip text of a float (``repr``); integral values keep ``.0``."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def _node_comment(tree, v: int) -> str:
    items = []
    for name in sorted(tree.annotations):
        col = tree.annotations[name]
        value = col[v]
        if np.ndim(value) == 0:
            if value != value:
                continue
            items.append(f"{name}={format_number(value)}")
        else:
            if np.isnan(value).any():
                continue
            items.append(f"{name}={{{format_number(value[0])},{format_number(value[1])}}}")
    return "[&" + ",".join(items) + "]" if items else ""


def tree_comment(attributes: dict) -> str:
    """``[&key=value,...]`` for the tree-level attributes (empty when there are none)."""
    if not attributes:
        return ""
    items = [
        f"{k}={format_number(v) if isinstance(v, (float, int)) else v}"
        for k, v in attributes.items()
    ]
    return "[&" + ",".join(items) + "]"


def newick_string(tree, annotations: bool = True, names: Sequence[str] | None = None) -> str:
    """The Newick string of a :class:`~phylo.trees.consensus.SummaryTree` (ending in ``;``).

    ``names`` replaces the taxon labels (e.g. translate-table numbers).
    """
    labels = [quote(x) for x in (names if names is not None else tree.taxa.names)]
    children = tree.children()
    n = tree.n_taxa
    root = tree.n_nodes - 1
    # children in order of their smallest taxon, as the canonical trees are written
    first = np.array([min(_leaf_of(tree, v)) for v in range(tree.n_nodes)])
    out: list[str] = []
    stack: list[tuple[int, int]] = [(root, 0)]
    while stack:
        v, state = stack.pop()
        if v < n:
            out.append(labels[v])
        else:
            kids = sorted(children[v], key=lambda c: first[c])
            if state < len(kids):
                out.append("(" if state == 0 else ",")
                stack.append((v, state + 1))
                stack.append((kids[state], 0))
                continue
            out.append(")")
        if annotations:
            out.append(_node_comment(tree, v))
        length = tree.lengths[v]
        if v != root and length == length:
            out.append(":" + format_number(length))
    return "".join(out) + ";"


def _leaf_of(tree, v: int) -> list[int]:
    from .bitsets import to_indices

    return to_indices(tree.clades[v])[:1]


def _comment_text(text: str) -> str:
    # a NEXUS comment cannot hold square brackets
    return text.replace("[", "(").replace("]", ")")


def nexus_text(trees: Iterable, provenance: str | None = None, annotations: bool = True) -> str:
    """A NEXUS document with the trees (all on the same taxa)."""
    trees = list(trees)
    if not trees:
        raise ValueError("no trees to write")
    taxa = trees[0].taxa
    lines = ["#NEXUS"]
    if provenance:
        lines.append("[" + _comment_text(provenance.rstrip("\n")) + "]")
    lines.append("begin taxa;")
    lines.append(f"\tdimensions ntax={len(taxa)};")
    lines.append("\ttaxlabels")
    for name in taxa.names:
        lines.append("\t\t" + quote(name))
    lines.append("\t\t;")
    lines.append("end;")
    lines.append("begin trees;")
    lines.append("\ttranslate")
    for i, name in enumerate(taxa.names, 1):
        sep = "," if i < len(taxa) else ""
        lines.append(f"\t\t{i} {quote(name)}{sep}")
    lines.append("\t\t;")
    numbers = [str(i) for i in range(1, len(taxa) + 1)]
    for t in trees:
        head = f"\ttree {quote(t.name)} = {'[&R]' if t.rooted else '[&U]'} "
        comment = tree_comment(t.attributes)
        body = newick_string(t, annotations=annotations, names=numbers)
        lines.append(head + (comment + " " if comment else "") + body)
    lines.append("end;")
    return "\n".join(lines) + "\n"


def write_trees(
    path: str,
    trees: Iterable,
    fmt: str = "nexus",
    provenance: str | None = None,
    annotations: bool = True,
) -> None:
    """Write summary trees atomically (``"-"`` is standard output) as ``"nexus"`` or
    ``"newick"`` (one tree a line, tree attributes as a leading comment)."""
    from ..outputs import atomic_open

    trees = list(trees)
    if fmt == "nexus":
        text = nexus_text(trees, provenance, annotations)
    elif fmt == "newick":
        rows = []
        for t in trees:
            comment = tree_comment(t.attributes)
            rows.append((comment + " " if comment else "") + newick_string(t, annotations))
        text = "\n".join(rows) + "\n"
    else:
        raise ValueError(f"unknown tree format {fmt!r}")
    with atomic_open(path) as fh:
        fh.write(text)
