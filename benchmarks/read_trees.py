#!/usr/bin/env python3
"""Benchmark: read a large MrBayes-style tree sample and count unique topologies.

Generates (once, in a cache folder) a MrBayes ``.t`` file of ``--trees`` trees on ``--taxa``
taxa with branch lengths written as MrBayes writes them (``%e``, translate table, ``[&U]``),
drawn from a pool of topologies with random child order and branch lengths.  Then, each in
its own process so that peak memory is its own:

* phylo reads the whole file and counts unique topologies;
* dendropy reads a subset (``--dendropy-trees``) and counts unique topologies by their
  bipartition encodings; its rate is scaled to trees per second.

Prints trees per second, peak memory, and the ratio phylo / dendropy.  Absolute times on a
shared machine mean little; the ratio is the number to read.

Usage::

    python benchmarks/read_trees.py                       # 200,000 trees, 50 and 27 taxa
    python benchmarks/read_trees.py --trees 50000 --taxa 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def random_topology(rng, n):
    """A random rooted binary topology as nested tuples of leaf indices (1-based)."""
    nodes = [i + 1 for i in range(n)]
    while len(nodes) > 1:
        i, j = sorted(rng.choice(len(nodes), size=2, replace=False))
        b = nodes.pop(j)
        a = nodes.pop(i)
        nodes.append((a, b))
    return nodes[0]


def write_tree(rng, node):
    if isinstance(node, int):
        return f"{node}:{rng.exponential(0.05):e}"
    a, b = node
    if rng.random() < 0.5:
        a, b = b, a
    return f"({write_tree(rng, a)},{write_tree(rng, b)}):{rng.exponential(0.05):e}"


def mrbayes_string(rng, top):
    # MrBayes writes unrooted trees with a trifurcation at the root: (a,b,c)
    a, b = top
    if isinstance(a, int):
        a, b = b, a
    if isinstance(a, int):  # both leaves: cannot happen for n >= 3
        raise ValueError
    a1, a2 = a
    parts = [write_tree(rng, a1), write_tree(rng, a2), write_tree(rng, b)]
    rng.shuffle(parts)
    return "(" + ",".join(parts) + ");"


def generate(path, n_trees, n_taxa, pool, seed=1):
    rng = np.random.default_rng(seed)
    tops = [random_topology(rng, n_taxa) for _ in range(pool)]
    weights = rng.dirichlet(np.full(pool, 0.5))
    picks = rng.choice(pool, size=n_trees, p=weights)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("#NEXUS\n[ID: 0000000000]\n[Param: tree]\nbegin trees;\n   translate\n")
        for i in range(n_taxa):
            end = ";" if i == n_taxa - 1 else ","
            fh.write(f"      {i + 1:>3} taxon_{i + 1}{end}\n")
        for g, k in enumerate(picks):
            fh.write(f"   tree gen.{g * 100} = [&U] {mrbayes_string(rng, tops[k])}\n")
        fh.write("end;\n")
    os.replace(tmp, path)


def run_child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


PHYLO = """
import json, resource, time, sys
from phylo.trees import read_trees
read_trees({warm!r}, burnin=0)   # load compiled kernels (cached) before timing
t0 = time.perf_counter()
s = read_trees({path!r}, burnin=0)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(seconds=dt, trees=s.n_trees, unique=s.n_topologies, rss_mb=rss)))
"""

DENDROPY = """
import json, resource, time, itertools
import dendropy
t0 = time.perf_counter()
seen = {{}}
n = 0
for t in dendropy.Tree.yield_from_files([{path!r}], schema="nexus",
                                         rooting="force-unrooted"):
    t.encode_bipartitions()
    key = frozenset(b.split_bitmask for b in t.bipartition_encoding)
    seen[key] = seen.get(key, 0) + 1
    n += 1
    if n >= {limit}:
        break
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(seconds=dt, trees=n, unique=len(seen), rss_mb=rss)))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=200_000)
    ap.add_argument("--taxa", type=int, nargs="+", default=[50, 27])
    ap.add_argument("--pool", type=int, default=5000, help="distinct topologies to draw from")
    ap.add_argument("--dendropy-trees", type=int, default=3000)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "phylo-bench"))
    args = ap.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    warm = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "example.run1.t")
    print(
        f"{'taxa':>5} {'trees':>9} {'MB':>7} {'unique':>7} {'phylo trees/s':>14} "
        f"{'peak MB':>8} {'dendropy trees/s':>17} {'peak MB':>8} {'ratio':>7}"
    )
    for n in args.taxa:
        path = os.path.join(args.cache, f"bench_{n}taxa_{args.trees}.t")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            generate(path, args.trees, n, args.pool)
            print(f"(generated {path} in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        size = os.path.getsize(path) / 2**20
        ours = run_child(PHYLO.format(path=path, warm=warm))
        dp = run_child(DENDROPY.format(path=path, limit=args.dendropy_trees))
        rate = ours["trees"] / ours["seconds"]
        dp_rate = dp["trees"] / dp["seconds"]
        print(
            f"{n:>5} {ours['trees']:>9} {size:>7.0f} {ours['unique']:>7} {rate:>14,.0f} "
            f"{ours['rss_mb']:>8.0f} {dp_rate:>17,.0f} {dp['rss_mb']:>8.0f} "
            f"{rate / dp_rate:>6.0f}x"
        )
    print(
        "ratio = phylo trees/s over dendropy trees/s (dendropy on the first "
        f"{args.dendropy_trees} trees, scaled); goals: >= 50x, and >= 100,000 trees/s "
        "for 27 taxa on one core"
    )


if __name__ == "__main__":
    main()
