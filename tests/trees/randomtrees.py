"""Random trees for tests, built and written independently of phylo's own writer."""

from __future__ import annotations

import numpy as np


def random_rooted(rng: np.random.Generator, names):
    """Random rooted binary tree as nested tuples (leaf = name) with random lengths."""
    nodes = [(name, float(rng.exponential(0.1))) for name in names]
    while len(nodes) > 1:
        i, j = sorted(rng.choice(len(nodes), size=2, replace=False))
        b = nodes.pop(j)
        a = nodes.pop(i)
        nodes.append(((a, b), float(rng.exponential(0.1))))
    return nodes[0]


def leafset(node):
    sub, _ = node
    if isinstance(sub, str):
        return frozenset([sub])
    return leafset(sub[0]) | leafset(sub[1])


def clades(node, out=None):
    """All clades (frozensets of names) of a nested-tuple tree, leaves included."""
    if out is None:
        out = []
    sub, _ = node
    if not isinstance(sub, str):
        clades(sub[0], out)
        clades(sub[1], out)
    out.append(leafset(node))
    return out


def unrooted_splits(node, names):
    """Nontrivial splits of the unrooted tree, each as the side without names[0]."""
    everything = frozenset(names)
    out = set()
    for c in clades(node):
        side = c if names[0] not in c else everything - c
        if 1 < len(side) < len(names) - 1:
            out.add(side)
    return out


def quote_name(name: str) -> str:
    if any(ch in name for ch in " ()[]':;,\t") or name == "":
        return "'" + name.replace("'", "''") + "'"
    return name


def to_newick(node, rng=None, lengths=True, root_length=False):
    """Newick text; with ``rng``, children are written in random order."""
    sub, length = node
    if isinstance(sub, str):
        text = quote_name(sub)
    else:
        a, b = sub
        if rng is not None and rng.random() < 0.5:
            a, b = b, a
        text = "(" + to_newick(a, rng, lengths, True) + "," + to_newick(b, rng, lengths, True) + ")"
    if lengths and root_length:
        text += f":{length!r}"
    return text
