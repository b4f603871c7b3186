#!/usr/bin/env python3
"""Variational Bayesian phylogenetic inference (``sbn vi``) on DS1, DS2, DS7 and DS8, beside
the published VBPI numbers.

For a data set, trains the VBPI family with the SBN support of one short-run replicate
(``zcrabbit-sbn/data/short_run_data_DS1-8``; JC69, Exponential(10) branch lengths), then
prints, as ``sbn vi`` computes them, the ELBO, the 10-sample bound L^10 and the marginal
likelihood by importance sampling with 1,000 particles (mean and sd over 10 batches),
KL(golden || q) of the learnt SBN beside that of SBN-EM-alpha fitted to the same sample,
the wall and CPU time (CPU counts every thread), and the published anchors with the ratio
of the published training time to ours (different machines: a rough guide).

Golden runs: DS1 and DS2 pool the ten golden ``.trprobs`` replicates as counts
``round(w * 750001)`` (Zhang & Matsen 2018); DS7 uses the long MrBayes run of
``matsengrp-vbpi-torch/.../long_mcmc/ds7/exp`` (taxa numbered in the alphabetical order of
the alignment's names); DS8 has none here (KL not computed).

``variance`` measures, at a fixed point (a trained model, the likelihood not annealed), the
total variance tr Cov of the topology gradient of VIMCO, RWS, the unordered set and
sum-and-sample estimators at K = 10 likelihood evaluations each, beside an unbiased estimate
of the squared norm of its expectation (the estimators follow different objectives: VIMCO
the gradient of L^10, RWS the wake-phase direction, the other two that of the ELBO), and
the time per estimate.  ``race`` trains from the same start with each estimator and reports
when each first reaches a given ELBO (iterations, likelihood evaluations, seconds), as
ratios to VIMCO.  ``floor`` splits KL(golden || q) into its parts for SBN-EM-alpha, for SBNs
fitted by EM to the golden trees themselves (how low an SBN can go on that support) and for
given models.

Usage::

    python benchmarks/vbpi.py run DS1 [--iterations N] [--estimator vimco] [--out DIR]
    python benchmarks/vbpi.py run DS1 --iterations 200000 --lr 1e-3 --lr-decay-every 20000 \
        --anneal-iterations 50000 --branch-objective bound     # VBPI's rates and objective
    python benchmarks/vbpi.py variance DS1 --model DIR/DS1.vimco.json [--repeats 200]
    python benchmarks/vbpi.py race DS1 [--iterations N] [--threshold -7111]
    python benchmarks/vbpi.py floor DS1 [MODEL.json ...]
    python benchmarks/vbpi.py summary DS1 [--out DIR]     # KL over the replicates run

Results are appended to ``DIR/vbpi.tsv`` (default ``benchmarks/results``) as they come, with
each run's trace and model beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from phylo.likelihood import JC69, TopologyBatchLikelihood, read_alignment  # noqa: E402
from phylo.sbn import fit, kl_to_reference  # noqa: E402
from phylo.tables import read_table, write_table  # noqa: E402
from phylo.trees import Taxa, TreeSample, read_trees  # noqa: E402
from phylo.vi import (  # noqa: E402
    Settings,
    Target,
    gradient_moments,
    load_family,
    make_estimator,
    variational_inference,
)

SHARED = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ds"
FASTA = SHARED / "zcrabbit-vbpi" / "data" / "hohna_datasets_fasta"
SHORT = SHARED / "zcrabbit-sbn" / "data" / "short_run_data_DS1-8"
GOLDEN = SHARED / "zcrabbit-sbn" / "data" / "raw_data_DS1-4"
LONG = SHARED / "matsengrp-vbpi-torch" / "unrooted" / "data" / "long_mcmc"

#: What the issue and the papers give for DS1: VBPI (Zhang & Matsen 2019): ELBO, marginal
#: likelihood and training time; ARTree's ELBO; SBN-EM-alpha's mean KL over the ten
#: short-run replicates (Zhang & Matsen 2018, Table 1).
ANCHORS = {
    "DS1": {
        "vbpi_elbo": (-7110.24, 0.03),
        "vbpi_log_ml": (-7108.42, 0.10),
        "vbpi_hours": 11.8,
        "vbpi_iterations": 400_000,
        "artree_elbo": -7110.09,
        "em_alpha_kl": 0.0130,
    },
}
GOALS = {"DS1": {"elbo": -7110.3, "log_ml": (-7108.42, 0.1), "hours": 1.0}}

RESULT_COLUMNS = [
    "dataset",
    "replicate",
    "estimator",
    "iterations",
    "particles",
    "seed",
    "wall_s",
    "cpu_s",
    "elbo",
    "elbo_sd",
    "bound_10",
    "bound_10_sd",
    "log_ml",
    "log_ml_sd",
    "kl_vi",
    "kl_em_alpha",
    "support_topologies",
    "settings",
]


def golden(dataset: str):
    """The reference sample and how to pool it, or (None, None)."""
    if dataset in ("DS1", "DS2"):
        files = sorted((GOLDEN / dataset).glob(f"rep_*/{dataset}.trprobs"))
        return (read_trees([str(f) for f in files]), 750001) if files else (None, None)
    if dataset == "DS7":
        path = LONG / "ds7" / "exp" / "ds7.trprobs"
        if not path.exists():
            return None, None
        names = read_alignment(str(FASTA / "DS7.fasta")).taxa
        s = read_trees([str(path)])
        taxa = Taxa([names[int(t) - 1] for t in s.taxa.names])
        return TreeSample(taxa, s.rooted, s.parents, s.counts, s.runs, s.traces), None
    return None, None


def _row(path, row):
    """Append a row to the results table (rewritten atomically)."""
    rows = []
    if path.exists():
        _, _, rows = read_table(str(path))
    rows.append({k: row.get(k) for k in RESULT_COLUMNS})
    write_table(str(path), RESULT_COLUMNS, rows)


def run(args):
    dataset = args.dataset
    aln_path = FASTA / f"{dataset}.fasta"
    support = SHORT / dataset / f"rep_{args.replicate}" / f"{dataset}.trprobs"
    if not aln_path.exists() or not support.exists():
        sys.exit(f"benchmark data not found under {SHARED} (set PHYLO_SHARED_DATA)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{dataset}.{args.estimator}{args.tag}"
    settings = Settings(
        estimator=args.estimator,
        particles=args.particles,
        iterations=args.iterations,
        lr=args.lr,
        lr_branch=args.lr_branch,
        lr_decay_every=args.lr_decay_every,
        anneal_iterations=args.anneal_iterations,
        init=args.init,
        branch_objective=args.branch_objective,
        test_every=args.test_every,
        checkpoint_seconds=300,
    )
    aln = read_alignment(str(aln_path))
    sample = read_trees([str(support)])
    trace_rows = []

    def on_trace(rows):
        if trace_rows and rows[-1]["iteration"] == trace_rows[-1]["iteration"]:
            return  # a checkpoint: nothing new
        trace_rows[:] = [dict(r) for r in rows]
        with open(f"{stem}.trace.jsonl", "w") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
        last = rows[-1]
        print(
            f"  {last['iteration']:>7d}  {last['seconds']:8.0f} s  objective "
            f"{last['objective']:.2f}" + (f"  ELBO {last['elbo']:.2f}" if last["elbo"] else ""),
            flush=True,
        )

    print(
        f"{dataset}: {sample.n_topologies} topologies in the support (replicate "
        f"{args.replicate}), {aln.patterns().n_patterns} site patterns; {settings}"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    result = variational_inference(
        aln,
        sample,
        settings,
        args.seed,
        threads=args.threads,
        checkpoint=f"{stem}.checkpoint.json",
        on_trace=on_trace,
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result.family.save(f"{stem}.json")
    ev = result.info["evaluation"]
    ref, per_run = golden(dataset)
    kl_vi = kl_em = None
    if ref is not None:
        kl_vi = kl_to_reference(result.family.sbn, ref, per_run).value
        kl_em = kl_to_reference(fit(sample, "em-alpha"), ref, per_run).value
    row = {
        "dataset": dataset,
        "replicate": args.replicate,
        "estimator": args.estimator,
        "iterations": result.training.iterations,
        "particles": args.particles,
        "seed": args.seed,
        "wall_s": wall,
        "cpu_s": cpu,
        "elbo": ev["elbo"],
        "elbo_sd": ev["elbo_sd"],
        "bound_10": ev.get("bound_10"),
        "bound_10_sd": ev.get("bound_10_sd"),
        "log_ml": ev["log_ml"],
        "log_ml_sd": ev["log_ml_sd"],
        "kl_vi": kl_vi,
        "kl_em_alpha": kl_em,
        "support_topologies": sample.n_topologies,
        "settings": json.dumps(result.info["settings"]),
    }
    _row(out / "vbpi.tsv", row)
    report(row, result.training.resumed_from)


def report(row, resumed_from=0):
    ds = row["dataset"]
    a, g = ANCHORS.get(ds, {}), GOALS.get(ds, {})
    print(
        f"\n{ds}, {row['estimator']}, {row['iterations']} iterations"
        + (f" (resumed at {resumed_from})" if resumed_from else "")
    )
    print(f"{'':28s}{'ours':>22s}{'VBPI (published)':>22s}")
    pub = a.get("vbpi_elbo")
    print(
        f"{'ELBO':28s}{row['elbo']:14.2f} ({row['elbo_sd']:.2f})"
        + (f"{pub[0]:14.2f} ({pub[1]:.2f})" if pub else "")
    )
    print(f"{'L^10':28s}{row['bound_10']:14.2f} ({row['bound_10_sd']:.2f})")
    pub = a.get("vbpi_log_ml")
    print(
        f"{'log ML (IS, 1000 draws)':28s}{row['log_ml']:14.2f} ({row['log_ml_sd']:.2f})"
        + (f"{pub[0]:14.2f} ({pub[1]:.2f})" if pub else "")
    )
    if row["kl_vi"] is not None:
        print(
            f"{'KL(golden || q)':28s}{row['kl_vi']:22.4f}   SBN-EM-alpha, same sample: "
            f"{row['kl_em_alpha']:.4f} (paper, mean of 10: {a.get('em_alpha_kl', 'NA')})"
        )
    hours = row["wall_s"] / 3600
    print(f"{'time':28s}{row['wall_s']:12.0f} s wall, {row['cpu_s']:.0f} s CPU")
    if "vbpi_hours" in a:
        per_it = a["vbpi_hours"] * 3600 / a["vbpi_iterations"]
        ours = row["wall_s"] / max(1, row["iterations"])
        print(
            f"{'per iteration':28s}{1000 * ours:12.2f} ms wall; VBPI {1000 * per_it:.1f} ms "
            f"(one core): {per_it / ours:.0f}x; whole run {a['vbpi_hours']} h / "
            f"{hours:.2f} h = {a['vbpi_hours'] / hours:.0f}x"
        )
    if g:
        lo, tol = g["log_ml"]
        met = [
            f"ELBO >= {g['elbo']}: {'met' if row['elbo'] >= g['elbo'] else 'missed'}",
            f"|log ML - ({lo})| <= {tol}: "
            + ("met" if abs(row["log_ml"] - lo) <= tol else "missed"),
            f"under {g['hours']} h: {'met' if hours < g['hours'] else 'missed'}",
        ]
        if row["kl_vi"] is not None:
            met.append(
                "KL below SBN-EM-alpha's: "
                + ("met" if row["kl_vi"] < min(row["kl_em_alpha"], a["em_alpha_kl"]) else "missed")
            )
        print("goals: " + "; ".join(met))


def variance(args):
    Path(args.out).mkdir(parents=True, exist_ok=True)
    family = load_family(args.model)
    aln = read_alignment(str(FASTA / f"{args.dataset}.fasta"))
    target = Target(TopologyBatchLikelihood(aln, family.taxa, JC69(), threads=args.threads))
    print(
        f"{args.dataset}: topology-gradient variance at a fixed point ({args.model}), "
        f"K = {args.particles} likelihood gradients per estimate, {args.repeats} estimates"
    )
    print(
        f"{'estimator':16s}{'tr Cov':>12s}{'|E g|^2':>12s}{'tr Cov/|E g|^2':>16s}"
        f"{'var vs VIMCO':>14s}{'ms/estimate':>13s}"
    )
    base = None
    rows = []
    for name in ("vimco", "rws", "unordered-set", "sum-and-sample"):
        est = make_estimator(name, args.particles)
        t0 = time.perf_counter()
        m = gradient_moments(family, target, est, args.repeats, np.random.default_rng(args.seed))
        ms = 1000 * (time.perf_counter() - t0) / args.repeats
        base = base or m["variance"]
        norm = m["squared_norm_unbiased"]
        rows.append([name, m["variance"], norm, m["branch_variance"], ms])
        ratio = f"{m['variance'] / norm:16.3g}" if norm > 0 else f"{'(|E g| ~ 0)':>16s}"
        print(
            f"{name:16s}{m['variance']:12.4g}{norm:12.4g}{ratio}"
            f"{m['variance'] / base:14.3g}{ms:13.1f}",
            flush=True,
        )
    write_table(
        str(Path(args.out) / f"{args.dataset}.variance.tsv"),
        [
            "estimator",
            "topology_variance",
            "topology_squared_norm_unbiased",
            "branch_variance",
            "ms_per_estimate",
        ],
        rows,
    )


def race(args):
    aln = read_alignment(str(FASTA / f"{args.dataset}.fasta"))
    sample = read_trees(
        [str(SHORT / args.dataset / f"rep_{args.replicate}" / f"{args.dataset}.trprobs")]
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.dataset}: first iteration at which the ELBO (every {args.test_every} "
        f"iterations, {args.test_particles} draws) reaches {args.threshold}"
    )
    results = {}
    for name in ("vimco", "rws", "unordered-set"):
        settings = Settings(
            estimator=name,
            iterations=args.iterations,
            lr=args.lr,
            lr_branch=args.lr_branch,
            lr_decay_every=args.lr_decay_every,
            anneal_iterations=args.anneal_iterations,
            test_every=args.test_every,
            trace_every=args.test_every,
            test_particles=args.test_particles,
            init=args.init,
        )
        wall = time.perf_counter()
        r = variational_inference(
            aln, sample, settings, args.seed, threads=args.threads, evaluate_repeats=0
        )
        wall = time.perf_counter() - wall
        hit = next(
            (
                row
                for row in r.training.trace
                if row["elbo"] is not None and row["elbo"] >= args.threshold
            ),
            None,
        )
        results[name] = (hit, r.training.trace[-1], wall)
        with open(out / f"{args.dataset}.race.{name}.jsonl", "w") as fh:
            for row in r.training.trace:
                fh.write(json.dumps(row) + "\n")
        best = max(row["elbo"] for row in r.training.trace if row["elbo"] is not None)
        print(
            f"  {name:14s} "
            + (
                f"iteration {hit['iteration']}, {hit['evaluations']} evaluations, "
                f"{hit['seconds']:.0f} s"
                if hit
                else "not reached"
            )
            + f"; best ELBO {best:.2f}; {wall:.0f} s for {args.iterations} iterations",
            flush=True,
        )
    base = results["vimco"][0]
    if base:
        for name, (hit, _, _) in results.items():
            if hit:
                print(
                    f"  {name:14s} evaluations to reach it: "
                    f"{hit['evaluations'] / base['evaluations']:.2f}x VIMCO's, seconds: "
                    f"{hit['seconds'] / base['seconds']:.2f}x"
                )


def summary(args):
    """KL(golden || q) of the learnt SBNs beside SBN-EM-alpha's, over the replicates in the
    results table, one line per data set, estimator and settings: means, the paired
    difference with its standard error, and in how many replicates the learnt SBN is lower."""
    path = Path(args.out) / "vbpi.tsv"
    if not path.exists():
        sys.exit(f"no results table: {path}")
    _, _, rows = read_table(str(path))
    groups: dict = {}
    for r in rows:
        if r["dataset"] != args.dataset or r["kl_vi"] in (None, "", "NA"):
            continue
        key = (r["estimator"], r["settings"])
        groups.setdefault(key, {})[r["replicate"]] = (float(r["kl_vi"]), float(r["kl_em_alpha"]))
    if not groups:
        sys.exit(f"no {args.dataset} rows with a KL in {path}")
    a = ANCHORS.get(args.dataset, {})
    for (est, settings), reps in groups.items():
        vi, em = np.array(list(reps.values())).T
        d = vi - em
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        done = ", ".join(sorted(reps, key=int))
        print(f"{args.dataset} {est}, {len(d)} replicate(s) ({done}); {settings}")
        print(
            f"  KL(golden || q) {vi.mean():.5f} (sd {vi.std(ddof=1) if len(d) > 1 else 0:.5f}); "
            f"SBN-EM-alpha {em.mean():.5f} (sd {em.std(ddof=1) if len(d) > 1 else 0:.5f}); paper "
            f"{a.get('em_alpha_kl', 'NA')}; difference {d.mean():+.5f} (se {se:.5f}); lower in "
            f"{int((d < 0).sum())} of {len(d)}"
        )


def _restricted(r, top: int) -> float:
    """KL(golden || q) over golden's ``top`` most probable topologies, both renormalised
    there: how well q's shape fits where the mass is."""
    o = np.argsort(-r.p)[:top]
    lp = np.log(r.p[o]) - np.log(r.p[o].sum())
    lq = np.log(np.maximum(r.q[o], r.floor)) - np.log(np.maximum(r.q[o], r.floor).sum())
    return float(np.exp(lp) @ (lp - lq))


def floor(args):
    """How low KL(golden || q) can go for an SBN on the sample's support, beside given
    models: the KL's parts (golden topologies the support cannot produce; the shape over
    golden's 10, 40 and 100 most probable topologies), for SBN-EM-alpha of the sample, for an
    SBN fitted by EM to the golden trees themselves (all of them: the family's floor on
    golden's own support; those the sample's support can produce: its floor on that
    support), and for each model file given."""
    ref, per_run = golden(args.dataset)
    support = SHORT / args.dataset / f"rep_{args.replicate}" / f"{args.dataset}.trprobs"
    if ref is None or not support.exists():
        sys.exit(f"benchmark data not found under {SHARED} (set PHYLO_SHARED_DATA)")
    sample = read_trees([str(support)])
    em_alpha = fit(sample, "em-alpha")
    r = kl_to_reference(em_alpha, ref, per_run)
    ok = np.flatnonzero(r.q > 0)
    sub = TreeSample(ref.taxa, False, ref.parents[ok], ref.counts[ok], ref.runs,
                     [np.arange(len(ok))] * len(ref.runs))  # fmt: skip
    rows = [
        ("SBN-EM-alpha of the sample", em_alpha),
        ("EM on golden (its support)", fit(ref, "em")),
        ("EM on golden (sample's support)", fit(sub, "em")),
    ]
    for path in args.models:
        rows.append((Path(path).name, load_family(path).sbn))
    print(
        f"{args.dataset}, support of short-run replicate {args.replicate} "
        f"({sample.n_topologies} topologies); golden: {len(r.p)} topologies; golden mass "
        f"outside the support {r.p[r.q <= 0].sum():.2e}"
    )
    print(f"{'':34s}{'KL':>9s}{'outside':>9s}{'top 10':>9s}{'top 40':>9s}{'top 100':>9s}")
    for name, model in rows:
        k = kl_to_reference(model, ref, per_run)
        out = k.q <= 0
        part = float((k.p[out] * (np.log(k.p[out]) - np.log(k.floor))).sum())
        print(
            f"{name:34s}{k.value:9.5f}{part:9.5f}"
            + "".join(f"{_restricted(k, t):9.4f}" for t in (10, 40, 100))
        )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("run", "variance", "race", "floor", "summary"):
        s = sub.add_parser(name)
        s.add_argument("dataset", choices=["DS1", "DS2", "DS7", "DS8"])
        s.add_argument("--replicate", type=int, default=1)
        s.add_argument("--particles", type=int, default=10)
        s.add_argument("--seed", type=int, default=1)
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
        s.add_argument("--iterations", type=int, default=200_000)
        s.add_argument("--lr", type=float, default=0.001)
        s.add_argument("--lr-branch", type=float, default=0.003)
        s.add_argument("--lr-decay-every", type=int, default=20_000)
        s.add_argument("--anneal-iterations", type=int, default=50_000)
        s.add_argument("--test-every", type=int, default=5000)
    sub.choices["run"].add_argument("--estimator", default="vimco")
    sub.choices["run"].add_argument("--init", default="em-alpha")
    sub.choices["run"].add_argument("--branch-objective", default="bound")
    # sbn vi's defaults (race keeps VBPI's rates: it measures early progress from a uniform start)
    sub.choices["run"].set_defaults(
        iterations=60_000, lr=1e-4, lr_decay_every=10_000, anneal_iterations=20_000
    )
    sub.choices["run"].add_argument("--tag", default="", help="added to the output names")
    sub.choices["variance"].add_argument("--model", required=True)
    sub.choices["variance"].add_argument("--repeats", type=int, default=200)
    sub.choices["race"].add_argument("--threshold", type=float, default=-7115.0)
    sub.choices["race"].add_argument("--init", default="uniform")
    sub.choices["race"].add_argument("--test-particles", type=int, default=1000)
    sub.choices["floor"].add_argument("models", nargs="*", help="sbn vi model files")
    args = p.parse_args()
    modes = {"run": run, "variance": variance, "race": race, "floor": floor, "summary": summary}
    modes[args.mode](args)


if __name__ == "__main__":
    main()
