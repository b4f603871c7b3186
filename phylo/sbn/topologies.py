"""Topologies given in any form, as canonical parent arrays in a model's taxon order.

A fitted distribution numbers its taxa once and for all; trees to score may come as a
:class:`~phylo.trees.TreeSample` (from files whose taxa are in another order), as
:class:`~phylo.trees.Tree` objects, as Newick strings or as parent arrays.  This module turns
each of them into ``(T, N)`` canonical parent arrays (see :mod:`phylo.trees._kernels`) on the
model's taxa, and reads tree files for a model with a clear error when the taxa differ.
Used by the tree distributions of Zhang & Matsen (NeurIPS 2018) implemented in
:mod:`phylo.sbn`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..trees import Taxa, Tree, TreeSample, parse_newick, read_trees
from . import _kernels as K


def canonical(parents: np.ndarray, n_taxa: int, rooted: bool) -> np.ndarray:
    """Canonical parent arrays of binary trees with leaves ``0..n-1`` (any internal numbering;
    a rooted input read as unrooted has its root suppressed)."""
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    if parents.ndim == 1:
        parents = parents[None, :]
    N = 2 * n_taxa - 1 if rooted else 2 * n_taxa - 2
    out = np.empty((parents.shape[0], N), np.int32)
    if parents.shape[0]:
        K.canonicalise(parents, n_taxa, rooted, out)
    return out


def relabel(parents: np.ndarray, perm: np.ndarray, rooted: bool) -> np.ndarray:
    """Canonical arrays after renaming taxon ``i`` to ``perm[i]``."""
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    n = perm.shape[0]
    moved = parents.copy()
    moved[:, perm] = parents[:, :n]
    return canonical(moved, n, rooted)


def _mismatch(mine: Taxa, other: Taxa, what: str) -> InputError:
    extra = sorted(set(other.keys) - set(mine.keys))
    missing = sorted(set(mine.keys) - set(other.keys))
    parts = []
    if extra:
        parts.append(
            "not in the model: "
            + ", ".join(repr(x) for x in extra[:8])
            + (" ..." if len(extra) > 8 else "")
        )
    if missing:
        parts.append(
            "missing: "
            + ", ".join(repr(x) for x in missing[:8])
            + (" ..." if len(missing) > 8 else "")
        )
    return InputError(
        f"the taxa of {what} differ from the model's {len(mine)} taxa (" + "; ".join(parts) + ")"
    )


def permutation(source: Taxa, target: Taxa, what: str = "the trees") -> np.ndarray | None:
    """``perm[i]`` = index in ``target`` of taxon ``i`` of ``source`` (``None`` when the order
    is the same); an :class:`InputError` naming the taxa when the sets differ."""
    if source == target:
        return None
    if not target.same_set(source):
        raise _mismatch(target, source, what)
    return np.array([target.index_of_key(k) for k in source.keys], np.int64)


def topology_arrays(trees, taxa: Taxa, rooted: bool) -> np.ndarray:
    """``(T, N)`` canonical parent arrays of ``trees`` on ``taxa``.

    ``trees`` may be a :class:`TreeSample` (its unique topologies), a :class:`Tree`, a Newick
    string, a sequence of trees or strings, or an int array of canonical parent arrays
    already on ``taxa``.
    """
    N = 2 * len(taxa) - 1 if rooted else 2 * len(taxa) - 2
    if isinstance(trees, TreeSample):
        if trees.rooted != rooted:
            raise InputError(
                f"the trees are {'rooted' if trees.rooted else 'unrooted'} but "
                f"the model is {'rooted' if rooted else 'unrooted'}"
            )
        perm = permutation(trees.taxa, taxa)
        return trees.parents if perm is None else relabel(trees.parents, perm, rooted)
    if isinstance(trees, np.ndarray):
        arr = np.ascontiguousarray(trees, dtype=np.int32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != N:
            raise InputError(
                f"parent arrays must have {N} nodes for {len(taxa)} "
                f"{'rooted' if rooted else 'unrooted'} taxa"
            )
        return arr
    if isinstance(trees, (Tree, str)):
        trees = [trees]
    rows = []
    for tree in trees:
        if isinstance(tree, str):
            tree = parse_newick(tree, taxa=taxa, rooted=rooted)
        if not isinstance(tree, Tree):
            raise TypeError(f"cannot read a topology from {type(tree).__name__}")
        if tree.rooted != rooted:
            if rooted:
                raise InputError("an unrooted tree cannot be scored by a rooted model")
            tree = tree.unrooted()
        perm = permutation(tree.taxa, taxa, "the tree")
        row = tree.parent if perm is None else relabel(tree.parent[None], perm, rooted)[0]
        rows.append(row)
    if not rows:
        return np.empty((0, N), np.int32)
    return np.ascontiguousarray(np.stack(rows), dtype=np.int32)


def read_for_model(
    paths: str | Sequence[str], taxa: Taxa, rooted: bool, burnin=None, thin: int = 1, progress=None
) -> TreeSample:
    """Read tree files in the taxon order of a model.

    Files whose taxa differ from ``taxa`` give an :class:`InputError` naming the taxa that
    are not in the model and those that are missing.
    """
    try:
        return read_trees(
            paths, burnin=burnin, thin=thin, rooted=rooted, taxa=taxa, progress=progress
        )
    except InputError as first:
        # find out whether the taxa differ, and say so by name
        try:
            plain = read_trees(paths, burnin=burnin, thin=thin, rooted=rooted)
        except InputError:
            raise first from None
        if not plain.taxa.same_set(taxa):
            names = paths if isinstance(paths, str) else ", ".join(str(p) for p in paths)
            raise _mismatch(taxa, plain.taxa, names) from None
        raise
