"""Trees for the likelihood tests, read with the project's Newick parser."""

from __future__ import annotations

from phylo.trees import parse_newick


def parse_tree(text: str, taxa=None):
    """An unrooted tree from Newick text, with taxa in the order ``taxa`` when given."""
    return parse_newick(text, taxa=list(taxa) if taxa is not None else None)


def read_first_tree(path, taxa=None):
    """The first tree of a file with one Newick tree per line."""
    with open(path) as fh:
        for line in fh:
            if "(" in line:
                return parse_tree(line.strip(), taxa)
    raise ValueError(f"no tree in {path}")
