"""Cost of the sampling marginal-likelihood estimators on one DS1 topology.

For each method: the estimate and its standard error, wall-clock and CPU seconds, likelihood
evaluations, and two ratios measured in the same process: seconds over the time the same
number of bare likelihood-and-gradient evaluations takes (the sampler's overhead), and
seconds over the 75 minutes the paper reports for a stepping-stone run per DS1 tree.

    python benchmarks/marglik_sampling.py [DATA_DIR] [--tree K] [--methods ss,gss,bs]

DATA_DIR holds ``marglik/alignments/DS1.nex`` and ``marglik/credible_sets/...ds1.tsv``
(default ``../shared/data`` next to the project's root).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from phylo.likelihood import read_alignment
from phylo.marglik.compare import read_topologies
from phylo.marglik.estimators import run
from phylo.marglik.posterior import Posterior

PAPER_SECONDS = 75 * 60


def main():
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(root.parent / "shared" / "data"))
    ap.add_argument("--tree", type=int, default=0)
    ap.add_argument("--methods", default="ss,gss,bs")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    data = Path(args.data) / "marglik"
    aln = read_alignment(str(data / "alignments" / "DS1.nex"))
    trees, _ = read_topologies(str(data / "credible_sets" / "JC_no_gamma_credible_set_ds1.tsv"))
    post = Posterior(aln, trees[args.tree])

    t = np.full(post.dim, 0.05)
    post.log_likelihood_and_gradient(t)
    reps = 500
    t0 = time.perf_counter()
    for _ in range(reps):
        post.log_likelihood_and_gradient(t)
    per_eval = (time.perf_counter() - t0) / reps
    print(
        f"DS1 tree {args.tree}: {post.dim} branches; one likelihood+gradient "
        f"{per_eval * 1e3:.3f} ms"
    )
    print(
        f"{'method':6s} {'log ML':>12s} {'se':>7s} {'wall s':>8s} {'cpu s':>8s} "
        f"{'evals':>8s} {'s/(evals*grad)':>15s} {'s/paper':>8s}"
    )
    for m in args.methods.split(","):
        c0 = time.process_time()
        est = run(m, post, np.random.default_rng(args.seed))
        cpu = time.process_time() - c0
        print(
            f"{m:6s} {est.log_ml:12.3f} {est.se:7.3f} {est.seconds:8.1f} {cpu:8.1f} "
            f"{est.n_evaluations:8d} {est.seconds / (est.n_evaluations * per_eval):15.2f} "
            f"{est.seconds / PAPER_SECONDS:8.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
