"""numba kernels of ``phylo.ml``: small pure functions over float64 arrays.

They are wrapped, validated and documented by :mod:`phylo.ml.unordered_set` (the subset
recursion for the leave-one-out ratios of Kool, van Hoof & Welling 2020) and
:mod:`phylo.ml.birkhoff` (the stick-breaking map of Linderman et al. 2018); call those instead.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + np.log1p(np.exp(b - a))
    return b + np.log1p(np.exp(a - b))


@numba.njit(cache=True)
def subset_log_probabilities(log_p, log_rest):
    """log J(U) for every subset U of k items, as a table indexed by bit mask.

    J(U) is the probability that sequential sampling without replacement from the domain
    U + R (R of log-mass ``log_rest``) draws all of U before any element of R:
    J(empty) = 1 and J(U) = sum_{u in U} p_u J(U - u) / (q + p(U)).
    """
    k = log_p.shape[0]
    n = 1 << k
    log_j = np.empty(n)
    log_mass = np.empty(n)
    log_j[0] = 0.0
    log_mass[0] = -np.inf
    terms = np.empty(k)
    for mask in range(1, n):
        low = 0
        while not (mask >> low) & 1:
            low += 1
        log_mass[mask] = _logaddexp(log_mass[mask ^ (1 << low)], log_p[low])
        m = 0
        top = -np.inf
        for u in range(k):
            if (mask >> u) & 1:
                t = log_p[u] + log_j[mask ^ (1 << u)]
                terms[m] = t
                if t > top:
                    top = t
                m += 1
        if top == -np.inf:
            log_j[mask] = -np.inf
            continue
        acc = 0.0
        for i in range(m):
            acc += np.exp(terms[i] - top)
        log_j[mask] = top + np.log(acc) - _logaddexp(log_rest, log_mass[mask])
    return log_j


@numba.njit(cache=True)
def stick_breaking_forward(beta):
    """Map a batch of (N-1)x(N-1) matrices in [0,1] to N x N doubly stochastic matrices.

    Returns the matrices and log|det| of the Jacobian of beta -> X[:N-1, :N-1].
    """
    m = beta.shape[0]
    n = beta.shape[1] + 1
    out = np.zeros((m, n, n))
    logdet = np.zeros(m)
    col_rem = np.empty(n)
    suffix = np.empty(n + 1)
    for s in range(m):
        for j in range(n):
            col_rem[j] = 1.0
        for i in range(n - 1):
            suffix[n] = 0.0
            for j in range(n - 1, -1, -1):
                suffix[j] = suffix[j + 1] + col_rem[j]
            row_rem = 1.0
            for j in range(n - 1):
                upper = min(row_rem, col_rem[j])
                lower = max(0.0, row_rem - suffix[j + 1])
                width = upper - lower
                x = lower + beta[s, i, j] * width
                out[s, i, j] = x
                logdet[s] += np.log(width)
                row_rem -= x
                col_rem[j] -= x
            out[s, i, n - 1] = row_rem
            col_rem[n - 1] -= row_rem
        for j in range(n):
            out[s, n - 1, j] = col_rem[j]
    return out, logdet


@numba.njit(cache=True)
def stick_breaking_inverse(x):
    """Inverse of :func:`stick_breaking_forward`: beta and the forward log|det| at beta."""
    m = x.shape[0]
    n = x.shape[1]
    beta = np.zeros((m, n - 1, n - 1))
    logdet = np.zeros(m)
    col_rem = np.empty(n)
    suffix = np.empty(n + 1)
    for s in range(m):
        for j in range(n):
            col_rem[j] = 1.0
        for i in range(n - 1):
            suffix[n] = 0.0
            for j in range(n - 1, -1, -1):
                suffix[j] = suffix[j + 1] + col_rem[j]
            row_rem = 1.0
            for j in range(n - 1):
                upper = min(row_rem, col_rem[j])
                lower = max(0.0, row_rem - suffix[j + 1])
                width = upper - lower
                beta[s, i, j] = (x[s, i, j] - lower) / width
                logdet[s] += np.log(width)
                row_rem -= x[s, i, j]
                col_rem[j] -= x[s, i, j]
            col_rem[n - 1] -= x[s, i, n - 1]
    return beta, logdet
