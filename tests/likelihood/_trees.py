"""Trees for the likelihood tests.

Uses ``phylo.trees.parse_newick`` when the tree package provides it; otherwise a small
Newick reader here builds the same canonical arrays (leaves in taxon order, internal nodes
in post-order, unrooted trees rooted next to taxon 0).
"""

from __future__ import annotations

import re

from phylo.likelihood.simulate import tree_from_edges

try:  # the project's tree reader, when present
    from phylo.trees import parse_newick as _parse_newick  # type: ignore
except ImportError:  # pragma: no cover - depends on the branch
    _parse_newick = None


def _tokens(text):
    text = re.sub(r"\[[^\]]*\]", "", text)
    return re.findall(r"'[^']*'|[(),:;]|[^\s(),:;]+", text)


def _fallback(text: str, taxa=None):
    toks = _tokens(text)
    pos = 0
    edges, lengths, names = [], [], []
    counter = [0]
    internal = []

    def node():
        nonlocal pos
        kids = []
        if toks[pos] == "(":
            pos += 1
            while True:
                kids.append(node())
                if toks[pos] == ",":
                    pos += 1
                    continue
                assert toks[pos] == ")"
                pos += 1
                break
        name = None
        if pos < len(toks) and toks[pos] not in ",():;":
            name = toks[pos].strip("'")
            pos += 1
        length = 0.0
        if pos < len(toks) and toks[pos] == ":":
            length = float(toks[pos + 1])
            pos += 2
        if kids:
            label = ("i", len(internal))
            internal.append(label)
        else:
            label = ("t", name)
            names.append(name)
        for k, kl in kids:
            edges.append((label, k))
            lengths.append(kl)
        return label, length

    root, _ = node()
    order = list(taxa) if taxa is not None else names
    ids = {("t", n): i for i, n in enumerate(order)}
    for j, lab in enumerate(internal):
        ids[lab] = len(order) + j
    # suppress a bifurcating root: join its two edges
    root_edges = [k for k, (a, b) in enumerate(edges) if a == root]
    if len(root_edges) == 2:
        (k1, k2) = root_edges
        a, b = edges[k1][1], edges[k2][1]
        t = lengths[k1] + lengths[k2]
        keep = [k for k in range(len(edges)) if k not in root_edges]
        edges = [edges[k] for k in keep] + [(a, b)]
        lengths = [lengths[k] for k in keep] + [t]
    e = [(ids[a], ids[b]) for a, b in edges]
    # internal labels must be contiguous after the leaves
    used = sorted({x for pair in e for x in pair if x >= len(order)})
    remap = {x: len(order) + i for i, x in enumerate(used)}
    e = [(remap.get(a, a), remap.get(b, b)) for a, b in e]
    return tree_from_edges(order, e, lengths)


def parse_tree(text: str, taxa=None):
    """An unrooted tree from Newick text (taxa renumbered to ``taxa`` when given)."""
    if _parse_newick is not None:
        tree = _parse_newick(text)
        if taxa is not None:
            tree = tree.reorder_taxa(list(taxa))
        return tree
    return _fallback(text, taxa)


def read_first_tree(path, taxa=None):
    """The first tree of a file with one Newick tree per line."""
    with open(path) as fh:
        for line in fh:
            if "(" in line:
                return parse_tree(line.strip(), taxa)
    raise ValueError(f"no tree in {path}")
