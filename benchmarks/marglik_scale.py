"""Scaling of `marglik compare` over workers: the DS1 credible set (42 topologies) with cheap
estimators.

Prints, for 1 and 2 local single-threaded worker processes, one process whose batched
likelihoods use two threads, and a 2-worker Dask LocalCluster (when the ``cluster`` extra is
installed), the wall time of the whole run, the speed-up over one
worker, and the overhead per task: (wall x workers - time spent inside the estimators) /
tasks, also as a fraction of the mean task time.  Each configuration runs the same
command-line code path as ``marglik compare`` (in process, through click), so start-up,
reading the inputs in each worker, scheduling and writing the table are all counted.  The
tables of all runs are checked to be identical.

Usage::

    python benchmarks/marglik_scale.py [--methods gl,glis] [--replicates 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def run(args, out):
    from click.testing import CliRunner

    from phylo.cli.marglik import main

    t0 = time.perf_counter()
    r = CliRunner().invoke(main, [*args, "-o", out, "-q", "--no-per-tree"], catch_exceptions=False)
    wall = time.perf_counter() - t0
    if r.exit_code != 0:
        raise SystemExit(r.output)
    return wall


def rows(path):
    from phylo.execution import read_table

    _, _, rs = read_table(path)
    return (
        [{k: v for k, v in r.items() if k != "seconds"} for r in rs],
        sum(float(r["seconds"]) for r in rs),
        len(rs),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="gl,glis")
    ap.add_argument("--replicates", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    opts = ap.parse_args()
    aln = SHARED / "marglik" / "alignments" / "DS1.nex"
    cs = SHARED / "marglik" / "credible_sets" / "JC_no_gamma_credible_set_ds1.tsv"
    if not aln.exists():
        raise SystemExit(f"benchmark data not found under {SHARED} (set PHYLO_SHARED_DATA)")
    base = [
        "compare",
        str(aln),
        "--trees",
        str(cs),
        "--methods",
        opts.methods,
        "--replicates",
        str(opts.replicates),
        "--seed",
        "1",
    ]
    load = os.getloadavg()[0]
    print(
        f"DS1 credible set: 42 trees x {opts.methods} x {opts.replicates} replicates; "
        f"load average {load:.2f} on {os.cpu_count()} cores"
    )
    tmp = tempfile.mkdtemp()
    # warm the compiled-kernel cache once, so no configuration pays for compiling
    run(base[:5] + ["gl", "--replicates", "1", "--seed", "1"], os.path.join(tmp, "warm.tsv"))
    results = {}
    configs = [
        ("1 process", ["--jobs", "1", "--threads", "1"], 1),
        ("2 processes", ["--jobs", "2", "--threads", "1"], 2),
        ("1 process, 2 thr.", ["--jobs", "1", "--threads", "2"], 1),
    ]
    if not opts.no_dask:
        try:
            import distributed

            configs.append(("dask, 2 workers", None, 2))
        except ImportError:
            print("(dask not installed: pip install '.[cluster]')")
    for name, extra, workers in configs:
        out = os.path.join(tmp, f"{len(results)}.tsv")
        if extra is None:
            with distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster:
                wall = run(
                    base + ["--executor", "dask", "--scheduler", cluster.scheduler_address], out
                )
        else:
            wall = run(base + extra, out)
        table, busy, n = rows(out)
        results[name] = (wall, busy, n, workers, table)
    ref_wall = results["1 process"][0]
    first_table = results["1 process"][4]
    print(
        f"{'configuration':<18} {'wall s':>8} {'speed-up':>9} {'overhead/task ms':>17} "
        f"{'overhead/task time':>19} identical"
    )
    for name, (wall, busy, n, workers, table) in results.items():
        over = (wall * workers - busy) / n
        print(
            f"{name:<18} {wall:8.2f} {ref_wall / wall:9.2f} {1000 * over:17.1f} "
            f"{over / (busy / n):19.3f} {table == first_table}"
        )


if __name__ == "__main__":
    main()
