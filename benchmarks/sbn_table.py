#!/usr/bin/env python3
"""Zhang & Matsen (NeurIPS 2018), Table 1, recomputed beside the published numbers.

For every data set with both golden runs and short-run replicates in the shared benchmark
data (``$PHYLO_SHARED_DATA/ds``, default ``../shared/data/ds`` next to the project), fits
SRF, CCD, SBN-SA, SBN-EM and SBN-EM-alpha (alpha = 1e-4; EM: at most 1000 iterations, at
least 50, tolerance 1e-5) to each short-run replicate and prints the mean
KL(ground truth || estimate) beside the published mean, the relative difference, and how
closely each replicate matches the paper notebook's printed per-replicate values (and EM
iteration counts).  The ground truth pools the ten golden ``.trprobs`` replicates as the
paper did: counts ``round(w * 750001)`` per replicate.

Usage::

    python benchmarks/sbn_table.py                 # every data set found
    python benchmarks/sbn_table.py DS1             # one data set
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from phylo.sbn import METHODS, compare_estimators  # noqa: E402
from phylo.trees import read_trees  # noqa: E402

SHARED = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ds"
SBN = SHARED / "zcrabbit-sbn"
LABELS = {"srf": "SRF", "ccd": "CCD", "sa": "SBN-SA", "em": "SBN-EM", "em-alpha": "SBN-EM-alpha"}
COLUMNS = {
    "srf": "kl_srf",
    "ccd": "kl_ccd",
    "sa": "kl_sbn_sa",
    "em": "kl_sbn_em",
    "em-alpha": "kl_sbn_em_alpha",
}
# Table 1 as printed in the paper (4 decimals)
PUBLISHED = {
    "DS1": {"srf": 0.0155, "ccd": 0.6027, "sa": 0.0687, "em": 0.0136, "em-alpha": 0.0130},
    "DS2": {"srf": 0.0122, "ccd": 0.0218, "sa": 0.0218, "em": 0.0199, "em-alpha": 0.0128},
}


def notebook_values() -> dict:
    """Per-replicate values printed by the paper's notebook, by data set and replicate."""
    path = SBN / "derived" / "real_data_kl_per_replicate.csv"
    out: dict = {}
    if path.exists():
        with open(path) as fh:
            for row in csv.DictReader(fh):
                out.setdefault(row["dataset"], {})[int(row["replicate"])] = row
    return out


def data_sets() -> list[tuple[str, list[Path], list[Path]]]:
    found = []
    for k in range(1, 12):
        ds = f"DS{k}"
        golden = sorted(
            (SBN / "data" / "raw_data_DS1-4" / ds).glob(f"rep_*/{ds}.trprobs"),
            key=lambda p: int(p.parent.name[4:]),
        )
        short = sorted(
            (SBN / "data" / "short_run_data_DS1-8" / ds).glob(f"rep_*/{ds}.trprobs"),
            key=lambda p: int(p.parent.name[4:]),
        )
        if len(golden) == 10 and short:
            found.append((ds, golden, short))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="*", help="DS1, DS2, ... (default: all found)")
    args = ap.parse_args(argv)
    sets = [d for d in data_sets() if not args.datasets or d[0] in args.datasets]
    if not sets:
        print(f"no data set with golden runs and short runs under {SBN}")
        return 1
    notebook = notebook_values()
    for ds, golden, short in sets:
        t0 = time.perf_counter()
        reference = read_trees([str(p) for p in golden])
        training = [read_trees([str(p)], taxa=reference.taxa) for p in short]
        rows = compare_estimators(
            reference,
            training,
            METHODS,
            trees_per_run=750001,
            alpha=1e-4,
            max_iter=1000,
            min_iter=50,
            tol=1e-5,
        )
        elapsed = time.perf_counter() - t0
        nb = notebook.get(ds, {})
        published = PUBLISHED.get(ds) or (
            {m: float(np.mean([float(r[COLUMNS[m]]) for r in nb.values()])) for m in METHODS}
            if len(nb) == 10
            else {}
        )
        print(
            f"\n{ds}: {reference.n_taxa} taxa; ground truth {reference.n_topologies} "
            f"topologies from {reference.n_runs} golden runs; {len(training)} short runs "
            f"(mean {np.mean([r['unique_trees'] for r in rows]):.1f} unique trees); "
            f"{elapsed:.1f} s"
        )
        print(
            f"  {'method':<13}{'ours':>10}{'published':>11}{'rel. diff':>11}"
            f"{'max rel. diff per replicate':>30}{'EM iterations equal':>21}"
        )
        for m in METHODS:
            ours = float(np.mean([r["kl"][m] for r in rows]))
            pub = published.get(m)
            rel = f"{(ours - pub) / pub:+.2%}" if pub else "-"
            per = "-"
            iters = "-"
            if len(nb) == len(rows):
                diffs = [
                    abs(r["kl"][m] - float(nb[i + 1][COLUMNS[m]])) / float(nb[i + 1][COLUMNS[m]])
                    for i, r in enumerate(rows)
                ]
                per = f"{max(diffs):.1e}"
                if m in ("em", "em-alpha"):
                    col = "em_iterations" if m == "em" else "em_alpha_iterations"
                    same = sum(
                        r["iterations"][m] == int(nb[i + 1][col]) for i, r in enumerate(rows)
                    )
                    iters = f"{same}/{len(rows)}"
            pub_s = f"{pub:.4f}" if pub else "-"
            print(f"  {LABELS[m]:<13}{ours:>10.6f}{pub_s:>11}{rel:>11}{per:>30}{iters:>21}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
