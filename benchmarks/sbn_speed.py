#!/usr/bin/env python3
"""Benchmark: SBN-SA and SBN-EM fitting speed, against the paper's own Python code.

Baseline: Zhang & Matsen's reference implementation (github.com/zcrabbit/sbn, Python,
dictionaries of bitarrays over ete3 trees), timed once on this machine on DS1 short-run
replicate 5 (1,503 unique trees, 27 taxa): 4.3 s for SBN-SA and 435 s for SBN-EM to its
notebook's convergence (66 iterations: at most 1000, at least 50, tolerance 1e-5).  Those
two numbers are constants here (that code needs Python 2, ete3 and bitarray).

Measured here, each as the best of several runs (the machine is shared):

* SBN-SA and SBN-EM on DS1 replicate 5, from the TreeSample to the fitted model (indexing
  root splits, subsplits and PCSPs included); ratios to the baseline;
* SBN-EM on DS8 replicate 1 (64 taxa, 3,151 unique trees);
* the cost of one EM iteration (E-step for all rootings of all trees, then M-step) and how it
  grows with the number of taxa (fixed number of trees) and of unique trees (fixed taxa), on
  synthetic samples: random trees a few NNI moves away from one tree.

Usage::

    python benchmarks/sbn_speed.py
    python benchmarks/sbn_speed.py --repeats 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from phylo.sbn import fit  # noqa: E402
from phylo.sbn.sbn import Training, expectation_maximization  # noqa: E402
from phylo.trees import Taxa, TreeSample, read_trees  # noqa: E402
from phylo.trees.sample import RunInfo  # noqa: E402
from phylo.trees.topology import canonical  # noqa: E402

SHARED = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ds"
SHORT = SHARED / "zcrabbit-sbn" / "data" / "short_run_data_DS1-8"
BASELINE_SA = 4.3  # s, paper code, DS1 rep 5, this machine
BASELINE_EM = 435.0  # s, paper code, DS1 rep 5, 66 iterations, this machine
BASELINE_EM_ITER = BASELINE_EM / 66


def best_of(f, repeats):
    out = None
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def random_unrooted(rng, n):
    """A random unrooted binary tree as a parent array (leaves 0..n-1, root last)."""
    parent = np.full(2 * n - 1, -1, np.int64)
    nodes = list(range(n))
    nxt = n
    while len(nodes) > 1:
        i, j = sorted(rng.choice(len(nodes), size=2, replace=False))
        b = nodes.pop(j)
        a = nodes.pop(i)
        parent[a] = nxt
        parent[b] = nxt
        nodes.append(nxt)
        nxt += 1
    return canonical(parent[None, :], n, False)[0]


def nni(rng, parent, n):
    """One random nearest-neighbour interchange on a canonical unrooted parent array."""
    p = parent.copy()
    N = p.shape[0]
    inner = [v for v in range(n, N - 1)]
    v = inner[rng.integers(len(inner))]
    up = p[v]
    kids = [c for c in range(N - 1) if p[c] == v]
    sibs = [c for c in range(N - 1) if p[c] == up and c != v]
    c = kids[rng.integers(2)]
    s = sibs[rng.integers(len(sibs))]
    p[c], p[s] = up, v
    return p


def synthetic_sample(n, n_trees, rng, moves=4):
    """``n_trees`` distinct topologies, each a few random NNIs from one random tree."""
    base = random_unrooted(rng, n)
    seen = {}
    while len(seen) < n_trees:
        t = base
        for _ in range(rng.integers(1, moves + 1)):
            t = nni(rng, t, n)
        t = canonical(t[None, :], n, False)[0]
        seen.setdefault(t.tobytes(), t)
    parents = np.stack(list(seen.values())).astype(np.int32)
    counts = rng.integers(1, 50, size=(n_trees, 1)).astype(float)
    run = RunInfo("<synthetic>", int(counts.sum()), 0, 1, int(counts.sum()), False)
    return TreeSample(
        Taxa([f"t{i}" for i in range(n)]), False, parents, counts, [run], [np.arange(n_trees)]
    )


def per_iteration(sample, iterations=10):
    tr = Training(sample)
    sa = tr.normalise(tr.sa_counts())
    expectation_maximization(tr, sa, None, 1, 0, 0.0)  # compile / warm up
    t, _ = best_of(lambda: expectation_maximization(tr, sa, None, iterations, 0, 0.0), 3)
    return t / iterations


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    r = args.repeats

    ds1 = SHORT / "DS1" / "rep_5" / "DS1.trprobs"
    ds8 = SHORT / "DS8" / "rep_1" / "DS8.trprobs"
    if ds1.exists():
        s = read_trees([str(ds1)])
        fit(s, "sa")
        fit(s, "em", max_iter=2)
        t_sa, _ = best_of(lambda: fit(s, "sa"), max(r, 10))
        t_em, m = best_of(lambda: fit(s, "em"), r)
        it = m.fit_info["iterations"]
        print(f"DS1 replicate 5 ({s.n_topologies} unique trees, {s.n_taxa} taxa)")
        print(f"  {'':<28}{'phylo':>12}{'paper code':>14}{'speed-up':>11}")
        print(
            f"  {'SBN-SA':<28}{t_sa * 1e3:>10.1f}ms{BASELINE_SA:>13.1f}s"
            f"{BASELINE_SA / t_sa:>10.0f}x"
        )
        print(
            f"  {f'SBN-EM ({it} iterations)':<28}{t_em:>11.3f}s{BASELINE_EM:>13.1f}s"
            f"{BASELINE_EM / t_em:>10.0f}x"
        )
        print(
            f"  {'one EM iteration':<28}{t_em / it * 1e3:>10.2f}ms"
            f"{BASELINE_EM_ITER:>13.2f}s{BASELINE_EM_ITER / (t_em / it):>10.0f}x"
        )
        print(
            f"  goals: SA < 20 ms ({'met' if t_sa < 0.02 else 'NOT met'}), "
            f"EM < 0.5 s ({'met' if t_em < 0.5 else 'NOT met'})"
        )
    else:
        print(f"DS1 short runs not found under {SHORT}; skipping the baseline comparison")
    if ds8.exists():
        s = read_trees([str(ds8)])
        fit(s, "em", max_iter=2)
        t_em, m = best_of(lambda: fit(s, "em"), max(1, r // 2))
        it = m.fit_info["iterations"]
        print(
            f"\nDS8 replicate 1 ({s.n_topologies} unique trees, {s.n_taxa} taxa): SBN-EM "
            f"{t_em:.2f} s ({it} iterations, {t_em / it * 1e3:.1f} ms each); goal < 3 s "
            f"({'met' if t_em < 3 else 'NOT met'})"
        )
        t_a, m = best_of(lambda: fit(s, "em-alpha"), max(1, r // 2))
        print(f"  SBN-EM-alpha {t_a:.2f} s ({m.fit_info['iterations']} iterations)")

    rng = np.random.default_rng(1)
    print("\nCost of one EM iteration on synthetic samples (trees a few NNIs from one tree)")
    print(f"  {'taxa':>6}{'trees':>8}{'ms / iteration':>16}{'ns / (tree x edge)':>20}")
    for n, T in [
        (16, 2000),
        (32, 2000),
        (64, 2000),
        (128, 2000),
        (256, 2000),
        (64, 500),
        (64, 1000),
        (64, 4000),
        (64, 8000),
    ]:
        sample = synthetic_sample(n, T, rng)
        t = per_iteration(sample)
        print(f"  {n:>6}{T:>8}{t * 1e3:>16.2f}{t / (T * (2 * n - 3)) * 1e9:>20.1f}")
    print(
        "  (linear in both: the E-step visits each edge of each unique tree a fixed number "
        "of times)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
