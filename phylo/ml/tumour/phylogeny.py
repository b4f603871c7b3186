"""Exact tests on genotype matrices: perfect phylogeny and linear versus branching evolution.

Sadeqi Azer et al. (2020), Tumor phylogeny topology inference via deep learning; Gusfield, D.
(1991), Efficient algorithms for inferring evolutionary trees, Networks 21, 19-28.

*Three-gametes test.*  A binary cells x mutations matrix :math:`A` (ancestral state 0, each
mutation gained once, never lost) admits a rooted perfect phylogeny if and only if no two
columns :math:`p, q` show all three gametes :math:`(1,1), (1,0), (0,1)` among the rows.  With
:math:`C = A^\\top A` and column sums :math:`c`, the pair conflicts when

.. math:: C_{pq} > 0, \\quad c_p - C_{pq} > 0, \\quad c_q - C_{pq} > 0.

*Linear versus branching.*  The clonal tree of a conflict-free matrix is a chain exactly when
every pair of columns is nested (no pair shows both :math:`(1,0)` and :math:`(0,1)`): then the
cells' mutation sets are prefixes of one ordering of the mutations.  A conflict-free matrix that
is not linear has two disjoint non-empty mutation columns, i.e. branching evolution.

*Noise elimination baseline.*  :func:`min_flip_correction` finds, by exhaustive search over
sets of flipped entries of increasing size, a conflict-free matrix at the least number of flips
from the input (ties broken by likelihood under the error rates).  It is exact and meant for
small matrices.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

from ...errors import InputError

__all__ = [
    "conflict_pairs",
    "is_perfect_phylogeny",
    "is_linear",
    "is_branching",
    "min_flip_correction",
    "batch_is_perfect_phylogeny",
]


def _as_matrix(matrix) -> np.ndarray:
    a = np.asarray(matrix)
    if a.ndim != 2:
        raise InputError(f"a genotype matrix is two-dimensional, got shape {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise InputError("a genotype matrix holds only 0 and 1")
    return a.astype(np.int64)


def _gamete_counts(a: np.ndarray):
    c11 = a.swapaxes(-1, -2) @ a
    c = a.sum(axis=-2)
    c10 = c[..., :, None] - c11
    c01 = c[..., None, :] - c11
    return c11, c10, c01


def conflict_pairs(matrix) -> np.ndarray:
    """(m, m) boolean: columns ``p, q`` show all three gametes (1,1), (1,0), (0,1)."""
    c11, c10, c01 = _gamete_counts(_as_matrix(matrix))
    return (c11 > 0) & (c10 > 0) & (c01 > 0)


def is_perfect_phylogeny(matrix) -> bool:
    """True when the matrix passes the three-gametes test (a rooted perfect phylogeny exists)."""
    return not conflict_pairs(matrix).any()


def batch_is_perfect_phylogeny(matrices) -> np.ndarray:
    """Three-gametes test of a stack of matrices of shape (B, n, m); returns (B,) booleans."""
    a = np.asarray(matrices).astype(np.int32)
    c11, c10, c01 = _gamete_counts(a)
    return ~((c11 > 0) & (c10 > 0) & (c01 > 0)).any(axis=(-1, -2))


def is_linear(matrix) -> bool:
    """True when every pair of mutation columns is nested (a chain of clones).

    A linear matrix is always conflict-free.
    """
    _, c10, c01 = _gamete_counts(_as_matrix(matrix))
    return not ((c10 > 0) & (c01 > 0)).any()


def is_branching(matrix) -> bool:
    """True for a conflict-free matrix whose clonal tree is not a chain.

    Raises :class:`InputError` when the matrix has no perfect phylogeny (the question is then
    not defined).
    """
    if not is_perfect_phylogeny(matrix):
        raise InputError("the matrix fails the three-gametes test: it has no perfect phylogeny")
    return not is_linear(matrix)


def min_flip_correction(
    matrix, fp_rate: float = 0.01, fn_rate: float = 0.1, max_flips: int = 4
) -> tuple[np.ndarray, int]:
    """Nearest conflict-free matrix, by exhaustive search over flipped entries.

    Among all matrices :math:`B` with a perfect phylogeny, return one minimising the number of
    differing entries :math:`\\sum_{ij} |A'_{ij} - B_{ij}|`; among those, the most likely under
    the error model, i.e. minimising

    .. math::
        \\sum_{A'_{ij}=1, B_{ij}=0} \\log\\frac{1-\\beta}{\\alpha}
        + \\sum_{A'_{ij}=0, B_{ij}=1} \\log\\frac{1-\\alpha}{\\beta}.

    Parameters
    ----------
    matrix
        Observed (n, m) 0/1 matrix :math:`A'`.
    fp_rate, fn_rate
        :math:`\\alpha, \\beta`, used only to break ties.
    max_flips
        Largest number of flips tried; the cost grows as :math:`\\binom{nm}{k}`.

    Returns
    -------
    corrected : numpy.ndarray
        The corrected matrix (``int8``).
    n_flips : int
        Number of flipped entries, or -1 when no correction within ``max_flips`` exists (the
        input is then returned unchanged).
    """
    a = _as_matrix(matrix)
    n, m = a.shape
    if comb(n * m, max_flips) > 5_000_000:
        raise InputError(
            f"exhaustive search over {max_flips} flips of a {n} x {m} matrix is too large; "
            "use a smaller matrix or fewer flips"
        )
    flat = a.ravel()
    cost = np.where(flat == 1, np.log((1 - fn_rate) / fp_rate), np.log((1 - fp_rate) / fn_rate))
    for k in range(max_flips + 1):
        if k == 0:
            if is_perfect_phylogeny(a):
                return a.astype(np.int8), 0
            continue
        combos = np.array(list(combinations(range(n * m), k)), dtype=np.int64)
        for start in range(0, len(combos), 20000):
            chunk = combos[start : start + 20000]
            batch = np.repeat(flat[None, :], len(chunk), axis=0)
            rows = np.arange(len(chunk))[:, None]
            batch[rows, chunk] = 1 - batch[rows, chunk]
            ok = batch_is_perfect_phylogeny(batch.reshape(-1, n, m))
            if ok.any():
                # finish this size: collect every feasible set of size k, keep the cheapest
                feasible = [chunk[ok]]
                for s2 in range(start + 20000, len(combos), 20000):
                    c2 = combos[s2 : s2 + 20000]
                    b2 = np.repeat(flat[None, :], len(c2), axis=0)
                    r2 = np.arange(len(c2))[:, None]
                    b2[r2, c2] = 1 - b2[r2, c2]
                    ok2 = batch_is_perfect_phylogeny(b2.reshape(-1, n, m))
                    feasible.append(c2[ok2])
                feasible = np.concatenate(feasible)
                best = feasible[np.argmin(cost[feasible].sum(axis=1))]
                out = flat.copy()
                out[best] = 1 - out[best]
                return out.reshape(n, m).astype(np.int8), k
    return a.astype(np.int8), -1
