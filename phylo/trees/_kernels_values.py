"""numba kernels for per-clade value summaries (branch lengths, node heights).

Plain functions over arrays; the typed wrapper is :mod:`phylo.trees.clade_values`.

* :func:`welford` updates running counts, means, sums of squared deviations, minima and
  maxima, one value at a time, in the order given (the update MrBayes ``sumt`` uses).
* :func:`exact_stats` sorts each key's values and takes the median and the 95% HPD interval
  from the order statistics (TreeAnnotator's definitions, see the wrapper).
* :func:`sketch_codes` maps values to the buckets of a log-spaced histogram of relative
  accuracy ``alpha`` (DDSketch's buckets); :func:`sketch_stats` takes the same statistics
  from bucket counts.
* :func:`node_heights` turns the branch lengths of rooted trees into node heights.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: Bucket codes use 22 bits: code ``ZERO`` is the value 0, larger codes positive values and
#: smaller codes negative ones, in increasing order of the value.
CODE_BITS = 22
ZERO = 1 << (CODE_BITS - 1)
OFFSET = 1 << (CODE_BITS - 2)


@nb.njit(cache=True)
def welford(keys, values, count, mean, m2, vmin, vmax):
    """Add ``values[i]`` to the running moments of key ``keys[i]``; NaN values are skipped."""
    for i in range(keys.shape[0]):
        x = values[i]
        if x != x:
            continue
        k = keys[i]
        c = count[k] + 1
        count[k] = c
        old = mean[k]
        new = old + (x - old) / c
        mean[k] = new
        m2[k] += (x - new) * (x - old)
        if c == 1 or x < vmin[k]:
            vmin[k] = x
        if c == 1 or x > vmax[k]:
            vmax[k] = x


@nb.njit(cache=True)
def _hpd_width(n, level):
    # TreeAnnotator: diff = Math.round(level * n) = floor(level * n + 0.5), at least 1
    d = int(math.floor(level * n + 0.5))
    if d < 1:
        d = 1
    if d > n:
        d = n
    return d


@nb.njit(cache=True)
def group_values(keys, values, count, out, starts):
    """Scatter ``values`` into ``out`` grouped by key (``starts[k]`` is where key ``k``'s
    values begin; NaN values are skipped).  ``starts`` has ``K + 1`` entries."""
    K = count.shape[0]
    starts[0] = 0
    for k in range(K):
        starts[k + 1] = starts[k] + count[k]
    fill = starts[:-1].copy()
    for i in range(keys.shape[0]):
        x = values[i]
        if x != x:
            continue
        k = keys[i]
        out[fill[k]] = x
        fill[k] += 1


@nb.njit(cache=True)
def exact_stats(grouped, starts, level, median, lower, upper):
    """Median and ``level`` HPD interval of each key's values (``grouped[starts[k]:
    starts[k+1]]``, sorted in place)."""
    K = starts.shape[0] - 1
    for k in range(K):
        a = starts[k]
        n = starts[k + 1] - a
        if n == 0:
            median[k] = np.nan
            lower[k] = np.nan
            upper[k] = np.nan
            continue
        seg = grouped[a : a + n]
        seg.sort()
        h = n // 2
        if n % 2 == 1:
            median[k] = seg[h]
        else:
            median[k] = (seg[h - 1] + seg[h]) / 2.0
        d = _hpd_width(n, level)
        best = np.inf
        at = 0
        for i in range(n - d + 1):
            r = abs(seg[i + d - 1] - seg[i])
            if r < best:
                best = r
                at = i
        lower[k] = seg[at]
        upper[k] = seg[at + d - 1]


@nb.njit(cache=True)
def sketch_codes(keys, values, log_gamma, out):
    """``out[i] = keys[i] << CODE_BITS | code(values[i])``, or -1 for NaN.

    A positive ``x`` falls in bucket ``j = ceil(log(x) / log(gamma))``, i.e.
    ``gamma^(j-1) < x <= gamma^j``; negative values mirror it below code ``ZERO``.
    """
    for i in range(keys.shape[0]):
        x = values[i]
        if x != x:
            out[i] = -1
            continue
        if x == 0.0:
            c = ZERO
        else:
            j = int(math.ceil(math.log(abs(x)) / log_gamma))
            if j < -OFFSET + 1:
                j = -OFFSET + 1
            if j > OFFSET - 1:
                j = OFFSET - 1
            c = ZERO + OFFSET + j if x > 0 else ZERO - OFFSET - j
        out[i] = (np.int64(keys[i]) << CODE_BITS) | c


@nb.njit(cache=True)
def _bucket_value(code, gamma, log_gamma):
    # the point of the bucket with the smallest relative error to every value in it
    if code == ZERO:
        return 0.0
    if code > ZERO:
        j = code - ZERO - OFFSET
        return 2.0 * math.exp(j * log_gamma) / (gamma + 1.0)
    j = ZERO - OFFSET - code
    return -2.0 * math.exp(j * log_gamma) / (gamma + 1.0)


@nb.njit(cache=True)
def sketch_stats(codes, counts, n_keys, gamma, log_gamma, level, vmin, vmax, median, lower, upper):
    """Median and HPD interval from sorted unique ``codes`` (key and bucket) with counts.

    A rank's value is its bucket's point, clipped to the key's exact minimum and maximum.
    The HPD scan only tries lower ends at the first rank of a bucket: within a bucket the
    lower value is constant and the upper one can only grow.
    """
    mask = (np.int64(1) << CODE_BITS) - 1
    for k in range(n_keys):
        median[k] = np.nan
        lower[k] = np.nan
        upper[k] = np.nan
    m = codes.shape[0]
    a = 0
    while a < m:
        k = codes[a] >> CODE_BITS
        b = a
        while b < m and (codes[b] >> CODE_BITS) == k:
            b += 1
        nb_ = b - a
        vals = np.empty(nb_)
        cum = np.empty(nb_ + 1, np.int64)
        cum[0] = 0
        for j in range(nb_):
            v = _bucket_value(codes[a + j] & mask, gamma, log_gamma)
            if v < vmin[k]:
                v = vmin[k]
            if v > vmax[k]:
                v = vmax[k]
            vals[j] = v
            cum[j + 1] = cum[j] + counts[a + j]
        n = cum[nb_]
        h = n // 2
        jh = np.searchsorted(cum, h, side="right") - 1
        if n % 2 == 1:
            median[k] = vals[jh]
        else:
            jl = np.searchsorted(cum, h - 1, side="right") - 1
            median[k] = (vals[jl] + vals[jh]) / 2.0
        d = _hpd_width(n, level)
        best = np.inf
        lo = 0.0
        hi = 0.0
        for j in range(nb_):
            i = cum[j]
            if i > n - d:
                break
            ju = np.searchsorted(cum, i + d - 1, side="right") - 1
            r = abs(vals[ju] - vals[j])
            if r < best:
                best = r
                lo = vals[j]
                hi = vals[ju]
        lower[k] = lo
        upper[k] = hi
        a = b


@nb.njit(cache=True)
def node_heights(parents, ids, lengths, out):
    """Node heights of rooted trees: ``out[i, v] = D_i - depth_i(v)``, where ``depth`` adds
    branch lengths from the root down and ``D_i`` is the largest depth of a leaf (so the
    youngest leaf has height 0).  ``parents`` are canonical (parents after children)."""
    n_trees = ids.shape[0]
    N = parents.shape[1]
    n_leaves = (N + 1) // 2
    depth = np.empty(N)
    for i in range(n_trees):
        par = parents[ids[i]]
        depth[N - 1] = 0.0
        for v in range(N - 2, -1, -1):
            depth[v] = depth[par[v]] + lengths[i, v]
        D = depth[0]
        for v in range(1, n_leaves):
            if depth[v] > D:
                D = depth[v]
        for v in range(N):
            out[i, v] = D - depth[v]


@nb.njit(cache=True)
def run_lengths(sorted_codes, out_codes, out_counts):
    """Distinct values of a sorted array and how often each occurs; returns their number."""
    m = 0
    n = sorted_codes.shape[0]
    i = 0
    while i < n:
        c = sorted_codes[i]
        j = i + 1
        while j < n and sorted_codes[j] == c:
            j += 1
        out_codes[m] = c
        out_counts[m] = j - i
        m += 1
        i = j
    return m


@nb.njit(cache=True)
def merge_counts(a_codes, a_counts, b_codes, b_counts, out_codes, out_counts):
    """Merge two sorted (code, count) lists, adding the counts of equal codes; returns the
    length of the merged list."""
    i = 0
    j = 0
    m = 0
    na = a_codes.shape[0]
    nb_ = b_codes.shape[0]
    while i < na or j < nb_:
        if j >= nb_ or (i < na and a_codes[i] < b_codes[j]):
            out_codes[m] = a_codes[i]
            out_counts[m] = a_counts[i]
            i += 1
        elif i >= na or b_codes[j] < a_codes[i]:
            out_codes[m] = b_codes[j]
            out_counts[m] = b_counts[j]
            j += 1
        else:
            out_codes[m] = a_codes[i]
            out_counts[m] = a_counts[i] + b_counts[j]
            i += 1
            j += 1
        m += 1
    return m
