#!/usr/bin/env python3
"""Benchmark: how long a new user's first command takes, this tree beside a baseline commit.

A new user's first command finds numba's cache empty and compiles every kernel it uses.
For each of the README's first commands (``sbn fit`` on the example runs, ``sbn summary``,
``sbn top``, ``marglik loglik``, ``marglik estimate --method glis``) this runs, in a new
process each time:

* cold: with an empty numba cache (``NUMBA_CACHE_DIR`` a new directory), as if the command
  were the user's first;
* warm: the same command again, with the cache the cold run left;

for this tree and for the baseline (``--baseline``, by default where this branch left
``main``), extracted with ``git archive`` into a temporary directory, the two alternating
command by command (the machine may be shared: compare the ratios, and read them with the
load average printed alongside).  Each command runs through a small launcher that puts the
tree's ``phylo`` (and its ``cli/`` as ``phylo.cli``) first on the path, whatever is
installed.

Printed per command: wall seconds, CPU seconds of all its processes (the warm-up's child
processes included), CPU seconds of the command's own process, and the ratios this tree /
baseline.  On a first run this tree compiles the groups of kernels a command needs side by
side (:mod:`phylo.warmup`); on an idle machine with a core per process, the wall time is
then about the CPU time of the busiest process.  ``--sequential`` adds a column for this
tree with ``PHYLO_COMPILE_JOBS=1`` (everything compiled in the command's own process).

Usage::

    python benchmarks/cold_start.py
    python benchmarks/cold_start.py --baseline 528a300 --repeats 3 --sequential
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"

# Runs `prog args...` of the tree argv[1] and writes the CPU seconds of this process and of
# its (waited-for) children to the file $COLD_START_RUSAGE.
LAUNCHER = r"""
import importlib.util, json, os, resource, sys
tree = sys.argv[1]
sys.path.insert(0, tree)
import phylo
assert os.path.realpath(phylo.__file__).startswith(os.path.realpath(tree)), phylo.__file__
spec = importlib.util.spec_from_file_location(
    "phylo.cli", os.path.join(tree, "cli", "__init__.py"),
    submodule_search_locations=[os.path.join(tree, "cli")])
cli = importlib.util.module_from_spec(spec)
sys.modules["phylo.cli"] = cli
spec.loader.exec_module(cli)
phylo.cli = cli

def report():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.environ["COLD_START_RUSAGE"], "w") as fh:
        json.dump({"self": own.ru_utime + own.ru_stime,
                   "children": kids.ru_utime + kids.ru_stime}, fh)

import atexit
atexit.register(report)
prog = sys.argv[2]
sys.argv = sys.argv[2:]
main = __import__(f"phylo.cli.{prog}", fromlist=["main"]).main
main()
"""


def commands(model: Path) -> list[tuple[str, list[str]]]:
    d = str(DATA)
    return [
        ("sbn fit", ["sbn", "fit", f"{d}/example.run1.t", f"{d}/example.run2.t", "-o", str(model)]),
        ("sbn summary", ["sbn", "summary", f"{d}/example.run1.t", f"{d}/example.run2.t"]),
        ("sbn top", ["sbn", "top", str(model), "-k", "5"]),
        ("marglik loglik", ["marglik", "loglik", f"{d}/example.fasta", f"{d}/example_true.nwk"]),
        (
            "marglik estimate",
            ["marglik", "estimate", f"{d}/example.nex", f"{d}/example_true.nwk"]
            + ["--method", "glis", "--seed", "1"],
        ),
    ]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def extract(rev: str, dest: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", rev], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def run(tree: Path, argv: list[str], cache: Path, work: Path, env_extra: dict) -> dict:
    """One command in a new process; wall and CPU seconds."""
    rusage = work / "rusage.json"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), COLD_START_RUSAGE=str(rusage))
    env["PYTHONPATH"] = str(tree)
    env.update(env_extra)
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(tree), *argv],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {tree}:\n{r.stderr}")
    cpu = json.loads(rusage.read_text())
    return {"wall": wall, "cpu": cpu["self"] + cpu["children"], "own": cpu["self"]}


def loadavg() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", help="Commit to compare with (default: merge-base with main).")
    ap.add_argument("--repeats", type=int, default=1, help="Runs of each command (median).")
    ap.add_argument(
        "--sequential",
        action="store_true",
        help="Also run this tree with PHYLO_COMPILE_JOBS=1.",
    )
    ap.add_argument("--only", nargs="*", help="Commands to run, e.g. 'sbn fit'.")
    args = ap.parse_args(argv)
    rev = args.baseline or git("merge-base", "HEAD", "main")
    head = git("rev-parse", "--short", "HEAD")
    base_short = git("rev-parse", "--short", rev)
    changed = git("status", "--porcelain", "--", "phylo", "cli")
    dirty = " (with uncommitted changes)" if changed else ""

    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        tmp = Path(tmp)
        base = tmp / "baseline"
        base.mkdir()
        extract(rev, base)
        # bytecode as after an install, so that neither side pays for it
        for tree in (base, ROOT):
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(tree / "phylo"), str(tree / "cli")],
                check=True,
            )
        sides = [("baseline", base, {}), ("this", ROOT, {})]
        if args.sequential:
            sides.append(("sequential", ROOT, {"PHYLO_COMPILE_JOBS": "1"}))
        print(f"this tree: {ROOT} at {head}{dirty}; baseline: {base_short}")
        print(f"CPUs usable: {len(os.sched_getaffinity(0))}; load average before: {loadavg()}")
        results: dict = {}
        for r in range(args.repeats):
            order = sides if r % 2 == 0 else sides[::-1]
            for label, tree, extra in order:
                work = tmp / f"{label}-{r}"
                work.mkdir()
                for name, cmd in commands(work / "model.json"):
                    if args.only and name not in args.only and name != "sbn fit":
                        continue
                    cache = work / ("cache-" + name.replace(" ", "-"))
                    cold = run(tree, cmd, cache, work, extra)
                    warm = run(tree, cmd, cache, work, extra)
                    results.setdefault(name, {}).setdefault(label, []).append((cold, warm))
                    shutil.rmtree(cache)
        print(f"load average after: {loadavg()}\n")
        print_table(results, [s[0] for s in sides], args.only)
    return 0


def median(rows, which, key):
    return statistics.median(x[which][key] for x in rows)


def print_table(results: dict, labels: list[str], only) -> None:
    head = f"{'command':<18}{'':<6}"
    for label in labels:
        head += f"{label + ' wall':>16}{'cpu':>8}{'own':>8}"
    head += f"{'wall ratio':>12}{'cpu ratio':>11}"
    print(head)
    for name, by in results.items():
        if only and name not in only:
            continue
        for which, tag in ((0, "cold"), (1, "warm")):
            line = f"{name:<18}{tag:<6}"
            for label in labels:
                rows = by[label]
                line += (
                    f"{median(rows, which, 'wall'):>15.2f}s{median(rows, which, 'cpu'):>7.2f}s"
                    f"{median(rows, which, 'own'):>7.2f}s"
                )
            b, t = by["baseline"], by["this"]
            line += (
                f"{median(t, which, 'wall') / median(b, which, 'wall'):>12.2f}"
                f"{median(t, which, 'cpu') / median(b, which, 'cpu'):>11.2f}"
            )
            print(line)
    print(
        "\nratios: this tree / baseline (below 1: faster).  'own': CPU of the command's own "
        "process;\nwith a core per process (idle machine) the cold wall time of this tree is "
        "about the largest\nof 'own' and its child's CPU, plus starting Python."
    )
    cold = [(n, median(by["this"], 0, "wall")) for n, by in results.items()]
    worst = max(cold, key=lambda x: x[1])
    print(
        f"goal: a new user's first command within 10 s on 2 cores: slowest cold command here "
        f"{worst[0]}, {worst[1]:.1f} s wall ({'met' if worst[1] <= 10 else 'NOT met'} on this "
        f"machine at its load)"
    )


if __name__ == "__main__":
    sys.exit(main())
