"""Small tree samples for SBN tests."""

from __future__ import annotations

import numpy as np

from phylo.trees import Taxa, TreeSample, parse_newick
from phylo.trees.sample import RunInfo

from . import brute


def names(n):
    return [f"t{i}" for i in range(n)]


def sample_of(trees, weights, n, rooted=False):
    """A weighted TreeSample of nested-tuple trees (duplicates merged)."""
    taxa = Taxa(names(n))
    rows = {}
    for t, w in zip(trees, weights):
        nwk = brute.newick(t, taxa.names) + ";"
        p = parse_newick(nwk, taxa=taxa, rooted=rooted).parent
        key = p.tobytes()
        if key in rows:
            rows[key][1] += w
        else:
            rows[key] = [p, float(w)]
    parents = np.stack([v[0] for v in rows.values()])
    counts = np.array([[v[1]] for v in rows.values()])
    run = RunInfo("<test>", len(trees), 0, 1, len(trees), True)
    return TreeSample(taxa, rooted, parents, counts, [run], [np.arange(len(rows))])


def random_training(n, n_trees, rng, rooted=False):
    """Random distinct topologies with random weights, as (trees, weights, sample)."""
    pool = brute.rooted_topologies(range(n)) if rooted else brute.unrooted_topologies(n)
    idx = rng.choice(len(pool), size=min(n_trees, len(pool)), replace=False)
    trees = [pool[i] for i in idx]
    w = rng.dirichlet(np.full(len(trees), 0.7))
    return trees, w, sample_of(trees, w, n, rooted)


def all_newicks(n, rooted=False):
    pool = brute.rooted_topologies(range(n)) if rooted else brute.unrooted_topologies(n)
    return pool, [brute.newick(t, names(n)) + ";" for t in pool]
