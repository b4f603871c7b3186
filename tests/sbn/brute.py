"""Independent, slow reference computations for SBN tests: topologies as frozensets.

Nothing here uses phylo.sbn: trees are nested tuples, clades frozensets of taxon indices, and
every rooting of every tree is enumerated explicitly.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np

# -- enumerating topologies -------------------------------------------------------------------


def rooted_topologies(taxa):
    """All rooted binary topologies on ``taxa`` as nested tuples (stepwise addition)."""
    taxa = list(taxa)
    if len(taxa) == 1:
        return [taxa[0]]
    trees = [(taxa[0], taxa[1])]
    for x in taxa[2:]:
        grown = []
        for t in trees:
            grown.extend(_insert_everywhere(t, x))
        trees = grown
    return trees


def _insert_everywhere(tree, x):
    out = [(tree, x)]
    if isinstance(tree, tuple):
        a, b = tree
        out.extend((a2, b) for a2 in _insert_everywhere(a, x))
        out.extend((a, b2) for b2 in _insert_everywhere(b, x))
    return out


def unrooted_topologies(n):
    """All unrooted topologies on taxa ``0..n-1``: rooted trees on ``1..n-1`` with taxon 0
    attached at the root, i.e. the unrooted tree rooted on taxon 0's edge."""
    return [(0, t) for t in rooted_topologies(range(1, n))]


def newick(tree, names):
    if isinstance(tree, tuple):
        return "(" + newick(tree[0], names) + "," + newick(tree[1], names) + ")"
    return names[tree]


def leaves(tree):
    if isinstance(tree, tuple):
        return leaves(tree[0]) | leaves(tree[1])
    return frozenset([tree])


# -- unrooted trees as adjacency, and their rootings ------------------------------------------


def adjacency(tree):
    """Undirected adjacency of a rooted nested-tuple tree with the root suppressed."""
    adj = defaultdict(set)
    counter = itertools.count()

    def build(t):
        if not isinstance(t, tuple):
            return ("leaf", t)
        node = ("in", next(counter))
        for c in t:
            cn = build(c)
            adj[node].add(cn)
            adj[cn].add(node)
        return node

    a, b = (build(c) for c in tree)
    adj[a].add(b)
    adj[b].add(a)
    return adj


def _side(adj, u, v):
    """Taxa reached from ``v`` without crossing back to ``u``."""
    out = set()
    stack = [(u, v)]
    while stack:
        p, x = stack.pop()
        if x[0] == "leaf":
            out.add(x[1])
        for y in adj[x]:
            if y != p:
                stack.append((x, y))
    return frozenset(out)


def rootings(tree):
    """Every rooting of the unrooted tree as a list of events ``(parent key, clade,
    subsplit)``: the root split (key ``None``) and, for every clade below the root, its
    subsplit keyed by ``(sibling clade, clade)``."""
    adj = adjacency(tree)
    edges = {frozenset((u, v)) for u in adj for v in adj[u]}
    out = []
    for e in edges:
        u, v = tuple(e)
        events = []
        A = _side(adj, u, v)
        B = _side(adj, v, u)
        events.append((None, A | B, frozenset([A, B])))
        stack = [(u, v, B), (v, u, A)]  # (tail, head, sibling clade of head's clade)
        while stack:
            tail, head, sib = stack.pop()
            clade = _side(adj, tail, head)
            kids = [y for y in adj[head] if y != tail]
            if not kids:
                continue
            c1, c2 = (_side(adj, head, y) for y in kids)
            events.append(((sib, clade), clade, frozenset([c1, c2])))
            stack.append((head, kids[0], c2))
            stack.append((head, kids[1], c1))
        out.append(events)
    return out


def rooted_events(tree):
    """Events of a rooted tree (one rooting)."""
    events = []

    def go(t, sib):
        if not isinstance(t, tuple):
            return
        a, b = t
        A, B = leaves(a), leaves(b)
        key = None if sib is None else (sib, A | B)
        events.append((key, A | B, frozenset([A, B])))
        go(a, B)
        go(b, A)

    go(tree, None)
    return events


# -- a brute-force SBN ----------------------------------------------------------------------


def key_of(event, clade_mode):
    key, clade, _ = event
    if key is None:
        return ("root",)
    return ("clade", clade) if clade_mode else ("pcsp", key[0], clade)


def tree_prob(theta, events_list, clade_mode=False):
    """Probability of a tree given the events of each of its rootings."""
    total = 0.0
    for events in events_list:
        p = 1.0
        for ev in events:
            p *= theta.get((key_of(ev, clade_mode), ev[2]), 0.0)
        total += p
    return total


def normalise(counts):
    groups = defaultdict(float)
    for (k, _), c in counts.items():
        groups[k] += c
    return {(k, s): c / groups[k] for (k, s), c in counts.items() if groups[k] > 0}


def simple_average(trees, weights, clade_mode=False, rooted=False):
    """SBN-SA by explicit averaging over all rootings of every tree."""
    counts = defaultdict(float)
    for t, w in zip(trees, weights):
        rs = [rooted_events(t)] if rooted else rootings(t)
        for events in rs:
            for ev in events:
                counts[(key_of(ev, clade_mode), ev[2])] += w / len(rs)
    return normalise(counts)


def em_step(theta, trees, weights, clade_mode=False):
    """One EM step with the rooting posterior computed by enumeration."""
    counts = defaultdict(float)
    ll = 0.0
    for t, w in zip(trees, weights):
        rs = rootings(t)
        ps = []
        for events in rs:
            p = 1.0
            for ev in events:
                p *= theta.get((key_of(ev, clade_mode), ev[2]), 0.0)
            ps.append(p)
        tot = sum(ps)
        ll += w * math.log(tot)
        for events, p in zip(rs, ps):
            for ev in events:
                counts[(key_of(ev, clade_mode), ev[2])] += w * p / tot
    return normalise(counts), ll


def model_theta(model):
    """The parameters of a phylo SBN model as a dict keyed like the brute force's."""
    s = model.support
    clades = [
        frozenset(i for i in range(s.n_taxa) if (int(row[i >> 6]) >> (i & 63)) & 1)
        for row in s.clades
    ]
    out = {}
    for m in range(s.n_params):
        k = s.param_key[m]
        sib, clade = s.keys[k]
        a, b = s.subsplits[s.param_sub[m]]
        if k == 0:
            key = ("root",)
        elif sib < 0:
            key = ("clade", clades[clade])
        else:
            key = ("pcsp", clades[sib], clades[clade])
        out[(key, frozenset([clades[a], clades[b]]))] = float(np.exp(model.log_theta[m]))
    return out


def entropy(probs):
    p = np.asarray([x for x in probs if x > 0])
    return float(-(p * np.log(p)).sum())
