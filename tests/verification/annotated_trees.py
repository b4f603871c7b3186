"""Reading annotated summary trees (MrBayes, TreeAnnotator, SumTrees, ours) with dendropy.

Each tree becomes a dict from clade to ``(annotations, branch length)``: a clade is a frozenset
of taxon names; for unrooted trees the side of the split without ``first`` (the first taxon),
so that the dict does not depend on where the tree is drawn from.
"""

from __future__ import annotations


def read_annotated(path, rooted: bool, first: str | None = None, schema: str = "nexus"):
    import dendropy

    tree = dendropy.Tree.get(
        path=str(path),
        schema=schema,
        extract_comment_metadata=True,
        preserve_underscores=True,
        rooting="force-rooted" if rooted else "force-unrooted",
    )
    everything = frozenset(t.label for t in tree.taxon_namespace)
    out = {}
    for node in tree.postorder_node_iter():
        names = frozenset(leaf.taxon.label for leaf in node.leaf_iter())
        if node is tree.seed_node and not rooted:
            continue
        if not rooted and first in names:
            names = everything - names
        ann = {a.name: _value(a.value) for a in node.annotations}
        out[names] = (ann, node.edge.length)
    return out


def _value(v):
    if isinstance(v, (list, tuple)):
        return tuple(float(x) for x in v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def informative(clades, n_taxa: int, rooted: bool):
    """The clades of a read tree that are informative splits (or non-trivial clades)."""
    top = n_taxa if rooted else n_taxa - 1
    return {c for c in clades if 1 < len(c) < top}
