"""numba kernels for reading tree samples and for the canonical form of topologies.

Plain functions over byte arrays and integer arrays: no Python objects, no I/O.  The typed
wrappers are in :mod:`phylo.trees.newick`, :mod:`phylo.trees.reader` and
:mod:`phylo.trees.topology`.

Canonical form of a binary topology on ``n`` taxa (what :func:`canonicalise` writes, for the
Newick parser and for every other source of trees):

* leaves are nodes ``0..n-1`` in taxon order;
* internal nodes are numbered ``n, n+1, ...`` in postorder, visiting children in increasing
  order of the smallest taxon below them, so every child has a smaller index than its parent;
* unrooted (``2n-2`` nodes): the root is the internal node adjacent to taxon 0 (three
  children); rooted (``2n-1`` nodes): the root is the input's root (two children);
* the root is the last node and its parent is ``-1``.

Two trees give the same canonical parent array exactly when they have the same topology
(unrooted: wherever the input puts its root), so the array is the topology's key.
:func:`canonicalise` also returns an edge map, from each canonical edge to the input edge (or
the two input edges joined at a suppressed root) it stands for, so branch lengths follow.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Error codes of the kernels (messages in phylo.trees.newick.ERROR_MESSAGES).
OK = 0
E_COMMENT = 1  # unterminated [comment]
E_SUBTREE = 2  # expected '(' or a taxon name
E_CLOSE = 3  # ')' without a matching '('
E_OPEN = 4  # ';' or end with unclosed '('
E_AFTER_NODE = 5  # expected ',', ')', ':' or ';'
E_QUOTE = 6  # unterminated quoted label
E_LENGTH = 7  # ':' not followed by a number
E_UNKNOWN = 8  # unknown taxon (aux = end of the label)
E_DUPLICATE = 9  # taxon twice in one tree (aux = taxon index)
E_MISSING = 10  # fewer taxa than expected (aux = number of leaves)
E_SINGLE_CHILD = 11  # internal node with one child
E_POLYTOMY = 12  # node with more children than a binary tree allows
E_ROOT3 = 13  # rooted reading of a tree whose root has three children
E_NO_SEMICOLON = 14  # tree statement without a terminating ';'
E_TOO_MANY_NODES = 15  # more nodes than a binary tree on n taxa has
E_TRAILING = 16  # text after the tree's closing ')' that is not a label, length or ';'
E_FEW_TAXA = 17  # fewer than 3 taxa in all
E_NOT_TREE = 18  # a parent array that is not one tree (cycle, several roots, ...)
E_STMT_EQUALS = 20  # tree statement without '='
E_STMT_COMMAND = 21  # unexpected command in a trees block
E_STMT_NAME = 22  # tree statement without a name
E_ROW_CELLS = 23  # a row of a tree table with another number of cells than its header
E_ROW_ITERATION = 24  # a row of a tree table whose iteration is not a whole number

FNV_OFFSET = np.uint64(14695981039346656037)
FNV_PRIME = np.uint64(1099511628211)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _char_classes():
    cls = np.zeros(256, np.uint8)
    for c in (9, 10, 11, 12, 13, 32):
        cls[c] = 1  # blank
    for c in range(256):
        if cls[c] == 0 and chr(c) not in "()[]':;,":
            cls[c] = 2  # may be part of an unquoted label
    for c in b"0123456789.":
        cls[c] = 6  # digit or point (also a label character)
    return cls


_CLASS = _char_classes()


@nb.njit(cache=True, nogil=True)
def _is_space(c):
    return _CLASS[c] == 1


@nb.njit(cache=True, nogil=True)
def _is_label_char(c):
    # False for blanks and the characters ( ) [ ] ' : ; , which end an unquoted label
    return _CLASS[c] >= 2


@nb.njit(cache=True, nogil=True)
def skip_blank(buf, i, end):
    """Skip whitespace and (nested) [comments]; return the new position or ``-(start+1)``
    of an unterminated comment."""
    while i < end:
        c = buf[i]
        if _is_space(c):
            i += 1
        elif c == 91:  # '['
            depth = 1
            j = i + 1
            while j < end and depth > 0:
                d = buf[j]
                if d == 91:
                    depth += 1
                elif d == 93:
                    depth -= 1
                j += 1
            if depth > 0:
                return -(i + 1)
            i = j
        else:
            break
    return i


@nb.njit(cache=True, nogil=True)
def hash_bytes(data):
    """FNV-1a hash of a byte array (the key of a normalised taxon label)."""
    h = FNV_OFFSET
    for k in range(data.shape[0]):
        h = (h ^ np.uint64(data[k])) * FNV_PRIME
    return h


@nb.njit(cache=True, nogil=True)
def _scan_label(buf, i, end):
    """Scan a label starting at ``i``.

    Returns ``(next_position, hash, error)``.  Labels are normalised before hashing:
    quoted labels ('...') have '' read as a single quote, and in every label '_' is read as
    a blank.  The hash is over the normalised label, as :func:`hash_bytes` computes it.  An
    apostrophe inside an unquoted label (``Brown's_rat``) belongs to the label, as dendropy
    and ape read it; only a quote at the start of a label opens a quoted label.
    """
    h = FNV_OFFSET
    if buf[i] == 39:  # quoted
        j = i + 1
        while True:
            if j >= end:
                return i, h, E_QUOTE
            c = buf[j]
            if c == 39:
                if j + 1 < end and buf[j + 1] == 39:
                    h = (h ^ np.uint64(39)) * FNV_PRIME
                    j += 2
                    continue
                return j + 1, h, OK
            if c == 95:
                c = 32
            h = (h ^ np.uint64(c)) * FNV_PRIME
            j += 1
    j = i
    while j < end and (_is_label_char(buf[j]) or buf[j] == 39):
        c = buf[j]
        if c == 95:
            c = 32
        h = (h ^ np.uint64(c)) * FNV_PRIME
        j += 1
    return j, h, OK


@nb.njit(cache=True, nogil=True)
def _scan_number(buf, i, end):
    """Scan a branch length; return the end of the number (``i`` when there is none)."""
    j = i
    if j < end and (buf[j] == 43 or buf[j] == 45):  # + -
        j += 1
    j0 = j
    points = 0
    while j < end and _CLASS[buf[j]] == 6:
        if buf[j] == 46:
            points += 1
        j += 1
    if j == j0 or points > 1 or (j == j0 + 1 and points == 1):
        return i
    if j < end and (buf[j] == 101 or buf[j] == 69):  # e E
        k = j + 1
        if k < end and (buf[k] == 43 or buf[k] == 45):
            k += 1
        e0 = k
        while k < end and buf[k] >= 48 and buf[k] <= 57:
            k += 1
        if k > e0:
            j = k
    # anything label-like glued to the number (e.g. "0.1x") is not a number
    if j < end and _is_label_char(buf[j]):
        return i
    return j


@nb.njit(cache=True, nogil=True)
def label_table(key_hashes, key_taxa):
    """An open-addressing hash table of label hashes: ``(slot hashes, slot taxa, shift)``,
    at most a quarter full, for :func:`_parse_raw`'s lookups (slot ``(h * G) >> shift``,
    then the following slots)."""
    K = key_hashes.shape[0]
    bits = 4
    while (1 << bits) < 4 * K:
        bits += 1
    size = 1 << bits
    shift = np.uint64(64 - bits)
    th = np.zeros(size, np.uint64)
    tt = np.full(size, -1, np.int64)
    for k in range(K):
        s = np.int64((key_hashes[k] * GOLDEN) >> shift)
        while tt[s] >= 0:
            s = (s + 1) & (size - 1)
        th[s] = key_hashes[k]
        tt[s] = key_taxa[k]
    return th, tt, shift


# Parser states of _parse_raw
_S_START = 0  # before the first '('
_S_SUB = 1  # a subtree must follow: '(' or a taxon
_S_NODE = 2  # after a leaf: ':' length, ',', ')' or ';'
_S_CLOSED = 3  # after ')': an internal label may follow, then as _S_NODE
_S_LEN = 4  # after ':': a number must follow
_S_AFTER_LEN = 5  # after a length: ',', ')' or ';'

ZERO_LENGTH = -2  # span start of a branch whose length is zero by construction


# a call, not inlined into the parser in numba's IR: that inlining cost half a second of
# a first run's compiling and measured no faster (LLVM still inlines what pays)
@nb.njit(cache=True, nogil=True)
def _parse_raw(buf, start, end, n_taxa, th, tt, shift, rparent, rnchild, rlen, seen):
    """Parse one Newick string into a parent array that :func:`canonicalise` accepts.

    Taxon ``t`` is node ``t``; internal nodes are ``n, n+1, ...`` in order of appearance (the
    Newick root is node ``n``).  Returns ``(error, position, aux, n_nodes)``; the nodes are
    ``0 .. n_nodes-1`` when the error is :data:`OK`.  ``rlen[v]`` holds the byte span of the
    length of the edge above node ``v`` (``-1`` when absent, :data:`ZERO_LENGTH` for a
    sampled ancestor's zero-length branch).

    A node with one child followed by a taxon's name (``(A:2)B:1``, as older RevBayes writes
    a sampled ancestor of a fossilized-birth-death tree) is read as that taxon on a branch of
    length zero beside the child (``(A:2,B:0):1``), the form RevBayes and BEAST write today.

    One loop over the bytes with a state: blanks and comments are skipped in one place, and
    no helper is called (a call with an array costs two atomic reference counts in numba).
    """
    cap = rparent.shape[0]
    mask = th.shape[0] - 1
    for t in range(n_taxa):
        seen[t] = False
    root = n_taxa
    m = 0
    nxt = n_taxa + 1
    cur = -1
    node = -1
    n_leaves = 0
    close_pos = -1  # ')' of a node with a single child, until a taxon label follows
    state = _S_START
    i = start
    while True:
        # blanks and (nested) comments
        while i < end:
            c = buf[i]
            if _CLASS[c] == 1:
                i += 1
            elif c == 91:  # '['
                depth = 1
                j = i + 1
                while j < end:
                    d = buf[j]
                    if d == 91:
                        depth += 1
                    elif d == 93:
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                if depth > 0:
                    return E_COMMENT, i, 0, m
                i = j + 1
            else:
                break
        if i >= end:
            if close_pos >= 0:
                return E_SINGLE_CHILD, close_pos, 0, m
            if state == _S_START:
                return E_SUBTREE, i, 0, 0
            if state == _S_SUB:
                return E_OPEN, i, 0, m
            if state == _S_LEN:
                return E_LENGTH, i, 0, m
            if cur >= 0 and node != root:
                return E_OPEN, i, 0, m
            return E_NO_SEMICOLON, i, 0, m
        c = buf[i]
        if state == _S_START:
            if c != 40:
                return E_SUBTREE, i, 0, 0
            rparent[root] = -1
            rnchild[root] = 0
            rlen[root, 0] = -1
            rlen[root, 1] = -1
            m = 1
            cur = root
            node = root
            state = _S_SUB
            i += 1
            continue
        if state == _S_LEN:
            # [+-]digits[.digits][(e|E)[+-]digits], nothing label-like glued to it
            j = i
            if buf[j] == 43 or buf[j] == 45:
                j += 1
            j0 = j
            points = 0
            while j < end:
                d = buf[j]
                if d >= 48 and d <= 57:
                    j += 1
                elif d == 46:
                    points += 1
                    j += 1
                else:
                    break
            if j == j0 or points > 1 or (j == j0 + 1 and points == 1):
                return E_LENGTH, i, 0, m
            if j < end and (buf[j] == 101 or buf[j] == 69):
                k = j + 1
                if k < end and (buf[k] == 43 or buf[k] == 45):
                    k += 1
                e0 = k
                while k < end and buf[k] >= 48 and buf[k] <= 57:
                    k += 1
                if k > e0:
                    j = k
            if j < end and _CLASS[buf[j]] >= 2:
                return E_LENGTH, i, 0, m
            rlen[node, 0] = i
            rlen[node, 1] = j
            i = j
            state = _S_AFTER_LEN
            continue
        if state == _S_SUB:
            if m >= cap:
                return E_TOO_MANY_NODES, i, 0, m
            k = rnchild[cur]
            if k >= 3:
                return E_POLYTOMY, i, 0, m
            if c == 40:  # '(' opens an internal node
                if nxt >= cap:
                    return E_TOO_MANY_NODES, i, 0, m
                node = nxt
                nxt += 1
                m += 1
                rparent[node] = cur
                rnchild[node] = 0
                rlen[node, 0] = -1
                rlen[node, 1] = -1
                rnchild[cur] = k + 1
                cur = node
                i += 1
                continue
            if not (c == 39 or _CLASS[c] >= 2):
                return E_SUBTREE, i, 0, m
        if (state == _S_SUB or state == _S_CLOSED) and (c == 39 or _CLASS[c] >= 2):
            # a label: '_' reads as a blank, '' in a quoted label as one quote; an
            # apostrophe inside an unquoted label is part of it
            h = FNV_OFFSET
            if c == 39:
                j = i + 1
                closed = False
                while j < end:
                    d = buf[j]
                    if d == 39:
                        if j + 1 < end and buf[j + 1] == 39:
                            h = (h ^ np.uint64(39)) * FNV_PRIME
                            j += 2
                            continue
                        closed = True
                        j += 1
                        break
                    if d == 95:
                        d = 32
                    h = (h ^ np.uint64(d)) * FNV_PRIME
                    j += 1
                if not closed:
                    return E_QUOTE, i, 0, m
            else:
                j = i
                while j < end:
                    d = buf[j]
                    if _CLASS[d] >= 2 or d == 39:
                        if d == 95:
                            d = 32
                        h = (h ^ np.uint64(d)) * FNV_PRIME
                        j += 1
                    else:
                        break
            s = np.int64((h * GOLDEN) >> shift)
            t = -1
            while tt[s] >= 0:
                if th[s] == h:
                    t = tt[s]
                    break
                s = (s + 1) & mask
            if state == _S_SUB:
                if t < 0:
                    return E_UNKNOWN, i, j, m
                if seen[t]:
                    return E_DUPLICATE, i, t, m
                seen[t] = True
                n_leaves += 1
                m += 1
                rparent[t] = cur
                rlen[t, 0] = -1
                rlen[t, 1] = -1
                rnchild[cur] += 1
                node = t
                i = j
                state = _S_NODE
                continue
            # the label of an internal node: ignored (a support value), unless the node has
            # a single child and the label names a taxon: a sampled ancestor
            if close_pos >= 0:
                if t < 0 or seen[t] or m >= cap:
                    return E_SINGLE_CHILD, close_pos, 0, m
                seen[t] = True
                n_leaves += 1
                m += 1
                rparent[t] = node
                rlen[t, 0] = ZERO_LENGTH
                rlen[t, 1] = ZERO_LENGTH
                rnchild[node] += 1
                close_pos = -1
            i = j
            state = _S_NODE
            continue
        if state == _S_CLOSED:
            if close_pos >= 0:
                return E_SINGLE_CHILD, close_pos, 0, m
            state = _S_NODE
        # after a node (_S_NODE: a length may follow; _S_AFTER_LEN)
        if c == 58 and state == _S_NODE:  # ':'
            state = _S_LEN
            i += 1
            continue
        if c == 44:  # ','
            if node == root:
                return E_AFTER_NODE, i, 0, m
            state = _S_SUB
            i += 1
            continue
        if c == 41:  # ')' closes cur
            if node == root or cur < 0:
                return E_CLOSE, i, 0, m
            nc = rnchild[cur]
            if nc < 2:
                if nc == 0:
                    return E_SINGLE_CHILD, i, 0, m
                close_pos = i
            node = cur
            cur = rparent[cur]
            state = _S_CLOSED
            i += 1
            continue
        if c == 59:  # ';'
            if node != root:
                return E_OPEN, i, 0, m
            break
        if node == root:
            return E_TRAILING, i, 0, m
        return E_AFTER_NODE, i, 0, m
    if n_leaves < n_taxa:
        return E_MISSING, start, n_leaves, m
    return OK, i, 0, m


@nb.njit(cache=True, nogil=True)
def _not_tree_or(parent, m, n, code):
    """:data:`E_NOT_TREE` when ``parent[0:m]`` is not one tree at all (no root or several,
    a parent out of range or a taxon), else ``code``: the first problem found is named
    after the worst one."""
    roots = 0
    for v in range(m):
        p = parent[v]
        if p < 0:
            roots += 1
            if p != -1:
                return E_NOT_TREE
        elif p < n or p >= m or p == v:
            return E_NOT_TREE
    return code if roots == 1 else E_NOT_TREE


@nb.njit(cache=True, nogil=True, inline="always")
def _place(c, k, v, u, hi, n, size, newid, edge_a, edge_b, out_parent, out_edge):
    """Number child ``c`` (adjacency slot ``k``) of node ``v`` (canonical id ``u``): a taxon
    keeps its index, an internal node takes ``hi``, the top of the block of ids its subtree
    fills.  Writes its parent and edge; returns the top of the next block down."""
    if c < n:
        x = c
    else:
        x = hi
        hi -= size[c]
    newid[c] = x
    out_parent[x] = u
    out_edge[x, 0] = edge_a[v, k]
    out_edge[x, 1] = edge_b[v, k]
    return hi


# inlined into the parser's loop, which measured 3-5% faster than a call on 50 taxa
@nb.njit(cache=True, nogil=True, inline="always")
def canonicalise(
    parent,
    m,
    n_taxa,
    rooted,
    adj,
    edge_a,
    edge_b,
    deg,
    opar,
    order,
    minleaf,
    newid,
    size,
    out_parent,
    out_edge,
):
    """Canonical parent array of one binary tree given by any parent array.

    Input: ``parent[0:m]``, where nodes ``0..n-1`` are the taxa and nodes ``n..m-1`` the
    internal nodes in any order; the root is the node whose parent is ``-1`` (two children,
    or three for an unrooted tree).  Output: the canonical parent array (module docstring)
    in ``out_parent`` (``2n-1`` nodes when ``rooted``, else ``2n-2``: a bifurcating root is
    suppressed and its two edges become one).

    The edge map ``out_edge[u] = (a, b)`` says where the edge above canonical node ``u``
    comes from: it is the input edge above node ``a``, or, where a suppressed root joined two
    edges, the input edges above ``a`` and ``b`` together (``b = -1`` otherwise; both ``-1``
    for the root).  Lengths follow as ``length[u] = in_length[a] (+ in_length[b])``.

    The numbering is found in two passes over the tree oriented from its new root: children
    first, the smallest taxon and the number of internal nodes below each node; then parents
    first, each node's children in increasing order of their smallest taxon take the ids just
    below their parent's, the last child's subtree highest (postorder read backwards).

    Work arrays have at least ``m`` rows (``adj``, ``edge_a``, ``edge_b``: three columns).
    Returns :data:`OK` or an error code: :data:`E_NOT_TREE` (not one tree: parents out of
    range, a taxon with children, no root or several, a cycle), :data:`E_SINGLE_CHILD`,
    :data:`E_POLYTOMY`, :data:`E_ROOT3`.
    """
    n = n_taxa
    N = out_parent.shape[0]
    for v in range(m):
        deg[v] = 0
    # undirected adjacency; edge_a/edge_b: the input edges an adjacency stands for
    root = -1
    for v in range(m):
        p = parent[v]
        if p < 0:
            if p != -1 or root >= 0:
                return E_NOT_TREE
            root = v
            continue
        if p < n or p >= m or p == v:
            return E_NOT_TREE
        if deg[v] >= 3 or deg[p] >= 3:
            return _not_tree_or(parent, m, n, E_POLYTOMY)
        adj[v, deg[v]] = p
        edge_a[v, deg[v]] = v
        edge_b[v, deg[v]] = -1
        deg[v] += 1
        adj[p, deg[p]] = v
        edge_a[p, deg[p]] = v
        edge_b[p, deg[p]] = -1
        deg[p] += 1
    if root < n:  # no root, or a taxon as the root
        return E_NOT_TREE
    nroot = deg[root]
    if nroot < 2:
        return E_SINGLE_CHILD
    if rooted and nroot == 3:
        return E_ROOT3
    suppress = (not rooted) and nroot == 2
    if suppress:
        # join the root's two edges into one edge between its children
        rc0 = adj[root, 0]
        rc1 = adj[root, 1]
        for k in range(deg[rc0]):
            if adj[rc0, k] == root:
                adj[rc0, k] = rc1
                edge_a[rc0, k] = rc0
                edge_b[rc0, k] = rc1
        for k in range(deg[rc1]):
            if adj[rc1, k] == root:
                adj[rc1, k] = rc0
                edge_a[rc1, k] = rc0
                edge_b[rc1, k] = rc1
    start = root if rooted else adj[0, 0]
    # orient away from the new root (breadth first: `order` lists parents before children)
    for v in range(m):
        opar[v] = -2
    opar[start] = -1
    order[0] = start
    cnt = 1
    head = 0
    while head < cnt:
        v = order[head]
        head += 1
        for k in range(deg[v]):
            w = adj[v, k]
            if opar[w] == -2:
                opar[w] = v
                order[cnt] = w
                cnt += 1
    if cnt != m - (1 if suppress else 0):
        return E_NOT_TREE  # not connected: a cycle somewhere
    if cnt != N:
        return E_POLYTOMY if cnt < N else E_SINGLE_CHILD
    # smallest taxon and number of internal nodes below each node (children first)
    for q in range(cnt - 1, -1, -1):
        v = order[q]
        if v < n:
            minleaf[v] = v
            size[v] = 0
        else:
            mn = n
            sz = 1
            for k in range(deg[v]):
                w = adj[v, k]
                if w != opar[v]:
                    if minleaf[w] < mn:
                        mn = minleaf[w]
                    sz += size[w]
            minleaf[v] = mn
            size[v] = sz
    # number top-down (parents before children): in postorder a node comes right after the
    # subtree of its last child, which comes right after that of the child before it
    newid[start] = N - 1
    out_parent[N - 1] = -1
    out_edge[N - 1, 0] = -1
    out_edge[N - 1, 1] = -1
    for q in range(cnt):
        v = order[q]
        if v < n:
            continue
        c0 = -1
        c1 = -1
        c2 = -1
        k0 = -1
        k1 = -1
        k2 = -1
        nc = 0
        for k in range(deg[v]):
            w = adj[v, k]
            if w == opar[v]:
                continue
            if nc == 0:
                c0 = w
                k0 = k
            elif nc == 1:
                c1 = w
                k1 = k
            else:
                c2 = w
                k2 = k
            nc += 1
        if nc < 2:
            return E_SINGLE_CHILD
        if nc == 3 and (rooted or v != start):
            return E_POLYTOMY
        # children in increasing order of their smallest taxon
        if minleaf[c1] < minleaf[c0]:
            c0, c1 = c1, c0
            k0, k1 = k1, k0
        if nc == 3:
            if minleaf[c2] < minleaf[c1]:
                c1, c2 = c2, c1
                k1, k2 = k2, k1
            if minleaf[c1] < minleaf[c0]:
                c0, c1 = c1, c0
                k0, k1 = k1, k0
        u = newid[v]
        hi = u - 1
        if nc == 3:
            hi = _place(c2, k2, v, u, hi, n, size, newid, edge_a, edge_b, out_parent, out_edge)
        hi = _place(c1, k1, v, u, hi, n, size, newid, edge_a, edge_b, out_parent, out_edge)
        _place(c0, k0, v, u, hi, n, size, newid, edge_a, edge_b, out_parent, out_edge)
    return OK


@nb.njit(cache=True, nogil=True)
def canonicalise_many(parents, n_taxa, rooted, out_parent, out_edge):
    """:func:`canonicalise` for each row of ``parents`` (``(T, M)``, int64).

    ``out_parent`` is ``(T, N)`` int32, ``out_edge`` ``(T, N, 2)`` int64.  Returns
    ``(t, error)``: the first tree that is not a binary tree and why (``(T, OK)`` when all
    are).
    """
    T = parents.shape[0]
    M = parents.shape[1]
    adj = np.empty((M, 3), np.int64)
    edge_a = np.empty((M, 3), np.int64)
    edge_b = np.empty((M, 3), np.int64)
    deg = np.empty(M, np.int64)
    opar = np.empty(M, np.int64)
    order = np.empty(M, np.int64)
    minleaf = np.empty(M, np.int64)
    newid = np.empty(M, np.int64)
    size = np.empty(M, np.int64)
    for t in range(T):
        err = canonicalise(
            parents[t],
            M,
            n_taxa,
            rooted,
            adj,
            edge_a,
            edge_b,
            deg,
            opar,
            order,
            minleaf,
            newid,
            size,
            out_parent[t],
            out_edge[t],
        )
        if err != OK:
            return t, err
    return T, OK


@nb.njit(cache=True, nogil=True)
def _hash_row(row):
    h = np.uint64(0x9E3779B97F4A7C15)
    for k in range(row.shape[0]):
        x = np.uint64(row[k] + 1) + h
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = x ^ (x >> np.uint64(31))
    return h


@nb.njit(cache=True, nogil=True)
def _parse_scratch(n_taxa, n_nodes):
    """Work arrays of :func:`_parse_one`."""
    cap = 2 * n_taxa + 1
    return (
        np.empty(cap, np.int64),  # rparent
        np.empty(cap, np.int64),  # rnchild
        np.empty((cap, 2), np.int64),  # rlen
        np.empty(n_taxa, np.bool_),  # seen
        np.empty((cap, 3), np.int64),  # adj
        np.empty((cap, 3), np.int64),  # edge_a
        np.empty((cap, 3), np.int64),  # edge_b
        np.empty(cap, np.int64),  # deg
        np.empty(cap, np.int64),  # opar
        np.empty(cap, np.int64),  # order
        np.empty(cap, np.int64),  # minleaf
        np.empty(cap, np.int64),  # newid
        np.empty(cap, np.int64),  # size
        np.empty((n_nodes, 2), np.int64),  # out_edge
    )


@nb.njit(cache=True, nogil=True)
def _parse_one(
    buf, start, end, n_taxa, th, tt, shift, rooted, want_lengths, parent, out_hash, out_len,
    out_haslen, k, scratch,
):  # fmt: skip
    """Parse the Newick string at ``buf[start:end]`` (it ends at its first ';') into tree
    ``k`` of the outputs of :func:`parse_trees`.  Returns ``(error, position, aux)``; the
    position of the ';' when the error is :data:`OK`."""
    (
        rparent, rnchild, rlen, seen, adj, edge_a, edge_b, deg, opar, order, minleaf, newid,
        size, out_edge,
    ) = scratch  # fmt: skip
    n_nodes = parent.shape[0]
    err, pos, aux, m = _parse_raw(
        buf, start, end, n_taxa, th, tt, shift, rparent, rnchild, rlen, seen
    )
    if err != OK:
        return err, pos, aux
    nroot = rnchild[n_taxa]
    if rooted and nroot == 3:
        return E_ROOT3, start, 0
    expected = 2 * n_taxa - 1 if (rooted or nroot == 2) else 2 * n_taxa - 2
    if m != expected:
        # a multifurcation somewhere below the root
        return E_POLYTOMY, start, 0
    have = 0
    zero = 0
    for v in range(m):
        if v != n_taxa:
            if rlen[v, 0] >= 0:
                have += 1
            elif rlen[v, 0] == ZERO_LENGTH:
                zero += 1
    out_haslen[k] = 0 if have == 0 else (1 if have + zero == m - 1 else 2)
    err = canonicalise(
        rparent, m, n_taxa, rooted, adj, edge_a, edge_b, deg, opar, order, minleaf, newid,
        size, parent, out_edge,
    )  # fmt: skip
    if err != OK:
        return err, start, 0
    out_hash[k] = _hash_row(parent)
    if want_lengths:
        for v in range(n_nodes):
            a = out_edge[v, 0]
            b = out_edge[v, 1]
            if a >= 0:
                out_len[k, v, 0] = rlen[a, 0]
                out_len[k, v, 1] = rlen[a, 1]
            else:
                out_len[k, v, 0] = -1
                out_len[k, v, 1] = -1
            if b >= 0:
                out_len[k, v, 2] = rlen[b, 0]
                out_len[k, v, 3] = rlen[b, 1]
            else:
                out_len[k, v, 2] = -1
                out_len[k, v, 3] = -1
    return OK, pos, 0


@nb.njit(cache=True, nogil=True)
def parse_trees(
    buf,
    starts,
    ends,
    n_taxa,
    key_hashes,
    key_taxa,
    rooted,
    want_lengths,
    out_parent,
    out_hash,
    out_len,
    out_haslen,
):
    """Parse ``len(starts)`` Newick strings ``buf[starts[k]:ends[k]+1]`` (each ending at ';').

    Writes the canonical parent array of tree ``k`` into ``out_parent[k]`` and its hash into
    ``out_hash[k]``; when ``want_lengths``, ``out_len[k, v]`` holds the byte spans
    ``(start, end, start2, end2)`` of the length of the edge above canonical node ``v``
    (``-1`` when absent, :data:`ZERO_LENGTH` for a sampled ancestor's branch; the second
    span is used where a root of degree two was suppressed).  ``out_haslen[k]`` says which
    branches of the tree as written (the root's excepted) have a length: 0 none, 1 all,
    2 some.  ``key_hashes`` (sorted) and ``key_taxa`` map label hashes to taxa.

    Returns ``(k, error, position, aux)``: the index of the first bad tree (``len(starts)``
    when all are good) and its error.
    """
    n_trees = starts.shape[0]
    th, tt, shift = label_table(key_hashes, key_taxa)
    scratch = _parse_scratch(n_taxa, out_parent.shape[1])
    for k in range(n_trees):
        err, pos, aux = _parse_one(
            buf,
            starts[k],
            ends[k] + 1,
            n_taxa,
            th,
            tt,
            shift,
            rooted,
            want_lengths,
            out_parent[k],
            out_hash,
            out_len,
            out_haslen,
            k,
            scratch,
        )
        if err != OK:
            return k, err, pos, aux
    return n_trees, OK, 0, 0


@nb.njit(cache=True, nogil=True)
def prune_taxa(parents, lengths, n, keep, n_keep, rooted, tol, out_parent, out_len, out_hash):
    """Reduce trees to the taxa ``keep`` marks (with ``tol >= 0``: checking that they are the
    extant ones).

    ``parents`` is ``(T, N)`` canonical parent arrays on ``n`` taxa (rooted, or unrooted
    when ``rooted`` is false and no check is asked) and ``lengths`` their branch lengths;
    ``keep[i]`` is the new index of taxon ``i`` or ``-1``.  With ``tol >= 0`` (rooted
    trees), a taxon must be kept exactly when its height (the largest root-to-tip distance
    minus its own) is at most ``tol`` times the tree's height: the extant taxa of a time
    tree.  The other leaves are removed, then every node left with no taxon below it, and
    every node left with one child (its two branches become one, their lengths added); the
    root moves down while it has one child (its branch is dropped).  The result is written
    in canonical form on ``n_keep`` taxa (rooted, or unrooted: ``2 n_keep - 2`` nodes) with
    its lengths and hash.

    Returns ``(t, taxon, error)``: the first tree whose extant taxa differ from ``keep``
    (``taxon`` one that differs, error -1), or a tree :func:`canonicalise` rejects (its
    error), or ``(T, -1, OK)``.
    """
    T = parents.shape[0]
    N = parents.shape[1]
    M = 2 * n_keep - 1
    dist = np.empty(N)
    kc = np.empty(N, np.int64)
    nkids = np.empty(N, np.int64)
    newid = np.empty(N, np.int64)
    rp = np.empty(M, np.int64)
    rl = np.empty(M)
    adj = np.empty((M, 3), np.int64)
    edge_a = np.empty((M, 3), np.int64)
    edge_b = np.empty((M, 3), np.int64)
    deg = np.empty(M, np.int64)
    opar = np.empty(M, np.int64)
    order = np.empty(M, np.int64)
    minleaf = np.empty(M, np.int64)
    nid = np.empty(M, np.int64)
    size = np.empty(M, np.int64)
    out_edge = np.empty((out_parent.shape[1], 2), np.int64)
    for t in range(T):
        par = parents[t]
        ln = lengths[t]
        root = N - 1
        dist[root] = 0.0
        for v in range(N - 2, -1, -1):  # parents before children
            dist[v] = dist[par[v]] + ln[v]
        if tol >= 0:
            top = 0.0
            for i in range(n):
                if dist[i] > top:
                    top = dist[i]
            for i in range(n):
                extant = top - dist[i] <= tol * top
                if extant != (keep[i] >= 0):
                    return t, i, -1
        for v in range(N):
            kc[v] = 0
            nkids[v] = 0
        for i in range(n):
            if keep[i] >= 0:
                kc[i] = 1
        for v in range(N - 1):  # children before parents
            if kc[v] > 0:
                kc[par[v]] += kc[v]
                nkids[par[v]] += 1
        # the new root: the highest node with two children left
        r = root
        while nkids[r] == 1:
            for v in range(r - 1, -1, -1):
                if par[v] == r and kc[v] > 0:
                    r = v
                    break
        nxt = n_keep
        for v in range(N):
            newid[v] = -1
        for i in range(n):
            if keep[i] >= 0:
                newid[i] = keep[i]
        for v in range(n, N):
            if kc[v] > 0 and nkids[v] >= 2 and v <= r:
                newid[v] = nxt
                nxt += 1
        for v in range(N):
            u = newid[v]
            if u < 0:
                continue
            if v == r:
                rp[u] = -1
                rl[u] = 0.0
                continue
            acc = ln[v]
            p = par[v]
            while p != r and nkids[p] == 1:
                acc += ln[p]
                p = par[p]
            rp[u] = newid[p]
            rl[u] = acc
        err = canonicalise(
            rp,
            nxt,
            n_keep,
            rooted,
            adj,
            edge_a,
            edge_b,
            deg,
            opar,
            order,
            minleaf,
            nid,
            size,
            out_parent[t],
            out_edge,
        )
        if err != OK:
            return t, -1, err
        for u in range(out_parent.shape[1]):
            a = out_edge[u, 0]
            b = out_edge[u, 1]
            x = 0.0
            if a >= 0:
                x = rl[a]
            if b >= 0:
                x += rl[b]
            out_len[t, u] = x
        out_hash[t] = _hash_row(out_parent[t])
    return T, -1, OK


@nb.njit(cache=True, nogil=True)
def leaf_labels(buf, start, end, out):
    """Byte spans of the leaf labels of one Newick string, in order of appearance.

    ``out[k] = (start, end, flags)``: flag 1 for a quoted label, 2 for the label of a node
    with one child (a sampled ancestor, see :func:`_parse_raw`).  Returns
    ``(count, error, position)``; the structure is checked only as far as needed to find
    the labels.
    """
    n = 0
    i = skip_blank(buf, start, end)
    if i < 0:
        return 0, E_COMMENT, -i - 1
    expect = True
    depth = 0
    kids = np.zeros(end - start + 2, np.int64)  # children so far of the open node at each depth
    while i < end:
        i = skip_blank(buf, i, end)
        if i < 0:
            return n, E_COMMENT, -i - 1
        if i >= end:
            break
        c = buf[i]
        if c == 40:
            if depth > 0:
                kids[depth] += 1
            depth += 1
            kids[depth] = 0
            expect = True
            i += 1
        elif c == 44:
            expect = True
            i += 1
        elif c == 41:
            single = depth > 0 and kids[depth] == 1
            depth -= 1
            expect = False
            i += 1
            i = skip_blank(buf, i, end)
            if i < 0:
                return n, E_COMMENT, -i - 1
            if i < end and (buf[i] == 39 or _is_label_char(buf[i])):
                j, h, err = _scan_label(buf, i, end)
                if err != OK:
                    return n, err, i
                if single:  # a sampled ancestor (flag 2)
                    if n >= out.shape[0]:
                        return n, E_TOO_MANY_NODES, i
                    out[n, 0] = i
                    out[n, 1] = j
                    out[n, 2] = (1 if buf[i] == 39 else 0) + 2
                    n += 1
                i = j
        elif c == 58:
            j = _scan_number(buf, skip_blank(buf, i + 1, end), end)
            i = max(j, i + 1)
        elif c == 59:
            break
        elif c == 39 or _is_label_char(c):
            j, h, err = _scan_label(buf, i, end)
            if err != OK:
                return n, err, i
            if expect:
                if n >= out.shape[0]:
                    return n, E_TOO_MANY_NODES, i
                if depth > 0:
                    kids[depth] += 1
                out[n, 0] = i
                out[n, 1] = j
                out[n, 2] = 1 if c == 39 else 0
                n += 1
            expect = False
            i = j
        else:
            i += 1
    return n, OK, i


@nb.njit(cache=True, nogil=True)
def _lower(c):
    if c >= 65 and c <= 90:
        return c + 32
    return c


@nb.njit(cache=True, nogil=True)
def _comment_flag(buf, i, end):
    """Inspect the comment starting at ``buf[i] == '['``.

    Returns ``(kind, value_start, value_end)``: kind 1 for [&R], 2 for [&U], 3 for [&W x]
    (value span of x), 0 otherwise.
    """
    j = i + 1
    while j < end and _is_space(buf[j]):
        j += 1
    if j + 1 < end and buf[j] == 38:  # '&'
        c = _lower(buf[j + 1])
        after = buf[j + 2] if j + 2 < end else 93
        if c == 114 and (after == 93 or _is_space(after)):
            return 1, 0, 0
        if c == 117 and (after == 93 or _is_space(after)):
            return 2, 0, 0
        if c == 119 and (after == 93 or _is_space(after)):
            k = j + 2
            while k < end and _is_space(buf[k]):
                k += 1
            e = k
            while e < end and buf[e] != 93 and not _is_space(buf[e]):
                e += 1
            return 3, k, e
    return 0, 0, 0


@nb.njit(cache=True, nogil=True)
def _find_semicolon(buf, i, end):
    """Position of the ';' ending the statement that starts at ``i`` (quoted labels and
    comments skipped), or -1 when the buffer ends first.  A quote opens a quoted label only
    at the start of a token: after a label character it is an apostrophe in the label."""
    start = i
    while i < end:
        c = buf[i]
        if c == 59:
            return i
        if c == 91:
            depth = 1
            i += 1
            while i < end and depth > 0:
                d = buf[i]
                if d == 91:
                    depth += 1
                elif d == 93:
                    depth -= 1
                i += 1
            if depth > 0:
                return -1
            continue
        if c == 39 and (i == start or _CLASS[buf[i - 1]] < 2):
            j = i + 1
            while True:
                if j >= end:
                    return -1
                if buf[j] == 39:
                    if j + 1 < end and buf[j + 1] == 39:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        i += 1
    return -1


@nb.njit(cache=True, nogil=True)
def _statement_prefix(buf, i, end, flags, k):
    """Skip blanks and comments before a Newick string, recording [&R]/[&U]/[&W] in
    ``flags[k]`` = (rooted flag, weight start, weight end).  Returns the new position or a
    negative value for an unterminated comment."""
    while True:
        while i < end and _is_space(buf[i]):
            i += 1
        if i < end and buf[i] == 91:
            kind, a, b = _comment_flag(buf, i, end)
            if kind == 1:
                flags[k, 0] = 1
            elif kind == 2:
                flags[k, 0] = 0
            elif kind == 3:
                flags[k, 1] = a
                flags[k, 2] = b
            depth = 1
            j = i + 1
            while j < end and depth > 0:
                if buf[j] == 91:
                    depth += 1
                elif buf[j] == 93:
                    depth -= 1
                j += 1
            if depth > 0:
                return -(i + 1)
            i = j
            continue
        return i


@nb.njit(cache=True, nogil=True)
def scan_statements(buf, pos, end, nexus, at_eof, out_stmt, out_newick, out_end, flags, head=False):
    """Find the tree statements in ``buf[pos:end]``.

    NEXUS mode reads ``tree NAME = [...] NEWICK;`` commands until ``end;``; Newick mode reads
    ``NEWICK;`` one after another.  Results: ``out_stmt[k]`` start of the statement,
    ``out_newick[k]`` start of its Newick string, ``out_end[k]`` position of its ';',
    ``flags[k] = (rooted flag: 1 [&R], 0 [&U], -1 none; weight span start, end or -1;
    the tree's name: span start, end or -1)``.

    Returns ``(count, resume, status, error_position)``.  ``resume`` is where an incomplete
    statement starts (to be read again with more data); status is 0 (buffer used up), 1
    (``end;`` of the trees block reached), or an error code.  With ``head``, stop at the
    start of the first statement's Newick string (its ';' is not looked for: ``out_end``
    -1, ``resume`` the start of the statement).
    """
    cap = out_stmt.shape[0]
    n = 0
    i = pos
    while True:
        if n >= cap:
            return n, i, 0, 0
        stmt = i
        if nexus:
            i = skip_blank(buf, i, end)
            if i < 0:
                if at_eof:
                    return n, stmt, E_COMMENT, -i - 1
                return n, stmt, 0, 0
        else:
            while i < end and _is_space(buf[i]):
                i += 1
        if i >= end:
            return n, i, 0, 0
        flags[n, 0] = -1
        flags[n, 1] = -1
        flags[n, 2] = -1
        flags[n, 3] = -1
        flags[n, 4] = -1
        if nexus:
            stmt = i
            w0 = i
            while i < end and ((buf[i] >= 65 and buf[i] <= 90) or (buf[i] >= 97 and buf[i] <= 122)):
                i += 1
            wl = i - w0
            if i >= end and not at_eof:
                return n, stmt, 0, 0
            is_tree = False
            is_end = False
            if (
                wl == 4
                and _lower(buf[w0]) == 116
                and _lower(buf[w0 + 1]) == 114
                and _lower(buf[w0 + 2]) == 101
                and _lower(buf[w0 + 3]) == 101
            ):
                is_tree = True
            elif (
                wl == 5
                and _lower(buf[w0]) == 117
                and _lower(buf[w0 + 1]) == 116
                and _lower(buf[w0 + 2]) == 114
                and _lower(buf[w0 + 3]) == 101
                and _lower(buf[w0 + 4]) == 101
            ):
                is_tree = True
            elif (
                wl == 3
                and _lower(buf[w0]) == 101
                and _lower(buf[w0 + 1]) == 110
                and _lower(buf[w0 + 2]) == 100
            ) or (
                wl == 8
                and _lower(buf[w0]) == 101
                and _lower(buf[w0 + 1]) == 110
                and _lower(buf[w0 + 2]) == 100
                and _lower(buf[w0 + 3]) == 98
            ):
                is_end = True
            if is_end:
                j = _find_semicolon(buf, i, end)
                if j < 0:
                    if at_eof:
                        return n, stmt, 1, 0
                    return n, stmt, 0, 0
                return n, j + 1, 1, 0
            if not is_tree:
                return n, stmt, E_STMT_COMMAND, stmt
            # name and anything up to '='
            j = i
            seen_name = False
            while True:
                j2 = _statement_prefix(buf, j, end, flags, n)
                if j2 < 0:
                    if at_eof:
                        return n, stmt, E_COMMENT, -j2 - 1
                    return n, stmt, 0, 0
                j = j2
                if j >= end:
                    if at_eof:
                        return n, stmt, E_NO_SEMICOLON, stmt
                    return n, stmt, 0, 0
                c = buf[j]
                if c == 61:  # '='
                    j += 1
                    break
                if c == 59:
                    return n, stmt, E_STMT_EQUALS, j
                if c == 42 and not seen_name:  # '*' default-tree marker
                    j += 1
                    continue
                if c == 39 or _is_label_char(c):
                    if seen_name:
                        return n, stmt, E_STMT_EQUALS, j
                    j2, h, err = _scan_label(buf, j, end)
                    if err != OK:
                        if at_eof:
                            return n, stmt, err, j
                        return n, stmt, 0, 0
                    flags[n, 3] = j
                    flags[n, 4] = j2
                    j = j2
                    seen_name = True
                    continue
                return n, stmt, E_STMT_EQUALS, j
            if not seen_name:
                return n, stmt, E_STMT_NAME, stmt
            i = j
        j = _statement_prefix(buf, i, end, flags, n)
        if j < 0:
            if at_eof:
                return n, stmt, E_COMMENT, -j - 1
            return n, stmt, 0, 0
        if j >= end:
            if at_eof:
                return n, stmt, E_NO_SEMICOLON, stmt
            return n, stmt, 0, 0
        if head:
            out_stmt[n] = stmt
            out_newick[n] = j
            out_end[n] = -1
            return n + 1, stmt, 0, 0
        semi = _find_semicolon(buf, j, end)
        if semi < 0:
            if at_eof:
                return n, stmt, E_NO_SEMICOLON, stmt
            return n, stmt, 0, 0
        out_stmt[n] = stmt
        out_newick[n] = j
        out_end[n] = semi
        n += 1
        i = semi + 1


#: :func:`scan_parse_trees`: a statement it does not read (an error, or the buffer ends in
#: it); the caller reads it with :func:`scan_statements` and :func:`parse_trees`
AGAIN = -1


@nb.njit(cache=True, nogil=True)
def scan_parse_trees(
    buf, pos, end, nexus, at_eof, out_stmt, out_newick, out_end, flags, n_taxa, key_hashes,
    key_taxa, rooted, out_parent, out_hash, out_haslen,
):  # fmt: skip
    """:func:`scan_statements` and :func:`parse_trees` (topologies only) in one pass over
    the bytes: each statement's Newick string is parsed as it is found, up to its ';'.

    Returns ``(count, resume, status, error_position)`` as :func:`scan_statements`, where
    ``count`` trees were read into the outputs, with status :data:`AGAIN` when the
    statement at ``resume`` was not read: it has an error, or the buffer ends inside it;
    the caller reads from there with :func:`scan_statements` and :func:`parse_trees`,
    which give the same results and the errors with their messages.
    """
    cap = min(out_stmt.shape[0], out_parent.shape[0])
    th, tt, shift = label_table(key_hashes, key_taxa)
    scratch = _parse_scratch(n_taxa, out_parent.shape[1])
    no_len = np.empty((1, 1, 4), np.int64)
    n = 0
    i = pos
    while n < cap:
        k, resume, status, epos = scan_statements(
            buf, i, end, nexus, at_eof, out_stmt[n:], out_newick[n:], out_end[n:], flags[n:],
            True,
        )  # fmt: skip
        if k == 0:
            return n, resume, status, epos
        err, semi, _ = _parse_one(
            buf, out_newick[n], end, n_taxa, th, tt, shift, rooted, False, out_parent[n],
            out_hash, no_len, out_haslen, n, scratch,
        )  # fmt: skip
        if err != OK:
            return n, out_stmt[n], AGAIN, 0
        out_end[n] = semi
        n += 1
        i = semi + 1
    return n, i, 0, 0


@nb.njit(cache=True, nogil=True)
def scan_rows(
    buf, pos, end, at_eof, n_cols, tree_col, iter_col, out_line, out_newick, out_end, out_iter
):
    """Find the trees of a table with one tree per line (RevBayes tree traces): cells are
    separated by tabs, cell ``tree_col`` holds a Newick string ending with ';', cell
    ``iter_col`` (``-1``: none) an iteration number.  Blank lines are skipped.

    For row ``k``: ``out_line[k]`` start of the line, ``out_newick[k]`` start of its Newick
    string, ``out_end[k]`` position of its ';', ``out_iter[k]`` the iteration (``-1``).
    Returns ``(count, resume, status, error_position)`` as :func:`scan_statements` (status 0,
    or an error code: :data:`E_ROW_CELLS`, :data:`E_NO_SEMICOLON`, :data:`E_TRAILING`,
    :data:`E_ROW_ITERATION`, :data:`E_COMMENT`).
    """
    cap = out_line.shape[0]
    n = 0
    i = pos
    while True:
        if n >= cap:
            return n, i, 0, 0
        j = i
        while j < end and buf[j] != 10:
            j += 1
        if j >= end and not at_eof:
            return n, i, 0, 0
        e = j
        if e > i and buf[e - 1] == 13:
            e -= 1
        k = i
        while k < e and _CLASS[buf[k]] == 1:
            k += 1
        if k < e:
            col = 0
            cs = i
            ts = -1
            te = -1
            its = -1
            ite = -1
            q = i
            while True:
                if q == e or buf[q] == 9:
                    if col == tree_col:
                        ts = cs
                        te = q
                    if col == iter_col:
                        its = cs
                        ite = q
                    col += 1
                    if q == e:
                        break
                    cs = q + 1
                q += 1
            if col != n_cols:
                return n, i, E_ROW_CELLS, i
            a = ts
            while a < te and _CLASS[buf[a]] == 1:
                a += 1
            semi = _find_semicolon(buf, a, te)
            if semi < 0:
                # an unterminated comment or quote, or no ';'
                return n, i, E_NO_SEMICOLON, a
            b = semi + 1
            while b < te and _CLASS[buf[b]] == 1:
                b += 1
            if b < te:
                return n, i, E_TRAILING, b
            v = -1
            if iter_col >= 0:
                a2 = its
                b2 = ite
                while a2 < b2 and _CLASS[buf[a2]] == 1:
                    a2 += 1
                while b2 > a2 and _CLASS[buf[b2 - 1]] == 1:
                    b2 -= 1
                if b2 == a2 or b2 - a2 > 18:
                    return n, i, E_ROW_ITERATION, its
                v = 0
                for p in range(a2, b2):
                    d = buf[p]
                    if d < 48 or d > 57:
                        return n, i, E_ROW_ITERATION, its
                    v = v * 10 + (d - 48)
            out_line[n] = i
            out_newick[n] = a
            out_end[n] = semi
            out_iter[n] = v
            n += 1
        if j >= end:
            return n, j, 0, 0
        i = j + 1


@nb.njit(cache=True, nogil=True)
def count_byte(buf, start, end, value):
    """How many bytes of ``buf[start:end]`` equal ``value``."""
    n = 0
    for i in range(start, end):
        n += buf[i] == value
    return n


@nb.njit(cache=True, nogil=True)
def line_info(buf, start, end):
    """``(newlines, characters after the last one)`` in ``buf[start:end]``: characters are
    counted as UTF-8 (bytes that do not continue a character); without a newline, all of
    them."""
    lines = count_byte(buf, start, end, 10)
    i = end
    while i > start and buf[i - 1] != 10:
        i -= 1
    chars = 0
    for k in range(i, end):
        c = buf[k]
        if c < 128 or c >= 192:
            chars += 1
    return lines, chars


@nb.njit(cache=True, nogil=True)
def clade_bitsets(parents, n_taxa, n_words):
    """Clade bitsets of canonical parent arrays.

    ``parents`` is ``(T, N)``; the result is ``(T, N, n_words)`` uint64 where bit ``i % 64``
    of word ``i // 64`` of node ``v`` is set when taxon ``i`` is below ``v``.
    """
    T = parents.shape[0]
    N = parents.shape[1]
    out = np.zeros((T, N, n_words), np.uint64)
    one = np.uint64(1)
    for t in range(T):
        for i in range(n_taxa):
            out[t, i, i >> 6] = one << np.uint64(i & 63)
        for v in range(N):
            p = parents[t, v]
            if p >= 0:
                for w in range(n_words):
                    out[t, p, w] |= out[t, v, w]
    return out
