#!/usr/bin/env python3
"""Benchmark: summary trees and split tables of a large sample, beside `sbn summary`,
SumTrees and TreeAnnotator.

Generates (once, in a cache folder) a MrBayes-style ``.t`` file of ``--trees`` unrooted trees
on ``--taxa`` taxa: a pool of topologies, each a random tree moved by a few random NNIs (as
a posterior sample looks: most splits shared, many unique topologies), drawn with Dirichlet
weights, with exponential branch lengths printed as MrBayes prints them.  For TreeAnnotator,
a BEAST-style file of rooted ultrametric trees (the same pool rooted on one edge, random
node heights) of ``--rooted-trees`` trees.

Then, each command in its own process (so that peak memory is its own), prints seconds, peak
memory and the ratio to the baseline run just before it:

* ``sbn summary`` (the baseline: reading, unique topologies, split frequencies, ASDSF);
* ``sbn splits`` (with branch-length means, variances, medians and HPD intervals);
* ``sbn tree --type majority|extended|mcc|map``;
* SumTrees (majority-rule consensus with edge lengths) on ``--sumtrees-trees`` trees, its
  time scaled to the whole file;
* TreeAnnotator (MCC, ``-heights mean``) on the rooted file, beside ``sbn tree --type mcc
  --rooted --heights mean`` on the same file.

Absolute times on a shared machine mean little; read the ratios.

Usage::

    python benchmarks/summary_trees.py                      # 100,000 trees of 100 taxa
    python benchmarks/summary_trees.py --trees 20000 --taxa 50 --skip-others
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np


def random_unrooted(rng, n):
    """Adjacency lists of a random unrooted binary tree: leaves 0..n-1, internal n..2n-3."""
    adj = {0: [n], 1: [n], 2: [n], n: [0, 1, 2]}
    edges = [(0, n), (1, n), (2, n)]
    nxt = n + 1
    for leaf in range(3, n):
        a, b = edges[rng.integers(len(edges))]
        m = nxt
        nxt += 1
        adj[a][adj[a].index(b)] = m
        adj[b][adj[b].index(a)] = m
        adj[m] = [a, b, leaf]
        adj[leaf] = [m]
        edges.remove((a, b))
        edges += [(a, m), (m, b), (leaf, m)]
    return adj


def nni(rng, adj, n):
    """One random nearest-neighbour interchange, in place."""
    while True:
        u = int(rng.integers(n, 2 * n - 2))
        v = adj[u][rng.integers(3)]
        if v >= n:
            break
    a = [x for x in adj[u] if x != v][rng.integers(2)]
    c = [x for x in adj[v] if x != u][rng.integers(2)]
    adj[u][adj[u].index(a)] = c
    adj[c][adj[c].index(v)] = u
    adj[v][adj[v].index(c)] = a
    adj[a][adj[a].index(u)] = v


def template(adj, root, parent, out):
    """Newick of the subtree at ``root`` away from ``parent``, lengths as ``{}``."""
    kids = [x for x in adj[root] if x != parent]
    if not kids:
        out.append(f"{root + 1}:{{}}")
        return
    out.append("(")
    for i, k in enumerate(kids):
        if i:
            out.append(",")
        template(adj, k, root, out)
    out.append("):{}")


def pool_topologies(rng, n, size, moves=4):
    base = random_unrooted(rng, n)
    pool = []
    for _ in range(size):
        adj = {k: list(v) for k, v in base.items()}
        for _ in range(int(rng.poisson(moves)) + 1):
            nni(rng, adj, n)
        pool.append(adj)
    return pool


def write_mrbayes(path, n_trees, n_taxa, pool_size, seed=1):
    rng = np.random.default_rng(seed)
    pool = pool_topologies(rng, n_taxa, pool_size)
    texts = []
    for adj in pool:
        root = adj[0][0]  # MrBayes: the node next to taxon 1, three children
        out = ["("]
        for i, k in enumerate(adj[root]):
            if i:
                out.append(",")
            template(adj, k, root, out)
        out.append(");")
        texts.append("".join(out).replace("{}", "%e"))
    picks = rng.choice(pool_size, size=n_trees, p=rng.dirichlet(np.full(pool_size, 0.5)))
    n_br = 2 * n_taxa - 3
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("#NEXUS\n[ID: 0000000000]\n[Param: tree]\nbegin trees;\n   translate\n")
        for i in range(n_taxa):
            end = ";" if i == n_taxa - 1 else ","
            fh.write(f"      {i + 1:>3} taxon_{i + 1}{end}\n")
        for g, k in enumerate(picks):
            lengths = tuple(rng.exponential(0.02, n_br))
            fh.write(f"   tree gen.{g * 100} = [&U] {texts[k] % lengths}\n")
        fh.write("end;\n")
    os.replace(tmp, path)


def write_beast(path, n_trees, n_taxa, pool_size, seed=2):
    """Rooted ultrametric trees in a BEAST-like NEXUS file."""
    rng = np.random.default_rng(seed)
    pool = pool_topologies(rng, n_taxa, pool_size)
    picks = rng.choice(pool_size, size=n_trees, p=rng.dirichlet(np.full(pool_size, 0.5)))
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(f"#NEXUS\n\nBegin taxa;\n\tDimensions ntax={n_taxa};\n\t\tTaxlabels\n")
        for i in range(n_taxa):
            fh.write(f"\t\t\ttaxon_{i + 1}\n")
        fh.write("\t\t\t;\nEnd;\nBegin trees;\n\tTranslate\n")
        for i in range(n_taxa):
            end = "," if i < n_taxa - 1 else ""
            fh.write(f"\t\t{i + 1} taxon_{i + 1}{end}\n")
        fh.write(";\n")
        for g, k in enumerate(picks):
            adj = pool[k]
            a = 0
            b = adj[0][0]  # root on taxon 1's edge
            height = {}

            def walk(v, p):
                kids = [x for x in adj[v] if x != p]
                if not kids:
                    height[v] = 0.0
                    return f"{v + 1}"
                parts = [walk(c, v) for c in kids]
                height[v] = max(height[c] for c in kids) + rng.exponential(0.01)
                return (
                    "("
                    + ",".join(f"{s}:{height[v] - height[c]!r}" for s, c in zip(parts, kids))
                    + ")"
                )

            left, right = walk(a, b), walk(b, a)
            h = max(height[a], height[b]) + rng.exponential(0.01)
            fh.write(
                f"tree STATE_{g * 1000} = ({left}:{h - height[a]!r},{right}:{h - height[b]!r});\n"
            )
        fh.write("End;\n")
    os.replace(tmp, path)


def timed(cmd, env=None) -> tuple[float, float]:
    """Seconds and peak memory (MB) of a command run in its own process."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
        "dt = time.perf_counter() - t; "
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
        "sys.stderr.write(r.stderr.decode()[-2000:] if r.returncode else ''); "
        "print(dt, rss, r.returncode)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=env
    )
    dt, rss, rc = out.stdout.split()
    if int(rc) != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed: {out.stderr}")
    return float(dt), float(rss)


def first_trees(path, out, k):
    """The file with only its first ``k`` trees (for the slower programs)."""
    with open(path) as src, open(out, "w") as dst:
        seen = 0
        for line in src:
            if line.lstrip().lower().startswith("tree "):
                seen += 1
                if seen > k:
                    continue
            dst.write(line)
    return min(seen, k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trees", type=int, default=100_000)
    ap.add_argument("--taxa", type=int, default=100)
    ap.add_argument("--pool", type=int, default=20_000, help="distinct topologies to draw from")
    ap.add_argument("--rooted-trees", type=int, default=10_000)
    ap.add_argument("--sumtrees-trees", type=int, default=2_000)
    ap.add_argument("--skip-others", action="store_true", help="no SumTrees, no TreeAnnotator")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "phylo-bench"))
    args = ap.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    path = os.path.join(args.cache, f"sumt_{args.trees}_{args.taxa}_{args.pool}.t")
    if not os.path.exists(path):
        print(f"writing {path} ...", flush=True)
        write_mrbayes(path, args.trees, args.taxa, args.pool)
    script = os.path.join(os.path.dirname(sys.executable), "sbn")
    sbn = [script] if os.path.exists(script) else [sys.executable, "-m", "phylo.cli.sbn"]
    timed([*sbn, "summary", path, "--burnin", "0", "-k", "1"])  # compile and cache kernels
    print(f"{args.trees} trees of {args.taxa} taxa ({os.path.getsize(path) / 1e6:.0f} MB)")
    print(f"{'command':<44} {'seconds':>8} {'peak MB':>8} {'ratio':>7}")
    base = None
    rows = [
        ("sbn summary", ["summary", "-k", "1"]),
        ("sbn splits", ["splits"]),
        ("sbn tree --type majority", ["tree", "--type", "majority"]),
        ("sbn tree --type extended", ["tree", "--type", "extended"]),
        ("sbn tree --type mcc", ["tree", "--type", "mcc"]),
        ("sbn tree --type map", ["tree", "--type", "map"]),
    ]
    for label, argv in rows:
        # the baseline again just before each command: the ratio of neighbours
        if base is not None:
            base, _ = timed([*sbn, "summary", path, "--burnin", "0", "-k", "1"])
        dt, rss = timed([*sbn, *argv, path, "--burnin", "0", "-q"])
        if base is None:
            base = dt
        print(f"{label:<44} {dt:8.2f} {rss:8.0f} {dt / base:7.2f}", flush=True)
    if args.skip_others:
        return
    with tempfile.TemporaryDirectory() as tmp:
        sub = os.path.join(tmp, "sub.t")
        k = first_trees(path, sub, args.sumtrees_trees)
        st_cmd = [
            sys.executable,
            "-c",
            "import sys; from dendropy.application.sumtrees import main; sys.exit(main())",
            "--unrooted",
            "-f",
            "0.5",
            "-e",
            "mean-length",
            "-o",
            os.path.join(tmp, "st.tre"),
            "-r",
            "-q",
            sub,
        ]
        st, st_rss = timed(st_cmd)
        ours, _ = timed([*sbn, "tree", "--type", "majority", path, "--burnin", "0", "-q"])
        scaled = st * args.trees / k
        print(
            f"{'SumTrees majority, ' + str(k) + ' trees (scaled)':<44} {scaled:8.1f} "
            f"{st_rss:8.0f}   phylo is {scaled / ours:.0f}x faster"
        )
        ta = shutil.which("treeannotator2") or shutil.which("treeannotator")
        if ta is None:
            print("TreeAnnotator not installed")
            return
        rooted = os.path.join(args.cache, f"sumt_{args.rooted_trees}_{args.taxa}.trees")
        if not os.path.exists(rooted):
            print(f"writing {rooted} ...", flush=True)
            write_beast(rooted, args.rooted_trees, args.taxa, min(args.pool, args.rooted_trees))
        out = os.path.join(tmp, "ta.tre")
        t_ta, rss_ta = timed([ta, "-heights", "mean", "-burnin", "0", rooted, out])
        t_us, rss_us = timed(
            [*sbn, "tree", "--type", "mcc", "--rooted", "--heights", "mean", rooted]
            + ["--burnin", "0", "-q"]
        )
        print(
            f"{'TreeAnnotator MCC, ' + str(args.rooted_trees) + ' rooted trees':<44} "
            f"{t_ta:8.2f} {rss_ta:8.0f}"
        )
        print(
            f"{'sbn tree --type mcc --rooted, same file':<44} {t_us:8.2f} {rss_us:8.0f}"
            f"   phylo is {t_ta / t_us:.1f}x faster"
        )


if __name__ == "__main__":
    main()
