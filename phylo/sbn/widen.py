"""Widening an SBN's support to the NNI neighbours of the sampled topologies.

An SBN fitted to a tree sample gives probability zero to every topology that needs a root
split or a parent-child subsplit pair (PCSP) the sample never showed.  When the sample is a
short MCMC run, part of the posterior mass can lie there.  A cheap way to reach it is to add
the topologies one nearest-neighbour interchange (NNI) away from the sampled ones to the
training sample with a small weight, so that their subsplits enter the support.

NNI neighbours.  An internal edge ``(v, p)`` of an unrooted binary tree, with ``v``'s two
other neighbours ``a, b`` and ``p``'s two other neighbours ``c, d``, separates the four
subtrees ``ab|cd``; its two NNI neighbours are ``ac|bd`` and ``ad|bc``.  In a parent array
with ``v`` a child of ``p`` and ``c`` another child of ``p``, they are the trees with ``a``
(or ``b``) and ``c`` exchanged: ``parent[a] = p, parent[c] = v``.  A tree of ``n`` taxa has
``n - 3`` internal edges, so ``2 (n - 3)`` NNI neighbours, all distinct and all different
from the tree.

Pseudo-counts.  With sample frequencies ``f_t`` (summing to 1) and a strength ``eps``, each
of the ``2 (n - 3)`` neighbours of topology ``t`` gets weight ``eps f_t / (2 (n - 3))``
(weights of a topology reached several times add up), so the neighbours bring ``eps`` to a
training weight of 1.

The widened SBN (:func:`fit_widened`) keeps what the fit to the sample learnt and adds the
neighbours as pseudo-counts, without running EM over them (a short run's neighbours are
hundreds of thousands of trees).  Its parameters, on the union of the two supports, are

    theta_{s|k}  proportional to  m_{s,k} + eps * u_{s,k},

where ``m`` are the expected parameter counts of the sample under the fitted SBN (one E-step
at its parameters, so that normalised within each parent key they are its parameters) and
``u`` those of the neighbours, each neighbour's rootings taken as equally likely (the counts
of SBN-SA, scaled to expected counts: a PCSP under a parent clade ``C`` is used by
``2 (n - |C|) - 1`` of the ``2n - 3`` rootings of every tree that has it, a root split by one).
The neighbours are indexed in chunks, so memory stays that of the union's support.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..trees import TreeSample
from ..trees.topology import canonical

__all__ = ["nni_neighbours", "widened_training", "fit_widened"]


def nni_neighbours(parents: np.ndarray, n_taxa: int, chunk: int = 256) -> np.ndarray:
    """The NNI neighbours of unrooted topologies.

    Parameters
    ----------
    parents
        ``(T, 2n-2)`` canonical parent arrays of unrooted binary trees.
    n_taxa
        ``n``.
    chunk
        Trees handled at once (memory is ``chunk * 2(n-3) * (2n-2)`` integers).

    Returns
    -------
    ndarray, int32, shape (T * 2(n-3), 2n-2)
        Canonical parent arrays; rows ``2(n-3) t .. 2(n-3)(t+1) - 1`` are the neighbours of
        tree ``t`` (two per internal edge, in the order of the edges' lower nodes).
    """
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    if parents.ndim == 1:
        parents = parents[None, :]
    n = int(n_taxa)
    N = 2 * n - 2
    if parents.shape[1] != N:
        raise ValueError(f"unrooted parent arrays of {n} taxa have {N} nodes")
    E = n - 3  # internal edges: the internal nodes but the root
    if E <= 0 or parents.shape[0] == 0:
        return np.empty((0, N), np.int32)
    out = []
    for s in range(0, parents.shape[0], chunk):
        P = parents[s : s + chunk]
        T = P.shape[0]
        # children grouped by parent: internal node u (n <= u < N-1) has two, the root three
        order = np.argsort(P[:, :-1], axis=1, kind="stable").astype(np.int32)
        kids = order[:, : 2 * E].reshape(T, E, 2)  # children of nodes n .. N-2
        root_kids = order[:, 2 * E :]  # (T, 3)
        v = np.arange(n, N - 1, dtype=np.int32)  # the lower node of every internal edge
        p = P[:, n : N - 1]  # (T, E) their parents
        # c: a child of p other than v (p has two children, or three when it is the root)
        ti = np.arange(T)[:, None]
        ei = np.arange(E)[None, :]
        at_root = p == N - 1
        pk = np.full((T, E, 3), -1, np.int32)
        pk[..., :2] = kids[ti, np.where(at_root, 0, p - n)]
        pk[at_root] = np.broadcast_to(root_kids[:, None, :], (T, E, 3))[at_root]
        ok = (pk != v[None, :, None]) & (pk >= 0)
        c = np.take_along_axis(pk, np.argmax(ok, axis=2)[..., None], axis=2)[..., 0]
        rows = np.repeat(P[:, None, None, :], 2, axis=2)
        rows = np.repeat(rows, E, axis=1).copy()  # (T, E, 2, N)
        for j in range(2):
            moved = kids[:, :, j]  # a (j = 0) or b (j = 1)
            R = rows[:, :, j, :]
            R[ti, ei, moved] = p
            R[ti, ei, c] = v[None, :]
        out.append(canonical(rows.reshape(T * E * 2, N), n, False))
    return np.concatenate(out)


def widened_training(sample: TreeSample, pseudo_count: float) -> tuple[np.ndarray, np.ndarray]:
    """The sampled topologies and their NNI neighbours with weights (see the module
    docstring): ``(parents, weights)``, unique topologies, weights summing to 1."""
    if sample.rooted:
        raise InputError("NNI widening is for unrooted topologies")
    if not (pseudo_count > 0 and np.isfinite(pseudo_count)):
        raise InputError(f"the NNI pseudo-count must be a positive number, not {pseudo_count}")
    f = sample.frequencies()
    keep = f > 0
    base, f = sample.parents[keep], f[keep] / f[keep].sum()
    n = sample.n_taxa
    nb = nni_neighbours(base, n)
    per = 2 * (n - 3)
    if per <= 0:
        return base, f
    w_nb = np.repeat(f * pseudo_count / per, per)
    allp = np.concatenate([base, nb])
    allw = np.concatenate([f, w_nb])
    uniq, inverse = np.unique(allp, axis=0, return_inverse=True)
    w = np.zeros(uniq.shape[0])
    np.add.at(w, inverse.ravel(), allw)
    return np.ascontiguousarray(uniq, dtype=np.int32), w / w.sum()


def fit_widened(
    sample: TreeSample,
    pseudo_count: float = 0.01,
    method: str = "em-alpha",
    chunk: int = 512,
    **kw,
):
    """An SBN fitted to ``sample`` (``method`` ``sa``, ``em`` or ``em-alpha``; keyword
    arguments go to :func:`phylo.sbn.fit_sbn`) whose support is widened to the NNI
    neighbours of the sampled topologies with total weight ``pseudo_count`` (see the module
    docstring)."""
    from . import _kernels as K
    from .model import SBNModel
    from .sbn import fit_sbn
    from .support import Indexer

    if sample.rooted:
        raise InputError("NNI widening is for unrooted topologies")
    if not (pseudo_count > 0 and np.isfinite(pseudo_count)):
        raise InputError(f"the NNI pseudo-count must be a positive number, not {pseudo_count}")
    base = fit_sbn(sample, method, **kw)
    n = sample.n_taxa
    f = sample.frequencies()
    keep = f > 0
    parents, f = sample.parents[keep], f[keep] / f[keep].sum()
    ix = Indexer(n, False, base.conditioning)
    tab_s = ix.add(parents)
    _, tab_m = base.param_table(parents)
    ok = (tab_m >= 0) & (tab_m < base.n_params)
    to_new = np.full(base.n_params, -1, np.int64)
    to_new[tab_m[ok]] = tab_s[ok]
    counts = np.zeros(max(16, 2 * int(ix.cnt[3]) + 1))
    sample_counts = base.expected_counts(parents, weights=f)
    np.add.at(counts, to_new[to_new >= 0], sample_counts[to_new >= 0])
    nb_counts = np.zeros_like(counts)
    per = 2 * (n - 3)
    E = 2 * n - 3
    for a in range(0, parents.shape[0], chunk):
        nb = nni_neighbours(parents[a : a + chunk], n)
        if nb.shape[0] == 0:
            continue
        w = np.repeat(f[a : a + chunk] * pseudo_count / per, per)
        tab = ix.add(nb)
        need = int(ix.cnt[3]) + 1
        if need > counts.shape[0]:
            size = max(need, 2 * counts.shape[0])
            counts = np.concatenate([counts, np.zeros(size - counts.shape[0])])
            nb_counts = np.concatenate([nb_counts, np.zeros(size - nb_counts.shape[0])])
        K.once_counts(tab, w / E, nb_counts)
    M = int(ix.cnt[3])
    support, perm = ix.freeze()
    key_of = support.param_key  # (new ids) parent key of each parameter
    size = support.clade_sizes[support.keys[:, 1]]
    factor = np.where(np.arange(support.n_keys) == 0, 1.0, 2.0 * (n - size) - 1.0)
    new_counts = np.zeros(M + 1)
    new_counts[perm] = counts[:M] + nb_counts[:M] * factor[key_of[perm]]
    lt = np.empty(M + 1)
    K.normalise_groups(new_counts, support.offsets, lt)
    info = dict(base.fit_info)
    info.update(
        nni_pseudo_count=float(pseudo_count),
        sampled_topologies=int(parents.shape[0]),
        base_parameters=int(base.n_params),
    )
    return SBNModel(sample.taxa, support, lt[:M], f"{method}+nni", info)
