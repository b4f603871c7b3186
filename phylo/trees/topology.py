"""Topologies as parent arrays: the canonical form, renaming taxa, and lengths that follow.

Every topology in :mod:`phylo` is stored in one canonical form (see
:mod:`phylo.trees._kernels`): leaves ``0..n-1`` are the taxa in order, internal nodes are
numbered in postorder visiting children by their smallest taxon, and the root is last (for an
unrooted tree, the internal node next to taxon 0).  Equal topologies have equal arrays.

This module turns any binary parent array into that form, with the branch lengths following
their edges:

* :func:`canonical` re-roots and renumbers.  A rooted tree read as unrooted loses its root:
  the two edges at the root become one edge, whose length is the sum of theirs,
  :math:`t_{ab} = t_a + t_b`.
* :func:`relabel` renames taxon ``i`` to ``perm[i]`` and renumbers;
  :func:`permutation` gives ``perm`` between two taxon orders.

In both, an edge is identified by the split it induces, so ``lengths`` follow the splits:
the map *split -> length* of the output equals that of the input (after renaming).

>>> import numpy as np
>>> from phylo.trees.topology import canonical
>>> # ((0,1),2,3) written with the root as node 4 and the cherry as node 5
>>> canonical(np.array([5, 5, 4, 4, -1, 4]), 4, rooted=False).tolist()
[5, 5, 4, 4, 5, -1]
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from .taxa import Taxa, check_same_taxa

_ERRORS = {
    K.E_NOT_TREE: "is not one tree (a parent out of range, a taxon with children, "
    "no root or several, or a cycle)",
    K.E_SINGLE_CHILD: "has a node with a single child",
    K.E_POLYTOMY: "is not binary (a node has more than two children)",
    K.E_ROOT3: "is not rooted (its root has three children) but a rooted tree was asked for",
}


def n_nodes(n_taxa: int, rooted: bool) -> int:
    """Nodes of a binary tree on ``n_taxa`` taxa: ``2n-1`` rooted, ``2n-2`` unrooted."""
    return 2 * n_taxa - 1 if rooted else 2 * n_taxa - 2


def canonical_map(parents: np.ndarray, n_taxa: int, rooted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Canonical parent arrays and the edge map of binary trees.

    Parameters
    ----------
    parents
        ``(M,)`` or ``(T, M)`` parent arrays: nodes ``0..n-1`` are the taxa, nodes
        ``n..M-1`` internal nodes in any order, the root has parent ``-1`` (two children; an
        unrooted tree may also have three).  ``M = 2n-1`` (a bifurcating root) or ``2n-2``
        (a trifurcating one, ``rooted=False`` only).
    n_taxa
        ``n``.
    rooted
        Keep the root (it must be bifurcating).  Otherwise a bifurcating root is suppressed
        and the tree re-rooted at the neighbour of taxon 0.

    Returns
    -------
    parents : int32 ``(N,)`` or ``(T, N)``
        Canonical arrays, ``N = 2n-1`` rooted or ``2n-2`` unrooted.
    source : int64 ``(N, 2)`` or ``(T, N, 2)``
        The edge above canonical node ``u`` is the input edge above node ``source[u, 0]``,
        joined with the input edge above ``source[u, 1]`` where a root was suppressed
        (``-1`` otherwise; both ``-1`` for the root).

    Raises
    ------
    ValueError
        An array that is not a binary tree on these taxa, naming the first such row.
    """
    arr = np.asarray(parents)
    single = arr.ndim == 1
    arr = np.ascontiguousarray(arr[None, :] if single else arr, dtype=np.int64)
    if arr.ndim != 2:
        raise ValueError("parent arrays must be one- or two-dimensional")
    if n_taxa < 3:
        raise ValueError(f"a binary tree needs at least 3 taxa, not {n_taxa}")
    M = arr.shape[1]
    allowed = (2 * n_taxa - 1,) if rooted else (2 * n_taxa - 1, 2 * n_taxa - 2)
    if M not in allowed:
        raise ValueError(
            f"parent arrays of {M} nodes cannot be binary "
            f"{'rooted' if rooted else 'unrooted'} trees on {n_taxa} taxa "
            f"({' or '.join(map(str, allowed))} nodes)"
        )
    N = n_nodes(n_taxa, rooted)
    out = np.empty((arr.shape[0], N), np.int32)
    source = np.empty((arr.shape[0], N, 2), np.int64)
    if arr.shape[0]:
        t, err = K.canonicalise_many(arr, n_taxa, rooted, out, source)
        if err != K.OK:
            which = "the parent array" if single else f"parent array {t}"
            raise ValueError(f"{which} {_ERRORS.get(err, f'is not a tree (code {err})')}")
    return (out[0], source[0]) if single else (out, source)


def carry_lengths(lengths: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Branch lengths on canonical nodes from lengths on input nodes (see
    :func:`canonical_map`): ``out[u] = lengths[a] + lengths[b]`` for ``(a, b) = source[u]``
    (the second term only where two edges were joined), 0 at the root.

    ``lengths`` is ``(M,)`` or ``(T, M)`` like the parent arrays, ``source`` the map.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    a, b = source[..., 0], source[..., 1]
    if lengths.ndim == 1:
        take = lambda idx: lengths[np.maximum(idx, 0)]  # noqa: E731
    else:
        take = lambda idx: np.take_along_axis(lengths, np.maximum(idx, 0), axis=-1)  # noqa: E731
    out = np.where(a >= 0, take(a), 0.0) + np.where(b >= 0, take(b), 0.0)
    return out


def canonical(parents: np.ndarray, n_taxa: int, rooted: bool, lengths: np.ndarray | None = None):
    """Canonical parent arrays of binary trees with leaves ``0..n-1`` (any internal numbering;
    a rooted input read as unrooted has its root suppressed).

    Parameters
    ----------
    parents, n_taxa, rooted
        As in :func:`canonical_map`; ``(M,)`` gives ``(N,)``, ``(T, M)`` gives ``(T, N)``.
    lengths
        Optional branch lengths of the input, one per node (the edge above it; the root's
        entry is ignored), shaped like ``parents``.

    Returns
    -------
    The canonical parent arrays, or ``(parents, lengths)`` when ``lengths`` is given: the
    length of each canonical edge is that of the input edge with the same split (the sum
    of the two root edges where a root was suppressed).
    """
    out, source = canonical_map(parents, n_taxa, rooted)
    if lengths is None:
        return out
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != np.shape(parents):
        raise ValueError(f"lengths of shape {lengths.shape} for parents {np.shape(parents)}")
    return out, carry_lengths(lengths, source)


def relabel(parents: np.ndarray, perm: np.ndarray, rooted: bool, lengths: np.ndarray | None = None):
    """Canonical arrays after renaming taxon ``i`` to ``perm[i]``.

    ``parents`` are canonical (or any binary parent arrays, as for :func:`canonical`) on
    ``n = len(perm)`` taxa; the result is canonical on the renamed taxa, with ``lengths``
    (when given) following their edges.  Returns like :func:`canonical`.
    """
    perm = np.asarray(perm, dtype=np.int64)
    n = perm.shape[0]
    arr = np.asarray(parents)
    # taxa are never parents, so only the leaves' rows move
    moved = arr.copy()
    moved[..., perm] = arr[..., :n]
    if lengths is None:
        return canonical(moved, n, rooted)
    lengths = np.asarray(lengths, dtype=np.float64)
    moved_len = lengths.copy()
    moved_len[..., perm] = lengths[..., :n]
    return canonical(moved, n, rooted, moved_len)


def permutation(
    source: Taxa,
    target: Taxa,
    source_name: str = "the trees",
    target_name: str = "the target",
) -> np.ndarray | None:
    """``perm[i]`` = index in ``target`` of taxon ``i`` of ``source``, for :func:`relabel`.

    Taxa are matched by their normalised names (``_`` is a blank).  Returns ``None`` when the
    order is already the same; raises :class:`~phylo.errors.InputError` naming the taxa found
    on one side only (with ``source_name`` and ``target_name``) when the sets differ.
    """
    if source == target:
        return None
    check_same_taxa(source, target, source_name, target_name)
    return np.array([target.index_of_key(k) for k in source.keys], np.int64)
