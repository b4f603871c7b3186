"""numba kernels for subsplit Bayesian networks (Zhang & Matsen, NeurIPS 2018).

Plain functions over integer and float arrays: no Python objects, no I/O.  The typed,
documented wrappers are in :mod:`phylo.sbn.support` (indexing trees into parameter ids),
:mod:`phylo.sbn.sbn` (estimators) and :mod:`phylo.sbn.model` (the fitted distribution).

Notation shared by the kernels
------------------------------
A tree is a parent array in the form :mod:`phylo.trees` uses: leaves ``0..n-1`` are the taxa,
every child has a smaller index than its parent, the root is the last node.  An unrooted tree
has ``N = 2n-2`` nodes and a root ``R = N-1`` with three children; edge ``v`` (``v < R``) is
the edge above node ``v``, so there are ``E = 2n-3`` edges.  Each edge has two directions:
*down* (towards ``v``; its clade ``C_v`` is the taxa below ``v``) and *up* (towards the parent
``p``; its clade is the complement of ``C_v``).

A rooted tree obtained by placing the root on edge ``v`` contains, besides the root split
``{C_v, ~C_v}``, every directed edge pointing away from the root, each with the subsplit of its
clade at its head.  The conditional probability of that subsplit depends on the *parent key*:
``(sibling clade, clade)`` under parent-child subsplit conditioning, ``(-, clade)`` under clade
conditioning (CCD).  Which sibling a directed edge has depends on where the root is, so every
directed edge has up to three parameters, stored per edge in a ``(E, 7)`` row of int32
parameter ids::

    0  root split {C_v, ~C_v}                                   (root on edge v)
    1  down(v), sibling ~C_v                                    (root on edge v)
    2  down(v), sibling: see below                              (root beyond column 3's edge)
    3  down(v), sibling: see below                              (root beyond column 2's edge)
    4  up(v),   sibling C_v                                     (root on edge v)
    5  up(v),   sibling C_c1 (c1 < c2 the children of v)        (root beyond down(c2))
    6  up(v),   sibling C_c2                                    (root beyond down(c1))

For ``down(v)`` with parent ``p != R`` and sibling ``s``: column 2 has sibling ``C_s`` (root
beyond up(p)), column 3 has sibling ``~C_p`` (root beyond down(s)).  With ``p == R`` and the
other two children ``o1 < o2`` of ``R``: column 2 has sibling ``C_o1`` (root beyond down(o2)),
column 3 sibling ``C_o2`` (root beyond down(o1)).  Entries that do not exist (the head of the
directed edge is a leaf, or its tail is a leaf) are ``-1``; parameters missing from a model's
support point to a sentinel id whose log probability is ``-inf``.

A rooted tree has one ``(N, 1)`` column: the root holds its root split, every other internal
node ``v`` the parameter of its subsplit given ``(sibling clade, C_v)``, leaves ``-1``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

NA = -1  # no parameter (the directed edge ends in a leaf)


# --------------------------------------------------------------------------------------
# open-addressing hash tables (linear probing; capacity a power of two; -1 = empty slot)
# --------------------------------------------------------------------------------------


@nb.njit(cache=True, nogil=True, inline="always")
def _mix(x):
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@nb.njit(cache=True, nogil=True, inline="always")
def _clade_id(bits, slots, store, n, add):
    """Id of the clade ``bits`` (W words), adding it when ``add``; ``-1`` when absent."""
    W = bits.shape[0]
    h = np.uint64(0x9E3779B97F4A7C15)
    for w in range(W):
        h = _mix(h ^ bits[w])
    mask = slots.shape[0] - 1
    j = np.int64(h & np.uint64(mask))
    while True:
        s = slots[j]
        if s < 0:
            if not add:
                return -1, n
            slots[j] = n
            for w in range(W):
                store[n, w] = bits[w]
            return n, n + 1
        same = True
        for w in range(W):
            if store[s, w] != bits[w]:
                same = False
                break
        if same:
            return s, n
        j = (j + 1) & mask


@nb.njit(cache=True, nogil=True, inline="always")
def _pair_id(a, b, slots, store, n, add):
    """Id of the int pair ``(a, b)`` (``a >= -1``, ``b >= 0``); ``-1`` when absent."""
    key = (np.uint64(a + 1) << np.uint64(32)) | np.uint64(b)
    h = _mix(key ^ np.uint64(0x632BE59BD9B4E019))
    mask = slots.shape[0] - 1
    j = np.int64(h & np.uint64(mask))
    while True:
        s = slots[j]
        if s < 0:
            if not add:
                return -1, n
            slots[j] = n
            store[n, 0] = a
            store[n, 1] = b
            return n, n + 1
        if store[s, 0] == a and store[s, 1] == b:
            return s, n
        j = (j + 1) & mask


@nb.njit(cache=True, nogil=True)
def rehash_clades(store, n, slots):
    """Insert clades ``store[:n]`` (ids ``0..n-1``) into the empty table ``slots``."""
    for i in range(n):
        _clade_id(store[i], slots, store, i, True)


@nb.njit(cache=True, nogil=True)
def rehash_pairs(store, n, slots):
    """Insert pairs ``store[:n]`` (ids ``0..n-1``) into the empty table ``slots``."""
    for i in range(n):
        _pair_id(store[i, 0], store[i, 1], slots, store, i, True)


# --------------------------------------------------------------------------------------
# indexing trees: clades -> subsplits -> parent keys -> parameters
# --------------------------------------------------------------------------------------


@nb.njit(cache=True, nogil=True, inline="always")
def _triple_slot(a, b, c, slots, store):
    """Slot of the triple ``(a, b, c)`` in a table whose store rows start with it."""
    key = (np.uint64(a + 1) << np.uint64(42)) ^ (np.uint64(b) << np.uint64(21)) ^ np.uint64(c)
    h = _mix(key ^ np.uint64(0x2545F4914F6CDD1D))
    mask = slots.shape[0] - 1
    j = np.int64(h & np.uint64(mask))
    while True:
        s = slots[j]
        if s < 0:
            return j, -1
        if store[s, 0] == a and store[s, 1] == b and store[s, 2] == c:
            return j, s
        j = (j + 1) & mask


@nb.njit(cache=True, nogil=True)
def rehash_params(store, n, slots):
    """Insert parameters ``store[:n]`` (rows ``sibling-or--1, clade, smaller child, key,
    subsplit``) into the empty table ``slots``."""
    for i in range(n):
        j, s = _triple_slot(store[i, 0], store[i, 1], store[i, 2], slots, store)
        slots[j] = i


@nb.njit(cache=True, nogil=True, inline="always")
def _param(sib, clade, x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing):
    """Parameter id of the subsplit ``{x, y}`` of ``clade`` given sibling ``sib``.

    A parameter is identified by (sibling or -1, clade, smaller child clade id); its row in
    ``mst`` also holds its parent key and subsplit ids, which are looked up (and added) only
    when the parameter is new, in a separate function: kept out of this inlined lookup, the
    insertion's many arrays do not slow down the common case (4x on DS1).
    """
    if clade < 0 or x < 0 or y < 0 or (sib < 0 and not clade_mode):
        return missing
    a = -1 if clade_mode else sib
    lo = x if x < y else y
    j, m = _triple_slot(a, clade, lo, ms, mst)
    if m >= 0:
        return m
    if not add:
        return missing
    hi = y if x < y else x
    return _new_param(a, clade, lo, hi, j, ss, sst, ks, kst, ms, mst, cnt)


@nb.njit(cache=True, nogil=True)
def _new_param(a, clade, lo, hi, j, ss, sst, ks, kst, ms, mst, cnt):
    """Add the parameter ``(a, clade, lo)`` at free slot ``j``; returns its id."""
    k, cnt[2] = _pair_id(a, clade, ks, kst, cnt[2], True)
    sub, cnt[1] = _pair_id(lo, hi, ss, sst, cnt[1], True)
    m = cnt[3]
    ms[j] = m
    mst[m, 0] = a
    mst[m, 1] = clade
    mst[m, 2] = lo
    mst[m, 3] = k
    mst[m, 4] = sub
    cnt[3] = m + 1
    return m


@nb.njit(cache=True, nogil=True, inline="always")
def _index_tree(
    t,
    parents,
    full,
    n_taxa,
    rooted,
    clade_mode,
    add,
    cs,
    cst,
    ss,
    sst,
    ks,
    kst,
    ms,
    mst,
    cnt,
    missing,
    out,
    ch,
    nch,
    cd,
    cu,
    sdx,
    sdy,
    sux,
    suy,
    comp,
    bits,
):
    """Write the parameter ids of tree ``t`` into ``out[t]`` (see :func:`index_trees`);
    the last ten arguments are work arrays."""
    N = parents.shape[1]
    W = full.shape[0]
    R = N - 1
    one = np.uint64(1)
    for v in range(N):
        nch[v] = 0
        for w in range(W):
            bits[v, w] = 0
    for v in range(n_taxa):
        bits[v, v >> 6] = one << np.uint64(v & 63)
    for v in range(N - 1):
        p = parents[t, v]
        ch[p, nch[p]] = v
        nch[p] += 1
        for w in range(W):
            bits[p, w] |= bits[v, w]
    for v in range(N):
        cd[v], cnt[0] = _clade_id(bits[v], cs, cst, cnt[0], add)
    if rooted:
        for v in range(N):
            if v < n_taxa:
                out[t, v, 0] = NA
                continue
            x = cd[ch[v, 0]]
            y = cd[ch[v, 1]]
            if v == R:
                out[t, v, 0] = _param(
                    -1, cd[v], x, y, True, ss, sst, ks, kst, ms, mst, cnt, add, missing
                )
            else:
                p = parents[t, v]
                sib = ch[p, 0] if ch[p, 0] != v else ch[p, 1]
                out[t, v, 0] = _param(
                    cd[sib], cd[v], x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing
                )
        return
    root_id = cd[R]
    for v in range(N - 1):
        for w in range(W):
            comp[w] = full[w] ^ bits[v, w]
        cu[v], cnt[0] = _clade_id(comp, cs, cst, cnt[0], add)
    # subsplits at the heads of down(v) and up(v), as pairs of clade ids
    for v in range(N - 1):
        if v >= n_taxa:
            sdx[v] = cd[ch[v, 0]]
            sdy[v] = cd[ch[v, 1]]
        p = parents[t, v]
        if p == R:
            o1, o2 = _others(ch, R, v)
            sux[v] = cd[o1]
            suy[v] = cd[o2]
        else:
            s = ch[p, 0] if ch[p, 0] != v else ch[p, 1]
            sux[v] = cd[s]
            suy[v] = cu[p]
    for v in range(N - 1):
        p = parents[t, v]
        out[t, v, 0] = _param(
            -1, root_id, cd[v], cu[v], True, ss, sst, ks, kst, ms, mst, cnt, add, missing
        )
        if v >= n_taxa:
            x = sdx[v]
            y = sdy[v]
            out[t, v, 1] = _param(
                cu[v], cd[v], x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing
            )
            if p == R:
                o1, o2 = _others(ch, R, v)
                sa = cd[o1]
                sb = cd[o2]
            else:
                s = ch[p, 0] if ch[p, 0] != v else ch[p, 1]
                sa = cd[s]
                sb = cu[p]
            out[t, v, 2] = _param(
                sa, cd[v], x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing
            )
            out[t, v, 3] = _param(
                sb, cd[v], x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing
            )
        else:
            out[t, v, 1] = NA
            out[t, v, 2] = NA
            out[t, v, 3] = NA
        x = sux[v]
        y = suy[v]
        out[t, v, 4] = _param(
            cd[v], cu[v], x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing
        )
        if v >= n_taxa:
            out[t, v, 5] = _param(
                cd[ch[v, 0]], cu[v], x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing
            )
            out[t, v, 6] = _param(
                cd[ch[v, 1]], cu[v], x, y, clade_mode, ss, sst, ks, kst, ms, mst, cnt, add, missing
            )
        else:
            out[t, v, 5] = NA
            out[t, v, 6] = NA


@nb.njit(cache=True, nogil=True)
def _lookup_tree(
    t,
    parents,
    full,
    n_taxa,
    rooted,
    clade_mode,
    cs,
    cst,
    ss,
    sst,
    ks,
    kst,
    ms,
    mst,
    cnt,
    missing,
    out,
    ch,
    nch,
    cd,
    cu,
    sdx,
    sdy,
    sux,
    suy,
    comp,
    bits,
):
    """:func:`_index_tree` without adding: compiled separately, its lookups are not slowed
    down by the insertion code (the tables' stores), which is most of the indexing time."""
    _index_tree(
        t,
        parents,
        full,
        n_taxa,
        rooted,
        clade_mode,
        False,
        cs,
        cst,
        ss,
        sst,
        ks,
        kst,
        ms,
        mst,
        cnt,
        missing,
        out,
        ch,
        nch,
        cd,
        cu,
        sdx,
        sdy,
        sux,
        suy,
        comp,
        bits,
    )


@nb.njit(cache=True, nogil=True)
def _add_tree(
    t,
    parents,
    full,
    n_taxa,
    rooted,
    clade_mode,
    cs,
    cst,
    ss,
    sst,
    ks,
    kst,
    ms,
    mst,
    cnt,
    missing,
    out,
    ch,
    nch,
    cd,
    cu,
    sdx,
    sdy,
    sux,
    suy,
    comp,
    bits,
):
    """:func:`_index_tree`, adding what is new."""
    _index_tree(
        t,
        parents,
        full,
        n_taxa,
        rooted,
        clade_mode,
        True,
        cs,
        cst,
        ss,
        sst,
        ks,
        kst,
        ms,
        mst,
        cnt,
        missing,
        out,
        ch,
        nch,
        cd,
        cu,
        sdx,
        sdy,
        sux,
        suy,
        comp,
        bits,
    )


@nb.njit(cache=True, nogil=True)
def index_trees(
    parents,
    full,
    n_taxa,
    rooted,
    clade_mode,
    add,
    cs,
    cst,
    ss,
    sst,
    ks,
    kst,
    ms,
    mst,
    cnt,
    missing,
    start,
    out,
):
    """Write the parameter ids of trees ``start, start+1, ...`` into ``out``.

    ``parents`` (T, N) int32; ``full`` the bitset (W words) of all taxa.  ``cs/cst``,
    ``ss/sst``, ``ks/kst``, ``ms/mst`` are the slot and store arrays of the clade, subsplit,
    parent-key and parameter tables; ``cnt`` holds their sizes (updated).  With ``add`` unseen
    items are added, otherwise their parameters become ``missing``.  ``out`` is (T, N-1, 7)
    for unrooted trees, (T, N, 1) for rooted ones.  When adding, stops before a tree that
    might overfill a table (more than half its slots, or its store) and returns that tree's
    index so the caller can grow the tables; returns ``T`` when done.

    When adding, each tree is first looked up only, and indexed again with insertion only
    when something of it is new (in a posterior sample most trees are made of parameters
    already seen): the result is the same, ids in order of first appearance.
    """
    T = parents.shape[0]
    N = parents.shape[1]
    W = full.shape[0]
    ch = np.empty((N, 3), np.int32)
    nch = np.zeros(N, np.int32)
    cd = np.empty(N, np.int64)
    cu = np.empty(N, np.int64)
    sdx = np.empty(N, np.int64)
    sdy = np.empty(N, np.int64)
    sux = np.empty(N, np.int64)
    suy = np.empty(N, np.int64)
    comp = np.empty(W, np.uint64)
    bits = np.zeros((N, W), np.uint64)
    new = np.int32(-3)  # marks what the lookup did not find (ids are >= -2)
    for t in range(start, T):
        if not add:
            _lookup_tree(
                t,
                parents,
                full,
                n_taxa,
                rooted,
                clade_mode,
                cs,
                cst,
                ss,
                sst,
                ks,
                kst,
                ms,
                mst,
                cnt,
                missing,
                out,
                ch,
                nch,
                cd,
                cu,
                sdx,
                sdy,
                sux,
                suy,
                comp,
                bits,
            )
            continue
        if (
            2 * (cnt[0] + 2 * N) > cs.shape[0]
            or cnt[0] + 2 * N > cst.shape[0]
            or 2 * (cnt[1] + 3 * N) > ss.shape[0]
            or cnt[1] + 3 * N > sst.shape[0]
            or 2 * (cnt[2] + 7 * N) > ks.shape[0]
            or cnt[2] + 7 * N > kst.shape[0]
            or 2 * (cnt[3] + 7 * N) > ms.shape[0]
            or cnt[3] + 7 * N > mst.shape[0]
        ):
            return t
        _lookup_tree(
            t,
            parents,
            full,
            n_taxa,
            rooted,
            clade_mode,
            cs,
            cst,
            ss,
            sst,
            ks,
            kst,
            ms,
            mst,
            cnt,
            new,
            out,
            ch,
            nch,
            cd,
            cu,
            sdx,
            sdy,
            sux,
            suy,
            comp,
            bits,
        )
        seen = True
        rows = out[t]
        for i in range(rows.shape[0]):
            for j in range(rows.shape[1]):
                if rows[i, j] == new:
                    seen = False
        if not seen:
            _add_tree(
                t,
                parents,
                full,
                n_taxa,
                rooted,
                clade_mode,
                cs,
                cst,
                ss,
                sst,
                ks,
                kst,
                ms,
                mst,
                cnt,
                missing,
                out,
                ch,
                nch,
                cd,
                cu,
                sdx,
                sdy,
                sux,
                suy,
                comp,
                bits,
            )
    return T


@nb.njit(cache=True, nogil=True)
def remap(table, perm, missing_old, missing_new):
    """Replace parameter ids by ``perm[id]`` in place (``-1`` kept, sentinel renamed)."""
    flat = table.reshape(-1)
    for i in range(flat.shape[0]):
        m = flat[i]
        if m == missing_old:
            flat[i] = missing_new
        elif m >= 0:
            flat[i] = perm[m]


# --------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def once_counts(table, weights, counts):
    """Add ``weights[t]`` to ``counts[m]`` once for every parameter ``m`` tree ``t`` uses in
    any rooting (the simple-average counts)."""
    T = table.shape[0]
    stamp = np.full(counts.shape[0], -1, np.int64)
    for t in range(T):
        w = weights[t]
        for e in range(table.shape[1]):
            for c in range(table.shape[2]):
                m = table[t, e, c]
                if m >= 0 and stamp[m] != t:
                    stamp[m] = t
                    counts[m] += w


@nb.njit(cache=True, nogil=True)
def normalise_groups(values, offsets, out):
    """``out[m] = log(values[m] / sum of values in m's group)``; groups are the ranges
    ``offsets[g]:offsets[g+1]``.  A group summing to zero gets ``-inf``."""
    G = offsets.shape[0] - 1
    for g in range(G):
        a = offsets[g]
        b = offsets[g + 1]
        tot = 0.0
        for m in range(a, b):
            tot += values[m]
        if tot > 0.0:
            lt = np.log(tot)
            for m in range(a, b):
                out[m] = np.log(values[m]) - lt if values[m] > 0.0 else -np.inf
        else:
            for m in range(a, b):
                out[m] = -np.inf


@nb.njit(cache=True, nogil=True, inline="always")
def _others(ch, R, v):
    o1 = -1
    o2 = -1
    for k in range(3):
        x = ch[R, k]
        if x != v:
            if o1 < 0:
                o1 = x
            else:
                o2 = x
    return o1, o2


@nb.njit(cache=True, nogil=True)
def _children(parents, t, ch, nch):
    N = parents.shape[1]
    for v in range(N):
        nch[v] = 0
    for v in range(N - 1):
        p = parents[t, v]
        ch[p, nch[p]] = v
        nch[p] += 1


@nb.njit(cache=True, nogil=True)
def rooting_logprobs(parents, table, logtheta, n_taxa, out):
    """``out[t, v] = log p(T_t rooted on the edge above node v)`` for every unrooted tree.

    Two passes per tree, O(n) in all: upward, ``lbd[v]`` = log probability of the subsplits
    below node ``v`` given the subsplit at ``v`` (root above ``v``); downward, ``lbu[v]`` =
    the same for the far side of the edge above ``v`` given the subsplit at its parent (root
    below ``v``).  Then ``log p(T_v) = log theta(root split {C_v, ~C_v}) + log theta(subsplit
    of C_v | root) + lbd[v] + log theta(subsplit of ~C_v | root) + lbu[v]``.
    ``logtheta`` has one entry per parameter plus the ``-inf`` sentinel.
    """
    T = parents.shape[0]
    N = parents.shape[1]
    R = N - 1
    E = N - 1
    n = n_taxa
    ch = np.empty((N, 3), np.int32)
    nch = np.zeros(N, np.int32)
    lbd = np.empty(N)
    lbu = np.empty(N)
    for t in range(T):
        _children(parents, t, ch, nch)
        tab = table[t]
        for v in range(E):
            if v < n:
                lbd[v] = 0.0
                continue
            c1 = ch[v, 0]
            c2 = ch[v, 1]
            acc = 0.0
            if c1 >= n:
                acc += logtheta[tab[c1, 2]] + lbd[c1]
            if c2 >= n:
                acc += logtheta[tab[c2, 2]] + lbd[c2]
            lbd[v] = acc
        for v in range(E - 1, -1, -1):
            p = parents[t, v]
            acc = 0.0
            if p == R:
                o1, o2 = _others(ch, R, v)
                if o1 >= n:
                    a1, a2 = _others(ch, R, o1)
                    acc += logtheta[tab[o1, 2 if a1 == o2 else 3]] + lbd[o1]
                if o2 >= n:
                    a1, a2 = _others(ch, R, o2)
                    acc += logtheta[tab[o2, 2 if a1 == o1 else 3]] + lbd[o2]
            else:
                s = ch[p, 0] if ch[p, 0] != v else ch[p, 1]
                if s >= n:
                    acc += logtheta[tab[s, 3]] + lbd[s]
                acc += logtheta[tab[p, 5 if s == ch[p, 0] else 6]] + lbu[p]
            lbu[v] = acc
        for v in range(E):
            x = logtheta[tab[v, 0]] + logtheta[tab[v, 4]] + lbu[v]
            if v >= n:
                x += logtheta[tab[v, 1]] + lbd[v]
            out[t, v] = x


@nb.njit(cache=True, nogil=True)
def rooting_counts(parents, table, post, weights, n_taxa, counts):
    """The E-step of SBN-EM: add to ``counts`` the expected number of times each parameter is
    used, ``weights[t] * P(the rooting uses it | T_t)``, given the posterior rooting
    probabilities ``post[t, v]`` (root on the edge above node ``v``).

    A parameter of directed edge ``d`` in context ``c`` is used exactly when the root lies in
    the region of the tree behind ``d`` that ``c`` names (see the module docstring); the
    posterior mass of every such region comes from two passes: ``sdn[v]``, the mass strictly
    below ``v``, and ``sup[v]``, the mass strictly beyond the parent end of ``v``'s edge.
    """
    T = parents.shape[0]
    N = parents.shape[1]
    R = N - 1
    E = N - 1
    n = n_taxa
    ch = np.empty((N, 3), np.int32)
    nch = np.zeros(N, np.int32)
    sdn = np.empty(N)
    sup = np.empty(N)
    for t in range(T):
        w = weights[t]
        if w == 0.0:
            continue
        _children(parents, t, ch, nch)
        tab = table[t]
        q = post[t]
        for v in range(E):
            if v < n:
                sdn[v] = 0.0
            else:
                c1 = ch[v, 0]
                c2 = ch[v, 1]
                sdn[v] = q[c1] + sdn[c1] + q[c2] + sdn[c2]
        for v in range(E - 1, -1, -1):
            p = parents[t, v]
            if p == R:
                o1, o2 = _others(ch, R, v)
                sup[v] = q[o1] + sdn[o1] + q[o2] + sdn[o2]
            else:
                s = ch[p, 0] if ch[p, 0] != v else ch[p, 1]
                sup[v] = q[p] + sup[p] + q[s] + sdn[s]
        for v in range(E):
            p = parents[t, v]
            wq = w * q[v]
            counts[tab[v, 0]] += wq
            counts[tab[v, 4]] += wq
            if v >= n:
                counts[tab[v, 1]] += wq
                if p == R:
                    o1, o2 = _others(ch, R, v)
                    counts[tab[v, 2]] += w * (q[o2] + sdn[o2])
                    counts[tab[v, 3]] += w * (q[o1] + sdn[o1])
                else:
                    s = ch[p, 0] if ch[p, 0] != v else ch[p, 1]
                    counts[tab[v, 2]] += w * (q[p] + sup[p])
                    counts[tab[v, 3]] += w * (q[s] + sdn[s])
                c1 = ch[v, 0]
                c2 = ch[v, 1]
                counts[tab[v, 5]] += w * (q[c2] + sdn[c2])
                counts[tab[v, 6]] += w * (q[c1] + sdn[c1])


@nb.njit(cache=True, nogil=True)
def rooted_logprob(table, logtheta, out):
    """``out[t] = sum of logtheta over the parameters of rooted tree t``."""
    for t in range(table.shape[0]):
        acc = 0.0
        for v in range(table.shape[1]):
            m = table[t, v, 0]
            if m >= 0:
                acc += logtheta[m]
        out[t] = acc


# --------------------------------------------------------------------------------------
# sampling (the canonical form of what is drawn is phylo.trees.topology's)
# --------------------------------------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def sample_rooted(
    cumprob,
    offsets,
    param_sub,
    sub_clades,
    sub_keys,
    clade_leaf,
    root_key,
    n_taxa,
    uniforms,
    out_parent,
    out_params,
):
    """Draw rooted trees top-down from an SBN.

    ``cumprob`` are the cumulative probabilities within each parameter group (group ``k`` is
    ``offsets[k]:offsets[k+1]``); ``param_sub[m]`` the subsplit of parameter ``m``;
    ``sub_clades[s]`` its two clades and ``sub_keys[s, j]`` the parent key of clade ``j``
    under it (``-1`` for a leaf); ``clade_leaf[c]`` the taxon of a singleton clade or ``-1``.
    ``uniforms`` (T, n-1) drive the draws.  Writes a parent array (leaves ``0..n-1``, internal
    nodes ``n..2n-2`` in creation order, root ``n``) and the parameter chosen at each internal
    node.  Returns the number of trees that hit a group without probability (``-1`` rows).
    """
    T = uniforms.shape[0]
    n = n_taxa
    stack_key = np.empty(n, np.int64)
    stack_node = np.empty(n, np.int64)
    bad = 0
    for t in range(T):
        top = 0
        stack_key[0] = root_key
        stack_node[0] = n
        top = 1
        nxt = n + 1
        draw = 0
        out_parent[t, n] = -1
        ok = True
        while top > 0:
            top -= 1
            k = stack_key[top]
            node = stack_node[top]
            a = offsets[k]
            b = offsets[k + 1]
            if b <= a or cumprob[b - 1] <= 0.0:
                ok = False
                break
            u = uniforms[t, draw] * cumprob[b - 1]
            draw += 1
            lo = a
            hi = b - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if cumprob[mid] > u:
                    hi = mid
                else:
                    lo = mid + 1
            m = lo
            out_params[t, node - n] = m
            s = param_sub[m]
            for j in range(2):
                c = sub_clades[s, j]
                leaf = clade_leaf[c]
                if leaf >= 0:
                    out_parent[t, leaf] = node
                else:
                    kk = sub_keys[s, j]
                    if kk < 0:
                        ok = False
                        break
                    out_parent[t, nxt] = node
                    stack_key[top] = kk
                    stack_node[top] = nxt
                    top += 1
                    nxt += 1
            if not ok:
                break
        if not ok:
            bad += 1
            for v in range(out_parent.shape[1]):
                out_parent[t, v] = -1
    return bad


@nb.njit(cache=True, nogil=True)
def group_cumsum(values, offsets, out):
    """Cumulative sums of ``values`` restarting at every group ``offsets[g]:offsets[g+1]``."""
    for g in range(offsets.shape[0] - 1):
        acc = 0.0
        for m in range(offsets[g], offsets[g + 1]):
            acc += values[m]
            out[m] = acc


@nb.njit(cache=True, nogil=True)
def rooting_params(parents, table, n_taxa, out):
    """``out[t, e]``: the ``n-1`` parameter ids of unrooted tree ``t`` rooted on edge ``e``
    (its root split first, then one subsplit per internal node; the table layout is in
    the module docstring)."""
    T = parents.shape[0]
    N = parents.shape[1]
    R = N - 1
    E = N - 1
    n = n_taxa
    ch = np.empty((N, 3), np.int32)
    nch = np.zeros(N, np.int32)
    sk = np.empty(2 * N, np.int64)
    sv = np.empty(2 * N, np.int64)
    sc = np.empty(2 * N, np.int64)
    for t in range(T):
        for v in range(N):
            nch[v] = 0
        for v in range(E):
            p = parents[t, v]
            ch[p, nch[p]] = v
            nch[p] += 1
        for e in range(E):
            j = 0
            out[t, e, j] = table[t, e, 0]
            j += 1
            sk[0] = 0
            sv[0] = e
            sc[0] = 1
            sk[1] = 1
            sv[1] = e
            sc[1] = 4
            top = 2
            while top > 0:
                top -= 1
                kind = sk[top]
                v = sv[top]
                col = sc[top]
                if kind == 0:
                    if v < n:
                        continue
                    out[t, e, j] = table[t, v, col]
                    j += 1
                    for k in range(2):
                        sk[top] = 0
                        sv[top] = ch[v, k]
                        sc[top] = 2
                        top += 1
                else:
                    p = parents[t, v]
                    out[t, e, j] = table[t, v, col]
                    j += 1
                    if p == R:
                        o1, o2 = _others(ch, R, v)
                        a1, a2 = _others(ch, R, o1)
                        sk[top] = 0
                        sv[top] = o1
                        sc[top] = 2 if a1 == o2 else 3
                        top += 1
                        a1, a2 = _others(ch, R, o2)
                        sk[top] = 0
                        sv[top] = o2
                        sc[top] = 2 if a1 == o1 else 3
                        top += 1
                    else:
                        s = ch[p, 0] if ch[p, 0] != v else ch[p, 1]
                        sk[top] = 0
                        sv[top] = s
                        sc[top] = 3
                        top += 1
                        sk[top] = 1
                        sv[top] = p
                        sc[top] = 5 if s == ch[p, 0] else 6
                        top += 1
