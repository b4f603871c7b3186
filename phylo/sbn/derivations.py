"""Dynamic programming over the subsplit graph: total mass, entropy, and the most probable
trees (Zhang & Matsen, NeurIPS 2018; k-best derivations after Huang & Chiang, 2005).

A rooted SBN is a probabilistic grammar: the *parent keys* (see :mod:`phylo.sbn.support`) are
the non-terminals, key 0 (the full taxon set) is the start symbol, and each parameter
``m`` (a subsplit ``{A, B}`` of the key's clade) rewrites the key into the keys of ``A`` and
``B`` (nothing for a leaf) with probability ``theta_m``.  A *derivation* from key 0 is a rooted
tree, and its probability is the product of its parameters.  Hence:

* the inside mass ``Z(k) = sum_m theta_m prod_j Z(child_j(m))`` (``Z = 1`` for a leaf) and the
  number of derivations follow by one pass over the keys in order of increasing clade size;
* the entropy of a rooted SBN is ``H(k) = sum_m p_m (-log p_m + sum_j H(child_j(m)))`` with
  ``p_m = theta_m prod_j Z(child_j) / Z(k)``;
* derivations can be listed in order of decreasing probability, lazily, with one candidate
  heap per key (Huang & Chiang's "lazy k-best", algorithm 3): the ``j``-th best derivation of
  ``k`` is found from the best of its candidates ``(m, j_A, j_B)``, whose successors
  ``(m, j_A+1, j_B)`` and ``(m, j_A, j_B+1)`` are then added.

For an *unrooted* SBN a topology's probability is the sum over its rootings, i.e. over several
derivations, so the most probable derivations need not belong to the most probable topologies.
:func:`top_unrooted` lists derivations best first and adds them up per unrooted topology,
and stops once a bound proves that no other topology can enter the top ``k``: after the
derivations seen so far, every unseen derivation has probability at most ``p_next`` (the next
one's) and all of them together at most ``Z - seen``; a topology with ``r`` of its ``2n-3``
rootings seen therefore has probability at most
``seen(U) + min((2n-3-r) p_next, Z - seen)``.  The candidates' exact probabilities (sums over
all rootings) are computed with the model, so the reported values are exact.

Rooted derivations are grouped into unrooted topologies by their sets of splits, represented
by two independent 64-bit hashes (sums of per-split hashes, built up key by key), so trees
are only built for the topologies reported; two different topologies would be confused only
on a 128-bit hash collision (probability about ``2^-128`` per pair).
"""

from __future__ import annotations

import functools
import heapq
import math
import sys
import threading

import numpy as np

from ..errors import ModelError
from ..trees.bitsets import normalise_splits
from ..trees.topology import canonical

NEG_INF = -np.inf


def _logaddexp_list(values):
    if not values:
        return NEG_INF
    mx = max(values)
    if mx == NEG_INF:
        return NEG_INF
    return mx + math.log(sum(math.exp(v - mx) for v in values))


def key_order(support) -> np.ndarray:
    """Parent keys in order of increasing clade size (children before parents)."""
    sizes = support.clade_sizes[support.keys[:, 1]]
    return np.argsort(sizes, kind="stable")


def inside(support, log_theta) -> dict:
    """Per key: log inside mass ``log Z``, log number of derivations, and entropy ``H`` of the
    derivations of that key (natural log), as arrays over keys."""
    K = support.n_keys
    logz = np.full(K, NEG_INF)
    logn = np.full(K, NEG_INF)
    ent = np.zeros(K)
    off = support.offsets
    sub_keys = support.sub_keys
    for k in key_order(support):
        a, b = off[k], off[k + 1]
        terms_z = []
        terms_n = []
        rows = []
        for m in range(a, b):
            lt = log_theta[m]
            if lt == NEG_INF:
                continue
            lz = lt
            ln = 0.0
            h = 0.0
            ok = True
            for ck in sub_keys[support.param_sub[m]]:
                if ck == -1:
                    continue
                if ck < 0 or logz[ck] == NEG_INF:
                    ok = False
                    break
                lz += logz[ck]
                ln += logn[ck]
                h += ent[ck]
            if not ok:
                continue
            terms_z.append(lz)
            terms_n.append(ln)
            rows.append((lz, h))
        logz[k] = _logaddexp_list(terms_z)
        logn[k] = _logaddexp_list(terms_n)
        if rows and logz[k] > NEG_INF:
            hk = 0.0
            for lz, h in rows:
                p = math.exp(lz - logz[k])
                if p > 0:
                    hk += p * (-(lz - logz[k]) + h)
            ent[k] = hk
    return {"log_mass": logz, "log_count": logn, "entropy": ent}


MASK64 = (1 << 64) - 1

#: Python frames one level of the subsplit graph may take in :meth:`KBest.get`.
FRAMES_PER_LEVEL = 4


def _deep(levels_of):
    """Give a function that recurses once per level of the subsplit graph room to do so.

    ``levels_of(*args)`` bounds the number of levels (the number of taxa will do): ladder-like
    trees of hundreds of taxa recurse deeper than Python's default limit of 1000 frames.  The
    limit is raised for the call and put back; on Python 3.10, whose frames also use the C
    stack, a deep call runs in a thread with a stack large enough for it.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            need = FRAMES_PER_LEVEL * levels_of(*args) + 200
            old = sys.getrecursionlimit()
            if need < old // 2:
                return fn(*args, **kwargs)
            sys.setrecursionlimit(old + need)
            try:
                if sys.version_info >= (3, 11):  # Python frames no longer use the C stack
                    return fn(*args, **kwargs)
                return _in_big_thread(fn, args, kwargs, need)
            finally:
                sys.setrecursionlimit(old)

        return call

    return wrap


def _in_big_thread(fn, args, kwargs, frames):  # pragma: no cover - Python 3.10
    result = {}

    def run():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            result["error"] = exc

    size = threading.stack_size(max(64 << 20, 4096 * frames))
    try:
        thread = threading.Thread(target=run)
        thread.start()
    finally:
        threading.stack_size(size)
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


class KBest:
    """Derivations of each parent key in order of decreasing probability (lazy k-best).

    Each derivation is ``(log p, m, j_A, j_B, h1, h2)``: its log probability, the parameter
    used at the key, the ranks of the derivations of the two child keys, and two independent
    64-bit hashes of the set of splits of its tree (sums of per-split hashes), which identify
    the unrooted topology of a derivation of key 0 without building it.
    """

    def __init__(self, support, log_theta):
        self.support = support
        self.lt = np.asarray(log_theta, dtype=float).tolist()
        self.off = support.offsets.tolist()
        self.psub = support.param_sub.tolist()
        self.sub_keys = support.sub_keys.tolist()
        self.subs = support.subsplits.tolist()
        self.leaf = support.clade_leaf.tolist()
        h1, h2 = _split_hashes(support)
        h1 = h1.tolist()
        h2 = h2.tolist()
        # hash added by a subsplit: both child splits, or one for a root split
        self.add1 = [(h1[a] + h1[b]) & MASK64 for a, b in self.subs]
        self.add2 = [(h2[a] + h2[b]) & MASK64 for a, b in self.subs]
        self.root1 = [h1[a] for a, _ in self.subs]
        self.root2 = [h2[a] for a, _ in self.subs]
        self.D: dict[int, list] = {}
        self.C: dict[int, list] = {}
        self.seen: dict[int, set] = {}

    _LEAF = (0.0, 0, 0)

    def _child(self, key, j):
        if key == -1:
            return self._LEAF if j == 0 else None
        if key < 0:
            return None
        d = self.get(key, j)
        return None if d is None else (d[0], d[4], d[5])

    def _init(self, k):
        heap = []
        seen = set()
        for m in range(self.off[k], self.off[k + 1]):
            lt = self.lt[m]
            if lt == NEG_INF:
                continue
            k0, k1 = self.sub_keys[self.psub[m]]
            x = self._child(k0, 0)
            if x is None:
                continue
            y = self._child(k1, 0)
            if y is None:
                continue
            heap.append((-(lt + x[0] + y[0]), m, 0, 0))
            seen.add((m, 0, 0))
        heapq.heapify(heap)
        self.C[k] = heap
        self.D[k] = []
        self.seen[k] = seen

    def get(self, k: int, j: int):
        """The ``j``-th best derivation of key ``k`` (see the class docstring), or None."""
        if k not in self.D:
            self._init(k)
        D = self.D[k]
        heap = self.C[k]
        seen = self.seen[k]
        lts = self.lt
        while len(D) <= j:
            if not heap:
                return None
            negl, m, j0, j1 = heapq.heappop(heap)
            sub = self.psub[m]
            k0, k1 = self.sub_keys[sub]
            x = self._child(k0, j0)
            y = self._child(k1, j1)
            if k == 0:
                a1, a2 = self.root1[sub], self.root2[sub]
            else:
                a1, a2 = self.add1[sub], self.add2[sub]
            D.append((-negl, m, j0, j1, (x[1] + y[1] + a1) & MASK64, (x[2] + y[2] + a2) & MASK64))
            for b0, b1 in ((j0 + 1, j1), (j0, j1 + 1)):
                if (m, b0, b1) in seen:
                    continue
                x = self._child(k0, b0)
                if x is None:
                    continue
                y = self._child(k1, b1)
                if y is None:
                    continue
                seen.add((m, b0, b1))
                heapq.heappush(heap, (-(lts[m] + x[0] + y[0]), m, b0, b1))
        return D[j]

    def tree(self, j: int, out: np.ndarray) -> None:
        """Write the ``j``-th best rooted tree of key 0 as a parent array (leaves ``0..n-1``,
        root ``n``, other internal nodes in order of creation)."""
        n = self.support.n_taxa
        leaf = self.leaf
        out[n] = -1
        nxt = n + 1
        stack = [(0, j, n)]
        while stack:
            k, jj, node = stack.pop()
            d = self.D[k][jj]
            sub = self.psub[d[1]]
            a, b = self.subs[sub]
            ka, kb = self.sub_keys[sub]
            for c, kc, jx in ((a, ka, d[2]), (b, kb, d[3])):
                if leaf[c] >= 0:
                    out[leaf[c]] = node
                else:
                    out[nxt] = node
                    stack.append((kc, jx, nxt))
                    nxt += 1


@_deep(lambda support, *_: support.n_taxa)
def top_rooted(support, log_theta, k: int):
    """The ``k`` most probable rooted trees: ``(parents (k', 2n-1) in derivation numbering,
    log probabilities)``; exact."""
    kb = KBest(support, log_theta)
    n = support.n_taxa
    rows, logps = [], []
    for j in range(k):
        d = kb.get(0, j)
        if d is None:
            break
        row = np.empty(2 * n - 1, np.int32)
        kb.tree(j, row)
        rows.append(row)
        logps.append(d[0])
    arr = np.array(rows, np.int32).reshape(-1, 2 * n - 1)
    return arr, np.array(logps)


@_deep(lambda model, *_: model.n_taxa)
def top_unrooted(model, k: int, max_derivations: int = 2_000_000, batch: int = 256):
    """The ``k`` most probable unrooted topologies of an unrooted SBN, exactly.

    Rooted derivations are listed best first and added up per unrooted topology (identified
    by the set of splits of the derivation, hashed; see :class:`KBest`), until the bound of
    the module docstring proves the answer.  Returns ``(parents (k', 2n-2) canonical, log
    probabilities, derivations examined)``.  Raises :class:`~phylo.errors.ModelError` when
    ``max_derivations`` rooted derivations were listed without proving the answer.
    """
    support = model.support
    lt = model.log_theta
    n = support.n_taxa
    E = 2 * n - 3
    kb = KBest(support, lt)
    log_z = inside(support, lt)["log_mass"][0]
    total = math.exp(log_z) if log_z > NEG_INF else 0.0
    mass: dict[tuple, float] = {}
    rootings: dict[tuple, int] = {}
    first: dict[tuple, int] = {}
    exact: dict[tuple, float] = {}
    arrays: dict[tuple, np.ndarray] = {}
    seen_total = 0.0
    j = 0
    next_check = batch

    def array_of(key):
        if key not in arrays:
            row = np.empty(2 * n - 1, np.int32)
            kb.tree(first[key], row)
            arrays[key] = canonical(row, n, False)
        return arrays[key]

    def exact_of(keys):
        need = [c for c in keys if c not in exact]
        if need:
            lp = model.log_prob(np.stack([array_of(c) for c in need]))
            for c, v in zip(need, lp):
                exact[c] = math.exp(v)

    def finish(keys):
        exact_of(keys)
        keys = sorted(keys, key=lambda c: -exact[c])
        parents = (
            np.stack([array_of(c) for c in keys]) if keys else np.empty((0, 2 * n - 2), np.int32)
        )
        with np.errstate(divide="ignore"):
            logp = np.log(np.array([exact[c] for c in keys]))
        return parents, logp, j

    while True:
        d = kb.get(0, j)
        if d is None:
            return finish(sorted(mass, key=lambda x: -mass[x])[:k])
        p = math.exp(d[0])
        key = (d[4], d[5])
        seen_total += p
        if key in mass:
            mass[key] += p
            rootings[key] += 1
        else:
            mass[key] = p
            rootings[key] = 1
            first[key] = j
        j += 1
        if j < next_check:
            continue
        next_check = j + max(batch, j // 8)
        nxt = kb.get(0, j)
        p_next = math.exp(nxt[0]) if nxt is not None else 0.0
        # unlisted mass; the slack covers rounding in the sums, so that no derivation is
        # ever ruled out by it alone
        remaining = max(total - seen_total, 0.0) + 1e-12 * total
        bound_new = min(E * p_next, remaining)
        ranked = sorted(mass, key=lambda x: -mass[x])
        cand = ranked[:k]
        if len(cand) < k and bound_new > 0:
            if j >= max_derivations:
                raise ModelError(f"could not find {k} topologies after {j} rooted derivations")
            continue
        exact_of(cand)
        kth = min(exact[c] for c in cand) if cand else 0.0
        worst = bound_new
        for c in ranked[k:]:
            ub = mass[c] + min((E - rootings[c]) * p_next, remaining)
            if ub > worst:
                worst = ub
        if worst <= kth:
            return finish(cand)
        if j >= max_derivations:
            raise ModelError(
                f"could not prove the {k} most probable topologies after {j} rooted "
                f"derivations (the {k}-th has probability {kth:.3g}, another topology might "
                f"still reach {worst:.3g}); ask for fewer or raise the limit"
            )


def _split_hashes(support) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of the split of every clade (the clade or its
    complement: the side without taxon 0)."""
    bits = normalise_splits(support.clades, support.n_taxa)
    out = []
    for seed in (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03):
        h = np.full(bits.shape[0], seed, np.uint64)
        with np.errstate(over="ignore"):
            for w in range(bits.shape[1]):
                x = h ^ bits[:, w]
                x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                h = x ^ (x >> np.uint64(31))
        out.append(h)
    return out[0], out[1]


@_deep(lambda model, *_: model.n_taxa)
def unrooted_probabilities(model, limit: int = 1_000_000):
    """Probabilities of all unrooted topologies an unrooted SBN can produce, or None when it
    has more than ``limit`` rooted derivations.

    Every rooted derivation is listed (as arrays, key by key, children before parents) with
    its probability and the set of splits of its tree, which is the unrooted topology; a set
    is represented by the sum of two independent 64-bit hashes of its splits (a collision of
    two different topologies has probability about ``2^-128`` per pair).  Derivations with
    the same set are added up.
    """
    support = model.support
    lt = model.log_theta
    info = inside(support, lt)
    if limit <= 0 or info["log_count"][0] > math.log(limit):
        return None
    h1, h2 = _split_hashes(support)
    subs = support.subsplits
    memo: dict[int, tuple] = {}
    leaf = (np.zeros(1), np.zeros(1, np.uint64), np.zeros(1, np.uint64))

    def derivations(k):
        if k in memo:
            return memo[k]
        parts_l, parts_1, parts_2 = [], [], []
        for m in range(support.offsets[k], support.offsets[k + 1]):
            if lt[m] == NEG_INF:
                continue
            sub = support.param_sub[m]
            kids = []
            for ck in support.sub_keys[sub]:
                if ck == -1:
                    kids.append(leaf)
                elif ck < 0:
                    kids = None
                    break
                else:
                    kids.append(derivations(ck))
            if kids is None or min(len(x[0]) for x in kids) == 0:
                continue
            (la, a1, a2), (lb, b1, b2) = kids
            a, b = subs[sub]
            add1 = h1[a] if k == 0 else h1[a] + h1[b]
            add2 = h2[a] if k == 0 else h2[a] + h2[b]
            parts_l.append((lt[m] + la[:, None] + lb[None, :]).ravel())
            parts_1.append((a1[:, None] + b1[None, :] + add1).ravel())
            parts_2.append((a2[:, None] + b2[None, :] + add2).ravel())
        if parts_l:
            res = (np.concatenate(parts_l), np.concatenate(parts_1), np.concatenate(parts_2))
        else:
            res = (np.zeros(0), np.zeros(0, np.uint64), np.zeros(0, np.uint64))
        memo[k] = res
        return res

    with np.errstate(over="ignore"):
        logp, a1, a2 = derivations(0)
    if logp.size == 0:
        return np.zeros(0)
    keys = np.stack([a1, a2], axis=1)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    return np.bincount(inverse.ravel(), weights=np.exp(logp))
