"""Topologies given in any form, as canonical parent arrays in a model's taxon order.

A fitted distribution numbers its taxa once and for all; trees to score may come as a
:class:`~phylo.trees.TreeSample` (from files whose taxa are in another order), as
:class:`~phylo.trees.Tree` objects, as Newick strings or as parent arrays.  This module turns
each of them into ``(T, N)`` canonical parent arrays on the model's taxa (with
:mod:`phylo.trees.topology`, which owns the canonical form), and reads tree files for a model
with a clear error when the taxa differ.
Used by the tree distributions of Zhang & Matsen (NeurIPS 2018) implemented in
:mod:`phylo.sbn`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..trees import Taxa, Tree, TreeSample, parse_newick, read_trees
from ..trees.taxa import check_same_taxa
from ..trees.topology import permutation, relabel


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
        perm = permutation(trees.taxa, taxa, _runs(trees), taxa.source or "the model")
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
        perm = permutation(
            tree.taxa, taxa, tree.taxa.source or "the tree", taxa.source or "the model"
        )
        row = tree.parent if perm is None else relabel(tree.parent, perm, rooted)
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
    except InputError as exc:
        error = exc
    # find out whether the taxa differ, and say so by name
    try:
        plain = read_trees(paths, burnin=burnin, thin=thin, rooted=rooted)
    except InputError:
        raise error from None
    check_same_taxa(plain.taxa, taxa, _runs(plain), taxa.source or "the model")
    raise error


def _runs(sample: TreeSample) -> str:
    """The files of a sample, for messages."""
    paths = [r.path for r in sample.runs]
    return ", ".join(paths) if paths else "the trees"
