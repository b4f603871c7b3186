#!/usr/bin/env python3
"""Benchmark: reading large tree samples, in time and peak memory, beside dendropy.

Two parts, each measurement in its own process (so that peak memory is its own):

1. **MrBayes-style files** (``--trees`` trees on each of ``--taxa``; generated once into a
   cache folder): MrBayes ``.t`` files with a translate table, ``[&U]`` and lengths printed
   as MrBayes prints them, drawn from a pool of topologies.  ``read_trees`` reads the whole
   file and counts unique topologies; dendropy reads the first ``--dendropy-trees`` trees
   and counts unique topologies by their bipartitions, its rate scaled to trees per second.

2. **A BEAST-style file** (``--beast-trees`` trees of ``--beast-taxa`` taxa; several GB,
   generated into a temporary folder and deleted after): a taxa block, a translate table,
   rooted time trees named ``STATE_n`` with metadata on every node
   (``[&rate=...,height=...]``) and 17-digit lengths as BEAST writes them, the chain moving
   by narrow exchanges and node-height moves, so nearly every tree is a new topology.  On
   it: ``read_trees`` (topologies), ``sbn summary``, ``sbn splits`` (branch lengths and
   heights of every clade), ``sbn tree --type mcc`` and ``sbn fit`` (SBN-EM-alpha), all
   ``--rooted``, with the default burn-in (25%).  Beside them dendropy reads the first
   ``--dendropy-beast-trees`` trees and gathers every split's lengths as SumTrees does; its
   time and memory growth are scaled to the whole file.

Prints seconds (wall and CPU), trees per CPU-second, peak memory, and the ratios to dendropy.
The machine is shared and noisy: CPU seconds and the ratios are the numbers to read.
Goals: at least 200,000 trees/s for 27 taxa; for 1,000 taxa at least 1,000 trees/s and a
peak below 1 GB.

Usage::

    python benchmarks/read_trees.py                          # both parts
    python benchmarks/read_trees.py --skip-beast --trees 50000 --taxa 100
    python benchmarks/read_trees.py --skip-mrbayes --beast-trees 2000
    git archive main | tar -x -C /tmp/base && python benchmarks/read_trees.py --baseline /tmp/base
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

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WARM = os.path.join(ROOT, "data", "example.run1.t")


# -- MrBayes-style files ----------------------------------------------------------------------


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


# -- a BEAST-style file ---------------------------------------------------------------------


def beast_file(path, n_trees, n_taxa, seed=1, moves=4):
    """A BEAST-style ``.trees`` file of rooted time trees with metadata on every node."""
    rng = np.random.default_rng(seed)
    n = n_taxa
    N = 2 * n - 1
    parent = np.full(N, -1)
    children = [[] for _ in range(N)]
    height = np.zeros(N)
    active = list(range(n))
    t = 0.0
    for v in range(n, N):  # a coalescent tree
        k = len(active)
        t += rng.exponential(2.0 / (k * (k - 1)))
        i, j = rng.choice(k, 2, replace=False)
        a, b = active[i], active[j]
        for x in sorted((i, j), reverse=True):
            active.pop(x)
        parent[a] = parent[b] = v
        children[v] = [a, b]
        height[v] = t
        active.append(v)
    root = N - 1
    rate = rng.lognormal(0, 0.3, N)
    labels = [str(i + 1) for i in range(n)]
    with open(path, "w") as fh:
        fh.write(f"#NEXUS\n\nBegin taxa;\n\tDimensions ntax={n};\n\t\tTaxlabels\n")
        fh.writelines(f"\t\t\ttaxon_{i + 1}\n" for i in range(n))
        fh.write("\t\t\t;\nEnd;\nBegin trees;\n\tTranslate\n")
        fh.writelines(f"\t\t{i + 1} taxon_{i + 1}{',' if i < n - 1 else ''}\n" for i in range(n))
        fh.write(";\n")
        for s in range(n_trees):
            for _ in range(moves):
                # narrow exchange: child c of v and v's sibling u swap when u is younger
                v = int(rng.integers(n, N - 1))
                p = parent[v]
                u = children[p][0] if children[p][1] == v else children[p][1]
                c = children[v][int(rng.integers(2))]
                if height[u] < height[v]:
                    children[v][children[v].index(c)] = u
                    children[p][children[p].index(u)] = c
                    parent[u], parent[c] = v, p
                w = int(rng.integers(n, N - 1))  # a node-height move
                lo = max(height[children[w][0]], height[children[w][1]])
                height[w] = lo + (height[parent[w]] - lo) * rng.random()
                rate[rng.integers(N)] = rng.lognormal(0, 0.3)
            parts, vals = [], []
            stack = [(root, 0)]
            while stack:
                v, st = stack.pop()
                if v < n:
                    parts.append(labels[v] + "[&rate=%.17g,height=%.17g]:%.17g")
                    vals += (rate[v], height[v], height[parent[v]] - height[v])
                elif st < 2:
                    parts.append("(" if st == 0 else ",")
                    stack.append((v, st + 1))
                    stack.append((children[v][st], 0))
                elif v == root:
                    parts.append(")[&rate=%.17g,height=%.17g]:0.0")
                    vals += (rate[v], height[v])
                else:
                    parts.append(")[&rate=%.17g,height=%.17g]:%.17g")
                    vals += (rate[v], height[v], height[parent[v]] - height[v])
            fh.write(f"tree STATE_{s * 10000} = " + ("".join(parts) % tuple(vals)) + ";\n")
        fh.write("End;\n")


# -- measuring in child processes -----------------------------------------------------------


def run_child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


MEASURE = """
import json, resource, time, sys
sys.path.insert(0, {root!r})
{cli}
{warm}
t0 = time.perf_counter(); c0 = time.process_time()
{body}
print(json.dumps(dict(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      **extra)))
"""


# phylo.cli is the folder cli/ of a source tree: taken from the baseline's tree, not from
# the installed version
BASELINE_CLI = """
import importlib.util, phylo
_spec = importlib.util.spec_from_file_location(
    "phylo.cli", {root!r} + "/cli/__init__.py", submodule_search_locations=[{root!r} + "/cli"])
phylo.cli = sys.modules["phylo.cli"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(phylo.cli)
"""


def measure(body: str, warm: str = "", root: str | None = None) -> dict:
    """Run ``body`` in a fresh process after ``warm``; ``root``: a source tree of another
    version of phylo (the baseline) imported instead of this one."""
    cli = BASELINE_CLI.format(root=root) if root else ""
    return run_child(MEASURE.format(root=root or ROOT, cli=cli, warm=warm, body=body))


PHYLO_READ = """
s = read_trees({path!r}, burnin=0{options})
extra = dict(trees=s.n_trees, unique=s.n_topologies)
"""

WARM_READ = """
from phylo.trees import read_trees
read_trees({warm!r}, burnin=0, lengths="stream")   # load compiled kernels (cached)
read_trees({warm!r}, burnin=0, chunk_size=4096)   # and those of every chunk after the first
"""

CLI = """
from phylo.cli.sbn import main
try:
    main({args!r}, standalone_mode=False)
except SystemExit as exc:
    if exc.code:
        raise
extra = dict()
"""

WARM_CLI = """
from phylo.cli.sbn import main
for args in {warm_args!r}:  # load the compiled kernels (cached) of the command
    try:
        main(args, standalone_mode=False)
    except SystemExit:
        pass
"""

DENDROPY_UNIQUE = """
import dendropy, itertools
seen = {{}}
n = 0
for t in dendropy.Tree.yield_from_files([{path!r}], schema="nexus", rooting="force-unrooted"):
    t.encode_bipartitions()
    key = frozenset(b.split_bitmask for b in t.bipartition_encoding)
    seen[key] = seen.get(key, 0) + 1
    n += 1
    if n >= {limit}:
        break
extra = dict(trees=n, unique=len(seen))
"""

DENDROPY_SPLITS = """
import dendropy
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
lengths = {{}}
n = 0
for t in dendropy.Tree.yield_from_files([{path!r}], schema="nexus", rooting="force-rooted"):
    t.encode_bipartitions()
    for e in t.postorder_edge_iter():
        lengths.setdefault(e.bipartition.split_bitmask, []).append(e.length)
    n += 1
    if n >= {limit}:
        break
extra = dict(trees=n, base_mb=base, splits=len(lengths))
"""


WARM_PLAIN = """
from phylo.trees import read_trees
read_trees({warm!r}, burnin=0)   # load compiled kernels (cached)
read_trees({warm!r}, burnin=0, chunk_size=4096)   # and those of every chunk after the first
"""


def baseline_row(args, label, body, warm):
    """The baseline's measurement, or None (and why) when it fails."""
    try:
        return measure(body, warm, root=args.baseline)
    except RuntimeError as exc:
        last = str(exc).strip().splitlines()[-1:] or ["?"]
        print(f"(baseline failed on {label}: {last[0][:200]})", file=sys.stderr)
        return None


def mrbayes_part(args) -> None:
    os.makedirs(args.cache, exist_ok=True)
    base = args.baseline is not None
    print(
        f"{'taxa':>5} {'trees':>9} {'MB':>7} {'unique':>7} {'trees/s (cpu)':>14} "
        f"{'(wall)':>9} {'peak MB':>8} {'dendropy trees/s':>17} {'peak MB':>8} {'ratio':>7}"
        + (f"{'baseline trees/s':>18} {'peak MB':>8} {'speed':>7} {'memory':>7}" if base else "")
    )
    for n in args.taxa:
        path = os.path.join(args.cache, f"bench_{n}taxa_{args.trees}.t")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            generate(path, args.trees, n, args.pool)
            print(f"(generated {path} in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        size = os.path.getsize(path) / 2**20
        ours = measure(PHYLO_READ.format(path=path, options=""), WARM_READ.format(warm=WARM))
        dp = measure(DENDROPY_UNIQUE.format(path=path, limit=args.dendropy_trees))
        rate = ours["trees"] / ours["cpu"]
        dp_rate = dp["trees"] / dp["cpu"]
        line = (
            f"{n:>5} {ours['trees']:>9} {size:>7.0f} {ours['unique']:>7} {rate:>14,.0f} "
            f"{ours['trees'] / ours['seconds']:>9,.0f} {ours['rss_mb']:>8.0f} "
            f"{dp_rate:>17,.0f} {dp['rss_mb']:>8.0f} {rate / dp_rate:>6.0f}x"
        )
        if base:
            b = baseline_row(
                args, f"{n} taxa", PHYLO_READ.format(path=path, options=""),
                WARM_PLAIN.format(warm=WARM),
            )  # fmt: skip
            if b is None:
                line += f"{'failed':>18}"
            else:
                b_rate = b["trees"] / b["cpu"]
                line += (
                    f"{b_rate:>18,.0f} {b['rss_mb']:>8.0f} {rate / b_rate:>6.2f}x "
                    f"{b['rss_mb'] / ours['rss_mb']:>6.2f}x"
                )
        print(line)
    print(
        "ratio = phylo trees per CPU-second over dendropy's (dendropy on the first "
        f"{args.dendropy_trees} trees, scaled); goal: >= 200,000 trees/s for 27 taxa"
        + (
            "; speed = trees/s over the baseline's, memory = the baseline's peak over ours"
            if base
            else ""
        )
    )


def beast_part(args) -> None:
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        path = os.path.join(folder, "beast.trees")
        small = os.path.join(folder, "small.trees")
        t0 = time.perf_counter()
        beast_file(path, args.beast_trees, args.beast_taxa)
        beast_file(small, 20, 50, seed=2)
        size = os.path.getsize(path) / 2**30
        print(
            f"\nBEAST-style file: {args.beast_trees} trees of {args.beast_taxa} taxa, "
            f"{size:.2f} GB, metadata on every node (generated in "
            f"{time.perf_counter() - t0:.0f} s, deleted after)"
        )
        out = os.path.join(folder, "out")
        rows, base_rows = [], []
        ours = measure(
            PHYLO_READ.format(path=path, options=", rooted=True"), WARM_READ.format(warm=small)
        )
        rows.append(("read_trees (topologies)", ours))
        if args.baseline:
            b = baseline_row(
                args, "read_trees", PHYLO_READ.format(path=path, options=", rooted=True"),
                WARM_PLAIN.format(warm=small),
            )  # fmt: skip
            base_rows.append(("read_trees (topologies)", b))
        commands = [
            ("sbn summary", ["summary", "--rooted"]),
            ("sbn splits", ["splits", "--rooted", "--format", "tsv"]),
            ("sbn tree --type mcc", ["tree", "--type", "mcc", "--rooted"]),
            ("sbn fit", ["fit", "--rooted"]),
        ]
        for label, cmd in commands:
            warm = WARM_CLI.format(warm_args=[[*cmd, small, "-q", "-o", out]])
            rows.append((label, measure(CLI.format(args=[*cmd, path, "-q", "-o", out]), warm)))
            if args.baseline:
                body = CLI.format(args=[*cmd, path, "-q", "-o", out])
                base_rows.append((label, baseline_row(args, label, body, warm)))
        limit = args.dendropy_beast_trees
        dp = measure(DENDROPY_SPLITS.format(path=path, limit=limit))
        scale = args.beast_trees / dp["trees"]
        dp_cpu = dp["cpu"] * scale
        dp_rss = dp["base_mb"] + (dp["rss_mb"] - dp["base_mb"]) * scale
        print(
            f"{'':<26}{'wall s':>8}{'CPU s':>8}{'trees/s':>9}{'peak MB':>9}"
            f"{'CPU: dendropy / phylo':>23}{'memory: dendropy / phylo':>26}"
        )
        for label, r in rows:
            print(
                f"{label:<26}{r['seconds']:>8.1f}{r['cpu']:>8.1f}"
                f"{args.beast_trees / r['cpu']:>9,.0f}{r['rss_mb']:>9.0f}"
                f"{dp_cpu / r['cpu']:>22.0f}x{dp_rss / r['rss_mb']:>25.1f}x"
            )
        print(
            f"{'dendropy (scaled)':<26}{dp['seconds'] * scale:>8.0f}{dp_cpu:>8.0f}"
            f"{args.beast_trees / dp_cpu:>9,.1f}{dp_rss:>9.0f}"
            f"   (measured on {dp['trees']} trees: {dp['cpu']:.1f} CPU s, "
            f"{dp['rss_mb']:.0f} MB; reading and gathering each split's lengths, as SumTrees)"
        )
        print("goals: >= 1,000 trees/s (CPU) and a peak below 1 GB")
        if base_rows:
            print(f"\n{'baseline':<26}{'wall s':>8}{'CPU s':>8}{'trees/s':>9}{'peak MB':>9}"
                  f"{'CPU: baseline / phylo':>23}{'memory: baseline / phylo':>26}")  # fmt: skip
            for (label, b), (_, r) in zip(base_rows, rows):
                if b is None:
                    print(f"{label:<26}{'failed':>8}")
                    continue
                print(
                    f"{label:<26}{b['seconds']:>8.1f}{b['cpu']:>8.1f}"
                    f"{args.beast_trees / b['cpu']:>9,.0f}{b['rss_mb']:>9.0f}"
                    f"{b['cpu'] / r['cpu']:>22.2f}x{b['rss_mb'] / r['rss_mb']:>25.2f}x"
                )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=200_000)
    ap.add_argument("--taxa", type=int, nargs="+", default=[50, 27])
    ap.add_argument("--pool", type=int, default=5000, help="distinct topologies to draw from")
    ap.add_argument("--dendropy-trees", type=int, default=3000)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "phylo-bench"))
    ap.add_argument("--beast-trees", type=int, default=20_000)
    ap.add_argument("--beast-taxa", type=int, default=1000)
    ap.add_argument("--dendropy-beast-trees", type=int, default=100)
    ap.add_argument("--tmp", default=None, help="folder for the BEAST-style file")
    ap.add_argument(
        "--baseline",
        default=None,
        help="a source tree of another version of phylo (e.g. 'git archive main' unpacked) "
        "measured side by side with this one",
    )
    ap.add_argument("--skip-mrbayes", action="store_true")
    ap.add_argument("--skip-beast", action="store_true")
    args = ap.parse_args()
    if not args.skip_mrbayes:
        mrbayes_part(args)
    if not args.skip_beast:
        beast_part(args)


if __name__ == "__main__":
    main()
