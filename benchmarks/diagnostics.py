#!/usr/bin/env python3
"""Benchmark: the approximate topological ESS, the whole of ``sbn diagnose``, and what the
pooling check adds to ``sbn summary`` and ``sbn fit``.

* The approximate ESS (every pair of trees at lags 1..100, path distance) against the same
  computation done as RWTY does it, one distance per pair of trees from their taxon-to-taxon
  path lengths, with dendropy's ``PhylogeneticDistanceMatrix`` (each distinct tree's matrix
  computed once, a generous baseline).  The baseline is timed on the first ``--baseline-lags``
  lags and scaled to 100; both compute the same numbers (checked).
* ``diagnose`` on the same runs beside ``read_trees`` of them.
* ``pooling_check`` beside ``read_trees``: the cost of the warning before pooling.

Runs: the example MrBayes runs of ``data/`` (20 taxa, 1,501 trees per run after burn-in),
and two sticky chains of ``--taxa`` taxa (default 100) and ``--trees`` trees drawn from a pool
of random topologies.  Prints seconds and ratios; on a shared machine read the ratios.

Usage::

    python benchmarks/diagnostics.py
    python benchmarks/diagnostics.py --taxa 200 --trees 3000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def random_newick(rng, names):
    nodes = list(names)
    while len(nodes) > 2:
        i, j = sorted(rng.choice(len(nodes), size=2, replace=False))
        b = nodes.pop(j)
        a = nodes.pop(i)
        nodes.append(f"({a},{b})")
    return f"({nodes[0]},{nodes[1]});"


def sticky_runs(folder, n_taxa, n_trees, rng, stay=0.9, pool=200):
    names = [f"t{i}" for i in range(n_taxa)]
    trees = [random_newick(rng, names) for _ in range(pool)]
    paths = []
    for r in range(2):
        state = int(rng.integers(pool))
        lines = []
        for _ in range(n_trees):
            if rng.random() > stay:
                state = int(rng.integers(pool))
            lines.append(trees[state])
        p = os.path.join(folder, f"sticky{r + 1}.nwk")
        with open(p, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        paths.append(p)
    return paths


def baseline_sq_distances(sample, run, lags):
    """Mean squared path distance at lags 1..lags with dendropy, RWTY's way."""
    import dendropy

    tns = dendropy.TaxonNamespace(list(sample.taxa.names))
    taxa = [tns.get_taxon(n) for n in sample.taxa.names]
    n = len(taxa)
    cache = {}

    def vector(t):
        if t not in cache:
            tree = dendropy.Tree.get(
                data=sample.newick(t), schema="newick", taxon_namespace=tns,
                rooting="force-unrooted",
            )  # fmt: skip
            pdm = tree.phylogenetic_distance_matrix()
            cache[t] = np.array(
                [pdm.path_edge_count(taxa[i], taxa[j]) for i in range(n) for j in range(i + 1, n)]
            )
        return cache[t]

    trace = sample.traces[run]
    N = trace.shape[0]
    out = []
    for k in range(1, lags + 1):
        acc = 0.0
        for i in range(N - k):
            a, b = vector(trace[i]), vector(trace[i + k])
            acc += float(((a - b) ** 2).sum())
        out.append(acc / (N - k))
    return np.array(out)


def measure(label, paths, burnin, baseline_lags):
    from phylo.trees import read_trees
    from phylo.trees.diagnosis import diagnose
    from phylo.trees.diagnostics import approximate_ess, pooling_check, subsample

    t0 = time.perf_counter()
    whole = read_trees(paths, burnin=0, lengths=True)
    t_read = time.perf_counter() - t0
    burn = [int(burnin * t.shape[0]) for t in whole.traces]
    kept = subsample(whole, burn)
    approximate_ess(kept)  # compile
    t0 = time.perf_counter()
    ours = approximate_ess(kept)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = baseline_sq_distances(kept, 0, baseline_lags)
    t_base = (time.perf_counter() - t0) * ours.lags.shape[0] / baseline_lags * kept.n_runs
    assert np.allclose(base, ours.sq_distance[0, :baseline_lags], rtol=1e-9)
    t0 = time.perf_counter()
    diagnose(whole, burnin=burnin)
    t_diag = time.perf_counter() - t0
    plain = read_trees(paths)
    t0 = time.perf_counter()
    pooling_check(plain)
    t_pool = time.perf_counter() - t0
    n, N = whole.n_taxa, kept.traces[0].shape[0]
    print(f"\n{label}: {n} taxa, {kept.n_runs} runs of {N} trees after burn-in, "
          f"{whole.n_topologies} topologies")  # fmt: skip
    print(f"  approximate ESS (all pairs, lags 1..{ours.lags.shape[0]}): {t_ours:.3f} s; "
          f"dendropy baseline (scaled from {baseline_lags} lags): {t_base:.1f} s; "
          f"ratio {t_base / t_ours:.0f}x")  # fmt: skip
    print(f"  read_trees with lengths: {t_read:.2f} s; diagnose: {t_diag:.2f} s "
          f"({t_diag / t_read:.2f} x reading)")  # fmt: skip
    print(f"  pooling check: {t_pool * 1000:.1f} ms ({t_pool / t_read:.3f} x reading)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--taxa", type=int, default=100)
    ap.add_argument("--trees", type=int, default=2000)
    ap.add_argument("--baseline-lags", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    data = ROOT / "data"
    measure("example MrBayes runs", [str(data / "example.run1.t"), str(data / "example.run2.t")],
            0.25, args.baseline_lags)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        paths = sticky_runs(folder, args.taxa, args.trees, np.random.default_rng(args.seed))
        measure("sticky chains", paths, 0.0, args.baseline_lags)


if __name__ == "__main__":
    main()
