"""numba kernels for the tree-space convergence diagnostics.

Plain functions over arrays; the typed wrapper is :mod:`phylo.trees.diagnostics`.

* :func:`leaf_path_lengths` gives the number of edges between every pair of taxa of one
  canonical parent array (the vector whose Euclidean distances are the path distance of
  Steel and Penny 1993, RWTY's ``PD``).
* :func:`lagged_sq_path` and :func:`sampled_sq_path` add up squared path distances between
  the trees ``k`` samples apart in a trace, for ``k = 1..K``: every pair, or given pairs.
* :func:`lagged_sq_rf` does the same for the squared Robinson-Foulds distance, from each
  topology's sorted split ids.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def leaf_path_lengths(parent, n_taxa, depth, order, start, stop, out):
    """Edges between taxa ``i < j`` of one tree, written to ``out`` in the order
    ``(0,1), (0,2), ..., (0,n-1), (1,2), ...`` (pair ``(i, j)`` at
    ``i (2n - i - 1) / 2 + j - i - 1``).

    ``parent`` is a canonical parent array (children before parents, root last, ``-1``);
    ``depth``, ``order``, ``start`` and ``stop`` are scratch arrays of the number of nodes
    (``order``: of ``n_taxa``).  Each pair is reached once, at its lowest common ancestor,
    so the work is ``O(n^2)``.
    """
    N = parent.shape[0]
    root = N - 1
    depth[root] = 0
    for v in range(N - 2, -1, -1):
        depth[v] = depth[parent[v]] + 1
    # leaves in an order where every clade is a contiguous block: count leaves below
    # each node, then give each child a block inside its parent's, children in index order
    for v in range(N):
        start[v] = 0
        stop[v] = 0
    for v in range(n_taxa):
        stop[v] = 1
    for v in range(N - 1):
        stop[parent[v]] += stop[v]
    # stop[v] holds the size for now; start[v] becomes the offset of the block
    nxt = np.zeros(N, np.int64)
    start[root] = 0
    nxt[root] = 0
    for v in range(N - 2, -1, -1):
        p = parent[v]
        start[v] = start[p] + nxt[p]
        nxt[p] += stop[v]
    for v in range(N):
        stop[v] = start[v] + stop[v]
    for v in range(n_taxa):
        order[start[v]] = v
    # children of each node, grouped by parent (counting sort)
    first = np.zeros(N + 1, np.int64)
    for c in range(N - 1):
        first[parent[c] + 1] += 1
    for v in range(N):
        first[v + 1] += first[v]
    kids = np.empty(N, np.int64)
    fill = first[:N].copy()
    for c in range(N - 1):
        kids[fill[parent[c]]] = c
        fill[parent[c]] += 1
    # pairs below two different children of each internal node
    for v in range(n_taxa, N):
        for a in range(first[v], first[v + 1]):
            ca = kids[a]
            for b in range(a + 1, first[v + 1]):
                cb = kids[b]
                for s in range(start[ca], stop[ca]):
                    x = order[s]
                    for t in range(start[cb], stop[cb]):
                        y = order[t]
                        d = depth[x] + depth[y] - 2 * depth[v]
                        i = x if x < y else y
                        j = y if x < y else x
                        out[i * (2 * n_taxa - i - 1) // 2 + j - i - 1] = d


@nb.njit(cache=True)
def _fill(parents, t, n_taxa, depth, order, start, stop, row):
    leaf_path_lengths(parents[t], n_taxa, depth, order, start, stop, row)


@nb.njit(cache=True)
def lagged_sq_path(parents, n_taxa, trace, ring, sums):
    """``sums[k-1] = sum_i PD(trace[i], trace[i+k])^2`` for ``k = 1..K``, every pair.

    The path-length vectors of the last ``K + 1`` trees are kept in ``ring`` (``(K + 1,
    n (n - 1) / 2)``, a small integer type: path lengths are below ``2 n``), so each tree's
    vector is computed once and each pair costs one pass over ``n (n - 1) / 2`` numbers.
    """
    N = trace.shape[0]
    K = ring.shape[0] - 1
    D = n_taxa * (n_taxa - 1) // 2
    nn = parents.shape[1]
    depth = np.empty(nn, np.int64)
    order = np.empty(n_taxa, np.int64)
    start = np.empty(nn, np.int64)
    stop = np.empty(nn, np.int64)
    for k in range(K):
        sums[k] = 0.0
    for i in range(N):
        slot = i % (K + 1)
        if i > 0 and trace[i] == trace[i - 1]:
            ring[slot, :] = ring[(i - 1) % (K + 1), :]
        else:
            _fill(parents, trace[i], n_taxa, depth, order, start, stop, ring[slot])
        top = K if K < i else i
        for k in range(1, top + 1):
            j = i - k
            if trace[j] == trace[i]:
                continue
            other = j % (K + 1)
            acc = 0
            for e in range(D):
                diff = np.int64(ring[slot, e]) - np.int64(ring[other, e])
                acc += diff * diff
            sums[k - 1] += acc


@nb.njit(cache=True)
def sampled_sq_path(parents, n_taxa, trace, starts, lags, out):
    """``out[p] = PD(trace[starts[p]], trace[starts[p] + lags[p]])^2`` for given pairs."""
    D = n_taxa * (n_taxa - 1) // 2
    nn = parents.shape[1]
    a = np.empty(D, np.int64)
    b = np.empty(D, np.int64)
    depth = np.empty(nn, np.int64)
    order = np.empty(n_taxa, np.int64)
    start = np.empty(nn, np.int64)
    stop = np.empty(nn, np.int64)
    for p in range(starts.shape[0]):
        ta = trace[starts[p]]
        tb = trace[starts[p] + lags[p]]
        if ta == tb:
            out[p] = 0.0
            continue
        _fill(parents, ta, n_taxa, depth, order, start, stop, a)
        _fill(parents, tb, n_taxa, depth, order, start, stop, b)
        acc = 0
        for e in range(D):
            diff = a[e] - b[e]
            acc += diff * diff
        out[p] = acc


@nb.njit(cache=True)
def _rf(ids, ta, tb):
    """Splits in one of two topologies and not the other (both rows sorted)."""
    x = ids[ta]
    y = ids[tb]
    i = 0
    j = 0
    common = 0
    while i < x.shape[0] and j < y.shape[0]:
        if x[i] == y[j]:
            common += 1
            i += 1
            j += 1
        elif x[i] < y[j]:
            i += 1
        else:
            j += 1
    return x.shape[0] + y.shape[0] - 2 * common


@nb.njit(cache=True)
def lagged_sq_rf(ids, trace, K, sums):
    """``sums[k-1] = sum_i RF(trace[i], trace[i+k])^2``, ``ids``: sorted split ids per
    topology (one row each, informative splits only)."""
    N = trace.shape[0]
    for k in range(K):
        sums[k] = 0.0
    for i in range(N):
        top = K if K < i else i
        for k in range(1, top + 1):
            j = i - k
            if trace[j] != trace[i]:
                d = _rf(ids, trace[i], trace[j])
                sums[k - 1] += d * d


@nb.njit(cache=True)
def sampled_sq_rf(ids, trace, starts, lags, out):
    """``out[p] = RF(trace[starts[p]], trace[starts[p] + lags[p]])^2``."""
    for p in range(starts.shape[0]):
        ta = trace[starts[p]]
        tb = trace[starts[p] + lags[p]]
        if ta == tb:
            out[p] = 0.0
        else:
            d = _rf(ids, ta, tb)
            out[p] = d * d
