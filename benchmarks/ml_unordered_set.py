"""Speed of the leave-one-out ratios of the unordered set estimator.

Baseline: the brute-force definition (sum over all k! orderings of every leave-one-out and
leave-two-out set).  Compared in the same process with the subset recursion
(``method="exact"``) and the integral representation (``method="quadrature"``), on random
samples of size k.  Prints time ratios baseline / method (larger is faster) and the largest
disagreement with the baseline.

    PYTHONPATH=. python benchmarks/ml_unordered_set.py
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from scipy.special import logsumexp

from phylo.ml.unordered_set import log_leave_one_out_ratios


def _pl(w, rest, order):
    total, left = 0.0, rest + w[list(order)].sum()
    for b in order:
        total += np.log(w[b] / left)
        left -= w[b]
    return total


def brute_force(log_p, log_rest):
    w, rest = np.exp(log_p), np.exp(log_rest)
    k = w.size

    def log_set(items):
        if not items:
            return 0.0
        return logsumexp([_pl(w, rest, o) for o in itertools.permutations(items)])

    full = list(range(k))
    log_s = log_set(full)
    log_s1 = np.array([log_set([i for i in full if i != s]) for s in full])
    log_r2 = np.zeros((k, k))
    for s, t in itertools.permutations(full, 2):
        log_r2[s, t] = log_set([i for i in full if i not in (s, t)]) - log_s1[s]
    return log_s, log_s1 - log_s, log_r2


def timed(fun, repeat):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fun()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    rng = np.random.default_rng(0)
    log_leave_one_out_ratios(np.log([0.2, 0.3]), method="exact")  # compile
    print(
        f"{'k':>3} {'brute (s)':>10} {'exact x':>9} {'quad x':>9} "
        f"{'max|exact-brute|':>17} {'max|quad-brute|':>16}"
    )
    for k in [3, 4, 5, 6, 7]:
        w = np.exp(rng.normal(size=k + 5))
        w /= w.sum()
        log_p, log_rest = np.log(w[:k]), np.log(w[k:].sum())
        t_b, ref = timed(lambda: brute_force(log_p, log_rest), 1)
        t_e, ex = timed(lambda: log_leave_one_out_ratios(log_p, log_rest, "exact"), 5)
        t_q, qu = timed(lambda: log_leave_one_out_ratios(log_p, log_rest, "quadrature"), 5)
        err_e = max(
            abs(ex.log_prob_set - ref[0]),
            np.abs(ex.log_r1 - ref[1]).max(),
            np.abs(ex.log_r2 - ref[2]).max(),
        )
        err_q = max(
            abs(qu.log_prob_set - ref[0]),
            np.abs(qu.log_r1 - ref[1]).max(),
            np.abs(qu.log_r2 - ref[2]).max(),
        )
        print(
            f"{k:>3} {t_b:>10.4f} {t_b / t_e:>9.1f} {t_b / t_q:>9.1f} {err_e:>17.2e} {err_q:>16.2e}"
        )
    print("\nlarger samples, exact recursion vs quadrature (ratio = exact time / quadrature time)")
    for k in [10, 14, 16, 20]:
        w = np.exp(rng.normal(size=k + 5))
        w /= w.sum()
        log_p, log_rest = np.log(w[:k]), np.log(w[k:].sum())
        t_e, ex = timed(lambda: log_leave_one_out_ratios(log_p, log_rest, "exact"), 3)
        t_q, qu = timed(lambda: log_leave_one_out_ratios(log_p, log_rest, "quadrature"), 3)
        err = max(abs(ex.log_prob_set - qu.log_prob_set), np.abs(ex.log_r2 - qu.log_r2).max())
        print(f"k={k:>3}  exact/quadrature time ratio {t_e / t_q:8.2f}   max diff {err:.1e}")


if __name__ == "__main__":
    main()
