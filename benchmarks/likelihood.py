"""Speed of the likelihood kernels, side by side with BEAGLE's CPU implementation.

Prints, for two problems (DS1: 27 taxa, JC69; and 64 taxa x 1000 patterns x 4 Gamma
categories, GTR), partial-likelihood updates per second (one update = one internal node x
one site pattern x one rate category) for one and two threads, the cost of the gradient as
a multiple of one likelihood, batch throughput on one and two threads, BEAGLE's numbers on
the same problem (when ``libhmsbeagle.so.1`` is installed, timed alternately with ours)
and our ratio against it.  It also times a cold start (compiling the kernels into an empty
cache) and a cached start, each in a fresh Python process, and ends with one line per
performance goal.

Every number is the best of several rounds (the machine may be shared: compare ratios,
and read them with the load average printed alongside).

Usage::

    python benchmarks/likelihood.py [--quick] [--no-start] [--large]
    python benchmarks/likelihood.py --parameters    # the gradient in the model's parameters
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _beagle  # noqa: E402
import numba  # noqa: E402

from phylo.likelihood import (
    GTR,
    JC69,
    Alignment,
    TreeLikelihood,
    random_tree,  # noqa: E402
    read_alignment,
    simulate_alignment,
)

SHARED = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data"))

START_SCRIPT = """
import sys, time; t0 = time.perf_counter(); c0 = time.process_time()
import numpy as np
from phylo.likelihood import GTR, JC69, TreeLikelihood, random_tree, simulate_alignment
t1 = time.perf_counter()
model = JC69() if sys.argv[1] == "JC69" else GTR([1.2, 3.0, 0.8, 1.1, 3.5, 1.0],
                                                 [0.3, 0.2, 0.2, 0.3], alpha=0.5, categories=4)
rng = np.random.default_rng(0)
tree = random_tree(8, rng, 0.1)
aln = simulate_alignment(tree, model, 100, rng)
lik = TreeLikelihood(aln, tree, model, threads=2, batch_threads=2)
t = tree.branch_lengths[:-1]
lik.log_likelihood(t); lik.gradient(t); lik.log_likelihood_batch(np.tile(t, (2, 1)))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, time.process_time() - c0)
"""


def start_times():
    """Seconds to import and to run a first likelihood, gradient and batch, cold and cached.

    Each start is a new Python process: "cold" with an empty numba cache (the kernels are
    compiled), "cached" with the cache the cold start wrote; once with JC69 (the F81-type
    kernels) and once, with a new empty cache, with GTR+G4 (the general kernels).
    """
    out = {}
    for model in ("JC69", "GTR"):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
            for label in ("cold", "cached"):
                t0 = time.perf_counter()
                res = subprocess.run(
                    [sys.executable, "-c", START_SCRIPT, model],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                total = time.perf_counter() - t0
                imp, first, cpu = (float(x) for x in res.stdout.split())
                out[f"{label} {model}"] = (total, imp, first, cpu)
    # the bare interpreter with numpy, for reference
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    out["python+numpy"] = (time.perf_counter() - t0, 0.0, 0.0, 0.0)
    return out


def best_time(f, rounds=7, round_seconds=0.002):
    """Best seconds per call of ``f`` over many short rounds.

    On a shared machine a round that the scheduler interrupts is slower; short rounds (a
    few milliseconds, about one time slice) and many of them make it likely that some run
    undisturbed, and the best of them is what the code costs.
    """
    f()
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        dt = time.perf_counter() - t0
        if dt > round_seconds or reps > 1 << 16:
            break
        reps *= 2
    best = dt / reps
    for _ in range(10 * rounds - 1):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def ds1_problem(rng):
    fasta = SHARED / "ds/zcrabbit-vbpi/data/hohna_datasets_fasta/DS1.fasta"
    model = JC69()
    if fasta.exists():
        aln = read_alignment(str(fasta))
        tree = random_tree(list(aln.taxa), rng, 0.03, 1e-4)
        return "DS1 (27 taxa, JC69)", aln, tree, model
    tree = random_tree(27, rng, 0.03, 1e-4)
    aln = simulate_alignment(tree, model, 1949, rng)
    return "DS1-sized (simulated, 27 taxa, JC69)", aln, tree, model


def big_problem(rng, n_patterns=1000):
    model = GTR([1.2, 3.0, 0.8, 1.1, 3.5, 1.0], [0.3, 0.2, 0.2, 0.3], alpha=0.5, categories=4)
    tree = random_tree(64, rng, 0.05, 1e-4)
    aln = simulate_alignment(tree, model, 3 * n_patterns, rng)
    pats = aln.patterns()
    keep = pats.codes[:, :n_patterns]
    inv = {1: "A", 2: "C", 4: "G", 8: "T", 15: "N"}
    seqs = ["".join(inv.get(int(c), "N") for c in row) for row in keep]
    aln = Alignment.from_sequences(list(aln.taxa), seqs)
    return "64 taxa x 1000 patterns x 4 categories (GTR+G4)", aln, tree, model


def run_problem(label, aln, tree, model, quick, lib):
    """Print the timings of one problem; return the numbers the goals summary needs."""
    t = np.asarray(tree.branch_lengths[:-1], dtype=np.float64)
    rounds = 3 if quick else 7
    lik = TreeLikelihood(aln, tree, model, batch_threads=1)
    plain = TreeLikelihood(aln, tree, model, batch_threads=1, site_repeats=False)
    n_int = lik.n_nodes - lik.n_taxa
    upd = n_int * lik.n_patterns * lik.n_categories
    print(
        f"\n== {label}: {lik.n_patterns} patterns, {n_int} internal nodes, "
        f"{lik.n_categories} categories: {upd:,} updates per likelihood"
    )
    B = 32
    T = np.tile(t, (B, 1)) * np.linspace(0.8, 1.2, B)[:, None]
    lik2 = TreeLikelihood(aln, tree, model, threads=2, batch_threads=2)
    split = len(lik2._thread_bounds) > 1  # the gradient's patterns split
    # ours and BEAGLE alternate round by round, so that both see the same load
    bg = _beagle.BeagleLikelihood(lib, lik, threads=1, scaling=False) if lib is not None else None
    tm = {}
    jobs = {
        "l1": lambda: lik.log_likelihood(t),
        "g1": lambda: lik.gradient(t),
        "p1": lambda: plain.log_likelihood(t),
        "l2": lambda: lik2.log_likelihood(t),
        "g2": lambda: lik2.gradient(t),
        "b1": lambda: lik.log_likelihood_batch(T),
        "b2": lambda: lik2.log_likelihood_batch(T),
        "gb1": lambda: lik.gradient_batch(T),
        "gb2": lambda: lik2.gradient_batch(T),
    }
    if bg is not None:
        jobs["beagle"] = lambda: bg.log_likelihood(t)
    for _ in range(3):
        for key, f in jobs.items():
            tm[key] = min(tm.get(key, np.inf), best_time(f, max(1, rounds // 3)))
    for key in ("b1", "b2", "gb1", "gb2"):
        tm[key] /= B
    g = lambda dt: upd / dt / 1e9  # noqa: E731
    U = lik._ncols[:, 0]
    classes = f"{int(U.sum()) + lik.n_patterns * int((U == 0).sum())}" if lik._ncols.size else "no"
    print(
        f"ours   1 thread : likelihood {tm['l1'] * 1e6:9.1f} us  {g(tm['l1']):6.3f} G updates/s "
        f"(site repeats: {classes} node columns of {n_int * lik.n_patterns}), "
        f"gradient {tm['g1'] * 1e6:9.1f} us"
    )
    print(
        f"ours   1 thread, every node for every pattern (no site repeats): likelihood "
        f"{tm['p1'] * 1e6:9.1f} us  {g(tm['p1']):6.3f} G updates/s (site repeats: "
        f"{tm['p1'] / tm['l1']:4.2f}x)"
    )
    how = "gradient patterns split between threads" if split else "too small to split: one thread"
    if lik2._ncols.size and len(lik2._thread_lbounds) == 1:
        how += "; the likelihood with site repeats stays in one thread at this size"
    print(
        f"ours   2 threads: likelihood {tm['l2'] * 1e6:9.1f} us  {g(tm['l2']):6.3f} G updates/s, "
        f"gradient {tm['g2'] * 1e6:9.1f} us ({how})"
    )
    print(
        f"two threads on one evaluation: speed-up {tm['l1'] / tm['l2']:4.2f}x (likelihood), "
        f"{tm['g1'] / tm['g2']:4.2f}x (gradient)"
    )
    print(
        f"gradient / likelihood: {tm['g1'] / tm['p1']:5.2f} against the likelihood computed "
        f"the same way (every node for every pattern; 1 thread), {tm['g1'] / tm['l1']:5.2f} "
        f"against the likelihood with site repeats, {tm['g2'] / tm['l2']:5.2f} (2 threads)"
    )
    print(
        f"batch of {B}: likelihoods {1 / tm['b1']:9.0f}/s on 1 thread, {1 / tm['b2']:9.0f}/s "
        f"on 2 "
        f"(speed-up {tm['b1'] / tm['b2']:4.2f}x); gradients {1 / tm['gb1']:8.0f}/s on 1, "
        f"{1 / tm['gb2']:8.0f}/s on 2 (speed-up {tm['gb1'] / tm['gb2']:4.2f}x)"
    )
    res = dict(
        label=label,
        gups=g(tm["p1"]),
        gups_sr=g(tm["l1"]),
        grad_ratio=tm["g1"] / tm["p1"],
        grad_ratio_sr=tm["g1"] / tm["l1"],
        split=tm["l1"] / tm["l2"],
        split_grad=tm["g1"] / tm["g2"],
        batch=tm["b1"] / tm["b2"],
        gbatch=tm["gb1"] / tm["gb2"],
        beagle=None,
        split_how=(
            "split between threads"
            if len(lik2._thread_lbounds) > 1
            else "with site repeats one thread at this size"
        ),
    )
    if bg is None:
        print("BEAGLE: libhmsbeagle.so.1 not found, skipped")
        return res
    diff = abs(bg.log_likelihood(t) - lik.log_likelihood(t))
    bg.close()
    res["beagle"] = tm["beagle"] / tm["p1"]
    res["beagle_sr"] = tm["beagle"] / tm["l1"]
    print(
        f"BEAGLE {bg.impl} 1 thread (no rescaling), run alternately with ours: "
        f"{tm['beagle'] * 1e6:9.1f} us {g(tm['beagle']):6.3f} G/s; ours/BEAGLE speed "
        f"{res['beagle']:5.2f}x every node for every pattern, {res['beagle_sr']:5.2f}x with "
        f"site repeats  (|dlogL| {diff:.1e})"
    )
    if not quick:
        for scaling in (False, True):
            for th in (2,) if not scaling else (1, 2):
                bg = _beagle.BeagleLikelihood(lib, lik, threads=th, scaling=scaling)
                tb = best_time(lambda: bg.log_likelihood(t), rounds)
                bg.close()
                print(
                    f"BEAGLE {bg.impl} {th} thread{'s' if th > 1 else ' '} "
                    f"({'rescaling every node' if scaling else 'no rescaling'}): "
                    f"{tb * 1e6:9.1f} us {g(tb):6.3f} G/s; ours/BEAGLE speed "
                    f"{tb / tm['l1']:5.2f}x"
                )
    return res


def large_trees(quick):
    """Simulated trees of 200, 500 and 1000 taxa (3000 sites), JC69 and GTR+G4: the
    likelihood with and without site repeats, the gradient, its cost in likelihoods, and
    one evaluation on two threads."""
    print("\n== larger trees (simulated, 3000 sites; one evaluation, best of a few)")
    gtr = GTR([1.2, 3.0, 0.8, 1.1, 3.5, 1.0], [0.3, 0.2, 0.2, 0.3], alpha=0.5, categories=4)
    rounds = 1 if quick else 2
    for n in (200, 500, 1000):
        rng = np.random.default_rng(n)
        tree = random_tree(n, rng, 0.05, 1e-4)
        t = np.asarray(tree.branch_lengths[:-1], dtype=np.float64)
        for model in (JC69(), gtr):
            aln = simulate_alignment(tree, model, 3000, rng)
            one = TreeLikelihood(aln, tree, model, batch_threads=1)
            plain = TreeLikelihood(aln, tree, model, batch_threads=1, site_repeats=False)
            two = TreeLikelihood(aln, tree, model, batch_threads=1, threads=2)
            jobs = {
                "p": lambda: plain.log_likelihood(t),
                "l1": lambda: one.log_likelihood(t),
                "g1": lambda: one.gradient(t),
                "l2": lambda: two.log_likelihood(t),
                "g2": lambda: two.gradient(t),
            }
            tm = {}
            for _ in range(2):
                for key, f in jobs.items():
                    tm[key] = min(tm.get(key, np.inf), best_time(f, rounds, 0.02))
            if one._ncols.size:
                sr = f"{tm['l1'] * 1e3:7.2f} ms with site repeats"
                sr_ratio = f" ({tm['g1'] / tm['l1']:4.2f} with site repeats)"
            else:
                sr, sr_ratio = "(site repeats off: their maps would be too large)", ""
            print(
                f"{n:5d} taxa {model.name:4s} {one.n_patterns:5d} patterns: likelihood "
                f"{tm['p'] * 1e3:7.2f} ms every node for every pattern, {sr}; gradient "
                f"{tm['g1'] * 1e3:7.2f} ms = {tm['g1'] / tm['p']:4.2f} likelihoods{sr_ratio}; "
                f"two threads: likelihood {tm['l1'] / tm['l2']:4.2f}x, gradient "
                f"{tm['g1'] / tm['g2']:4.2f}x"
            )


def goals(results, starts):
    """One line per goal of the performance work, with the number that decides it."""
    print(f"\n== goals (load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    ok = lambda c: "met" if c else "NOT met"  # noqa: E731
    for r in results:
        name = r["label"].split(" (")[0].split(":")[0]
        print(
            f"{name}: {r['gups']:.3f} G updates/s per core, every node for every pattern "
            f"(>= 0.35: {ok(r['gups'] >= 0.35)}; {r['gups_sr']:.3f} counted the same way "
            f"with site repeats); gradient/likelihood {r['grad_ratio']:.2f} (<= 3: "
            f"{ok(r['grad_ratio'] <= 3)}; {r['grad_ratio_sr']:.2f} against the likelihood "
            "with site repeats)"
            + (
                ""
                if r["beagle"] is None
                else f"; ours/BEAGLE SSE {r['beagle']:.2f}x (>= 1: {ok(r['beagle'] >= 1)}; "
                f"{r['beagle_sr']:.2f}x with site repeats)"
            )
        )
    big = results[-1]
    print(
        f"two threads, larger problem: one gradient {big['split_grad']:.2f}x, batches "
        f"{big['batch']:.2f}x (likelihoods) and {big['gbatch']:.2f}x (gradients) (> 1.2: "
        f"{ok(min(big['split_grad'], big['batch'], big['gbatch']) > 1.2)}); one likelihood "
        f"{big['split']:.2f}x ({big['split_how']})"
    )
    if starts:
        cold, cached = starts["cold JC69"][0], starts["cached JC69"][0]
        print(
            f"start (JC69, as before): cold {cold:.2f} s (<= 10: {ok(cold <= 10)}), "
            f"cached {cached:.2f} s (<= 1: {ok(cached <= 1)}); GTR+G4: cold "
            f"{starts['cold GTR'][0]:.2f} s, cached {starts['cached GTR'][0]:.2f} s (its "
            f"Gamma rates import scipy.stats, about 0.5 s)"
        )


def parameter_gradient_costs(quick: bool):
    """The gradient in the model's parameters (and the branches) against one likelihood, on
    DS1 and the 64-taxon problem under GTR+G4: the pass that sums state pairs, with and
    without the Python that turns them into derivatives; the posterior's gradient with the
    9 free coordinates of GTR+G4 (model built, priors and chain rule included); and what
    forward differences would cost instead (9 likelihoods under moved models plus the
    branch gradient)."""
    from phylo.likelihood import model_spec
    from phylo.likelihood.parameter_gradient import ParameterGradient
    from phylo.marglik.parameters import model_prior
    from phylo.marglik.posterior import Posterior

    rounds = 3 if quick else 7
    rng = np.random.default_rng(5)
    model = GTR([1.2, 3.0, 0.8, 1.1, 3.5, 1.0], [0.3, 0.2, 0.2, 0.3], alpha=0.5, categories=4)
    _, aln, tree, _ = ds1_problem(rng)
    problems = [("DS1 (27 taxa), GTR+G4", aln, tree), big_problem(rng)[:3]]
    print("\n== the gradient in the model's parameters (GTR+G4: 5 + 3 + 1 coordinates)")
    for label, aln, tree in problems:
        t = np.asarray(tree.branch_lengths[:-1], dtype=np.float64)
        lik = TreeLikelihood(aln, tree, model, batch_threads=1)
        plain = TreeLikelihood(aln, tree, model, batch_threads=1, site_repeats=False)
        grad = ParameterGradient(lik)
        post = Posterior(aln, tree, model_prior(model_spec("GTR+G4"), None))
        x = np.concatenate([np.log(t), post.start_params])
        phi = post.start_params
        models = [post.params.model(phi + 1e-6 * e) for e in np.eye(post.n_params)]
        T = np.repeat(t[None, :], len(models), axis=0)
        one = best_time(lambda lik=lik: lik.log_likelihood(t), rounds)
        times = {
            "likelihood without site repeats": best_time(lambda: plain.log_likelihood(t), rounds),
            "branch gradient": best_time(lambda lik=lik: lik.gradient(t), rounds),
            "state-pair pass alone": best_time(lambda g=grad: g.state_pair_sums(t, model), rounds),
            "gradient in branches and parameters": best_time(lambda g=grad: g(t, model), rounds),
            "posterior's gradient (9 coordinates)": best_time(
                lambda p=post: p.log_density_and_gradient(x), rounds
            ),
            "forward differences instead": best_time(
                lambda lik=lik: (lik.log_likelihood_models(T, models), lik.gradient(t)), rounds
            ),
        }
        print(f"{label}: one likelihood (site repeats) {1e3 * one:.3f} ms")
        for name, sec in times.items():
            print(f"  {name:38s} {1e3 * sec:8.3f} ms  {sec / one:6.2f} likelihoods")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer timing rounds")
    ap.add_argument("--no-start", action="store_true", help="skip the start-up timing")
    ap.add_argument(
        "--large", action="store_true", help="also time simulated trees of 200, 500 and 1000 taxa"
    )
    ap.add_argument(
        "--parameters",
        action="store_true",
        help="only the gradient in the model's parameters against one likelihood",
    )
    args = ap.parse_args(argv)
    if args.parameters:
        parameter_gradient_costs(args.quick)
        return
    print(
        f"numba {numba.__version__}, numpy {np.__version__}, "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
        "(other processes distort timings; compare ratios)"
    )
    st = None
    if not args.no_start:
        st = start_times()
        for label in ("cold JC69", "cached JC69", "cold GTR", "cached GTR"):
            total, imp, first, cpu = st[label]
            print(
                f"{label:11s} start: {total:5.2f} s wall for a new process ({cpu:.2f} s CPU): "
                f"import {imp:.2f} s, first likelihood, gradient and batch {first:.2f} s"
            )
        print(f"       (a new process importing only numpy: {st['python+numpy'][0]:.2f} s)")
    lib = _beagle.load()
    if lib is not None:
        print(f"BEAGLE {lib.beagleGetVersion().decode()} found")
    rng = np.random.default_rng(1)
    results = [
        run_problem(*ds1_problem(rng), args.quick, lib),
        run_problem(*big_problem(rng), args.quick, lib),
    ]
    if args.large:
        large_trees(args.quick)
    goals(results, st)


if __name__ == "__main__":
    main()
