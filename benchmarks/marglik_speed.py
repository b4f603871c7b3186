#!/usr/bin/env python3
"""Benchmark: seconds per DS1 tree of the Laplus, importance-sampling and variational
estimators, on one core, against the paper's code.

Baseline: the running times of physher (the code of Fourment et al. 2020) reported for DS1,
per tree: 0.16 s for the Gamma Laplus (``gl``) and 1.0 s for importance sampling from it with
10,000 samples (``glis``).  They are constants here; ``vbis`` and ``elbo`` have no baseline.

Each estimator runs on a fresh posterior (so the MAP optimisation is part of its time) with
one thread for batches, on the first ``--trees`` trees of the DS1 credible set, and each
tree's time is the best of ``--repeats`` runs (the machine is shared).  The value, its
standard error and the number of likelihood evaluations are printed too.

With ``--integrated MODEL`` (e.g. ``GTR+G4``) it times instead each method under that model
with its parameters integrated out (MrBayes's default priors) against the same method under
JC69 with nothing to integrate, the two run alternately on each tree (the machine is shared),
and prints the ratio of their seconds per tree.

Usage::

    python benchmarks/marglik_speed.py
    python benchmarks/marglik_speed.py --trees 10 --repeats 3 --methods gl,glis
    python benchmarks/marglik_speed.py --integrated GTR+G4 --methods gl,glis,gss --trees 2
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

from phylo.likelihood import read_alignment  # noqa: E402
from phylo.marglik.compare import read_topologies  # noqa: E402
from phylo.marglik.estimators import run  # noqa: E402
from phylo.marglik.posterior import Posterior  # noqa: E402

SHARED = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "marglik"
BASELINE = {"gl": 0.16, "glis": 1.0}  # s per DS1 tree, physher (paper)
GOAL = {"gl": 0.05, "glis": 0.3}


def integrated(aln, trees, model: str, methods: list[str], repeats: int, threads: int):
    """Seconds per tree of each method under ``model`` with integrated parameters against
    JC69 with none, run alternately; prints the ratios."""
    from phylo.likelihood import model_spec
    from phylo.marglik.parameters import model_prior

    mp = model_prior(model_spec(model), None)
    setups = {"JC69": lambda tree: Posterior(aln, tree, batch_threads=threads)}
    setups[model] = lambda tree: Posterior(aln, tree, mp, batch_threads=threads)
    print(f"DS1, {len(trees)} trees, best of {repeats}, batch threads {threads}")
    print(f"{model} integrates {', '.join(mp.free)} ({mp.n} coordinates): {mp.describe()}")
    print(
        f"{'method':7s} {'JC69 s':>8s} {model + ' s':>12s} {'ratio':>7s} "
        f"{'JC69 evals':>10s} {model + ' evals':>14s}  tree 0: log ML (se) JC69 | {model}"
    )
    for name in methods:
        for make in setups.values():  # compile and warm up once
            run(name, make(trees[0]), np.random.default_rng(0), **QUICK.get(name, {}))
        secs = {k: [] for k in setups}
        evals = {k: [] for k in setups}
        first = {}
        for k, tree in enumerate(trees):
            best = {lab: np.inf for lab in setups}
            for r in range(repeats):
                for label, make in setups.items():
                    est = run(name, make(tree), np.random.default_rng([k, r]))
                    best[label] = min(best[label], est.seconds)
                    if k == 0 and r == 0:
                        first[label] = est
                        evals[label].append(est.n_evaluations)
            for label in setups:
                secs[label].append(best[label])
        a, b = float(np.mean(secs["JC69"])), float(np.mean(secs[model]))
        print(
            f"{name:7s} {a:8.3f} {b:12.3f} {b / a:7.2f} {evals['JC69'][0]:10d} "
            f"{evals[model][0]:14d}  {first['JC69'].log_ml:.2f} ({first['JC69'].se:.3f}) | "
            f"{first[model].log_ml:.2f} ({first[model].se:.3f})",
            flush=True,
        )
    print(f"ratio = {model} with integrated parameters / JC69 (seconds per tree)")


#: settings of the warm-up run (it only compiles)
QUICK = {
    "gss": dict(temperatures=4, samples=10, burnin=5, warmup=20, pilot=20),
    "ss": dict(temperatures=4, samples=10, burnin=5, warmup=20),
    "glis": dict(samples=100),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trees", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default="gl,ll,bl,glis,elbo,vbis")
    ap.add_argument("--threads", type=int, default=1, help="batch threads (default 1)")
    ap.add_argument(
        "--integrated", default=None, metavar="MODEL", help="time MODEL's integrated parameters"
    )
    args = ap.parse_args(argv)
    aln_path = SHARED / "alignments" / "DS1.nex"
    set_path = SHARED / "credible_sets" / "JC_no_gamma_credible_set_ds1.tsv"
    if not aln_path.exists():
        sys.exit(f"benchmark data not found under {SHARED} (set PHYLO_SHARED_DATA)")
    aln = read_alignment(str(aln_path))
    trees, _ = read_topologies(str(set_path), None, args.trees)
    if args.integrated:
        integrated(aln, trees, args.integrated, args.methods.split(","), args.repeats, args.threads)
        return
    # compile and warm up once
    for name in args.methods.split(","):
        run(name, Posterior(aln, trees[0], batch_threads=args.threads), np.random.default_rng(0))
    print(f"DS1, {len(trees)} trees, best of {args.repeats}, batch threads {args.threads}")
    print(
        f"{'method':8s} {'s/tree':>8s} {'paper s':>8s} {'ratio':>7s} {'goal s':>7s} "
        f"{'evals':>7s}  tree 0: log ML (se)"
    )
    for name in args.methods.split(","):
        secs, evals, first = [], [], None
        for k, tree in enumerate(trees):
            best = np.inf
            for r in range(args.repeats):
                post = Posterior(aln, tree, batch_threads=args.threads)
                est = run(name, post, np.random.default_rng([k, r]))
                best = min(best, est.seconds)
                if k == 0 and r == 0:
                    first = est
            secs.append(best)
            evals.append(est.n_evaluations)
        s = float(np.mean(secs))
        base = BASELINE.get(name)
        ratio = f"{s / base:7.2f}" if base else f"{'-':>7s}"
        basestr = f"{base:8.2f}" if base else f"{'-':>8s}"
        goal = f"{GOAL[name]:7.2f}" if name in GOAL else f"{'-':>7s}"
        print(
            f"{name:8s} {s:8.3f} {basestr} {ratio} {goal} {int(np.mean(evals)):7d}  "
            f"{first.log_ml:.3f} ({first.se:.3f})"
        )
    print("ratio = ours / paper's code (below 1: faster)")
    setup = []
    for tree in trees:
        t0 = time.perf_counter()
        Posterior(aln, tree, batch_threads=args.threads)
        setup.append(time.perf_counter() - t0)
    print(
        f"not included above: setting up a tree's posterior (patterns, site-repeat plan, "
        f"buffers) {1e3 * float(np.mean(setup)):.1f} ms per tree"
    )


if __name__ == "__main__":
    main()
