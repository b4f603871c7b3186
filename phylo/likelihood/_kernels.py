"""numba kernels of the tree likelihood: pruning, rescaling, branch gradients.

Plain functions over arrays (float64 values, int64 indices); the typed, documented
interface is :class:`phylo.likelihood.tree_likelihood.TreeLikelihood`.  This file holds
all the compiled code of the likelihood and nothing else (every function a kernel calls is
defined here).  There is one compiled entry point per model family, :func:`_traverse`
(likelihoods, or likelihoods and gradients, of a batch of branch-length vectors), plus
:func:`transition_matrices`; both release the GIL, so batches and pattern blocks run on
ordinary threads.  For the likelihood alone, nodes with few distinct patterns below them
are computed once per distinct pattern (site repeats, :func:`_up2c`).  The two families,
F81-type models (JC69, F81 and their +G, +I) and all others, compile and are cached
separately: this file is loaded once per family (:mod:`phylo.likelihood._families`, which
also keys the cache by a digest of the sources), so a session compiles only the kernels it
uses.  The kernels compile under LLVM settings of their own
(:mod:`phylo.likelihood._llvm_options`); their buffers are allocated by
:mod:`phylo.likelihood._buffers`.

The hot loops are small functions, one per variant (F81 or general model; children tips or
internal nodes), each a single loop over patterns for one rate category: LLVM vectorises
such a loop reliably, and not a loop nested in a loop over categories or sharing a
function with another.  Dispatchers between them are inlined by numba and every argument
is a plain int64, so each variant compiles once and is re-optimised only inside
:func:`_traverse` (numba re-optimises every callee inside each caller), which keeps the
first compilation short.

Layout (patterns innermost, so that the loops over patterns vectorise):

``tips``    (4 n_taxa, P)           tip partials (indicators of the allowed states), rows
                                    ``4c..4c+3`` for taxon ``c``
``buf``     (rows, P)               work rows, then per internal node ``v`` a slot of 4K
                                    rows (``slot[v - n_taxa]``, row ``4k + s`` for category
                                    ``k`` and state ``s``) holding the post-order edge partial
                                    :math:`P_e L_v` of the edge above ``v`` (the root's: its
                                    node partial), then (gradient) the pre-order partials
``Pm``      (E, K, 4, 4)            transition matrices of each edge and rate category
``topo``    (n_internal, 8) int64   one row per internal node in post-order (root last):
                                    node, n_children, child0..2, edge0..2 (-1 padded)
``mv``      float64 vector          the model: eigenvalues (4), V (16), V^-1 (16), Q (16),
                                    frequencies (4), pinv, K, rates (K), weights (K),
                                    F81 flag, mu (see :func:`pack_model`)

Post-order (Felsenstein 1981): :math:`L_v(s) = \\prod_{c} \\sum_j P_{e_c}(s, j) L_c(j)`.
What is stored is the edge partial :math:`P_e L_v` above each internal node: one loop over
patterns multiplies the children's edge partials and applies :math:`P_e`, and the
pre-order pass finds every edge partial it needs already computed (tips' edge partials are
computed inside those loops from the tip partials, which is cheaper than storing them).
For the likelihood alone, nodes whose partials are never needed at the same time share
storage, so that the working set stays in cache.  For F81-type models (JC69, F81:
all exchangeabilities equal) :math:`P(t) = a I + (1 - a) 1 \\pi^T` with
:math:`a = e^{-\\mu t}`, so :math:`P x = a x + (1 - a)(\\pi \\cdot x)`, a quarter of
the arithmetic of a 4 x 4 product; the kernels take that path when the model allows.
Rescaling: the post-order loops track each pattern's largest entry (over categories and
states) and count in the same loop those below :data:`SCALE_THRESHOLD`.  Only then
(rarely) are those patterns multiplied by a power of two, which is exact in floating
point, with the exponent added to the pattern's log scaler.  The pre-order partials
never need rescaling of their own (below).

Gradient (Ji et al. 2020): with pre-order partials :math:`q_a` (probability of the data
outside the subtree of :math:`a` jointly with the state at :math:`a`) and, for the edge
:math:`e` from :math:`a` to child :math:`v`, :math:`u_e = q_a \\odot \\prod_{w \\ne v}
P_{e_w} L_w`, the likelihood of every pattern is :math:`L = \\sum_k \\omega_k
u_{e,k}^T P_{e,k} L_{v,k}`, so

.. math:: \\frac{\\partial \\log L}{\\partial t_e} =
   \\frac{\\sum_k \\omega_k \\rho_k\\, u_{e,k}^T Q P_{e,k} L_{v,k}}
        {\\sum_k \\omega_k\\, u_{e,k}^T P_{e,k} L_{v,k}},
   \\qquad q_v = P_e^T u_e .

The denominator is the same at every edge, the pattern's likelihood: with the post-order
scaled, it is the root's value :math:`\\tilde L` (row :data:`ROW_DEN`) once each node's
pre-order partial is multiplied by the factors its own edge partial was scaled by.  So
the root's pre-order partial of pattern p starts as :math:`w_p f_p / \\tilde L_p`
(:math:`w_p` its weight, :math:`f_p` the variable sites' share, see
:func:`_pattern_factors`), and every step's numerators are then the gradient's terms
themselves: no denominators, no divisions, and no pre-order partial falls below
:math:`w_p f_p` in total (edge partials are at most one).  At a binary node with children
x, y one loop over patterns sums both edges' terms and writes both children's pre-order
partials; for F81-type models :math:`u^T Q e = \\mu((\\pi \\cdot e) \\sum u - u^T e)` and
:math:`P^T u = a u + (1 - a)(\\sum u) \\pi` avoid the 4 x 4 products, and for the others
the rows of Q summing to zero give :math:`u^T Q e = \\sum_{j \\ge 1} (e_j - e_0)
(Q^T u)_j`, three columns of Q instead of four.  (Those loops are limited by arithmetic,
so what counts is the number of multiplications and fused multiply-adds per pattern.)

References
----------
Felsenstein J. 1981. J Mol Evol 17:368-376.
Ji X, Zhang Z, Holbrook A, Nishimura A, Baele G, Rambaut A, Lemey P, Suchard MA. 2020.
Gradients do grow on trees: a linear-time O(N)-dimensional gradient for statistical
phylogenetics. Mol Biol Evol 37:3047-3060.
"""

from __future__ import annotations

import math
import platform

import numpy as np
from llvmlite import ir as _ir
from numba import njit, types, uint64
from numba.core import cgutils
from numba.core.extending import intrinsic

from ._families import cached_kernel

# Work rows of the buffer of :func:`_traverse`: per-pattern maxima, log scalers (units of
# log 2), variable-site shares (then the gradient's pattern factors), a scratch row, the
# scaled likelihoods of the variable-site component, then for K categories the edge
# partials of up to 3 tips (12 K rows), 4 K rows of scratch, 4 K rows of ones and 4 K
# rows written but never read; the partials follow from row 5 + 24 K.
ROW_MAX, ROW_LOGSCALE, ROW_FRAC, ROW_ACC, ROW_DEN, ROW_TIP = 0, 1, 2, 3, 4, 5
#: Rescale a pattern when its largest partial falls below this value.
SCALE_THRESHOLD = 2.0 ** -100
LN2 = math.log(2.0)
#: LLVM may fuse multiply-adds (no reassociation: results do not depend on blocking).
_FM = {"contract"}

# This file is also loaded as the modules "<name>_f81" and "<name>_general" (see
# :mod:`phylo.likelihood._families`), which set _FAMILY first.
_FAMILY = globals().get("_FAMILY")

# offsets in the model vector
_LAM, _V, _VI, _Q, _PI, _PINV, _K, _RATES = 0, 4, 20, 36, 52, 56, 57, 58


def pack_model(lam, v, vinv, q, freqs, pinv, rates, weights) -> np.ndarray:
    """The model vector read by the kernels (see the module docstring).

    Two entries follow the category weights: 1.0 when Q is of the F81 form
    :math:`Q_{ij} = \\mu \\pi_j` (JC69, F81: all exchangeabilities equal), and that
    :math:`\\mu`; the kernels then skip the 4 x 4 products (the last two entries:
    setting the flag to 0 forces the general path, for tests).
    """
    k = len(rates)
    q = np.asarray(q, dtype=np.float64)
    freqs = np.asarray(freqs, dtype=np.float64)
    mu = q[0, 1] / freqs[1]
    off = ~np.eye(4, dtype=bool)
    target = (mu * np.broadcast_to(freqs, (4, 4)))[off]
    # np.allclose(q[off], target, rtol=1e-13, atol=0), without its overhead (samplers of the
    # model's parameters pack a model per likelihood)
    f81 = bool(np.all(np.abs(q[off] - target) <= 1e-13 * np.abs(target)))
    return np.concatenate([lam, np.ravel(v), np.ravel(vinv), np.ravel(q), freqs,
                           [pinv, float(k)], rates, weights,
                           [1.0 if f81 else 0.0, mu]]).astype(np.float64)


def pack_models(lam, v, vinv, q, freqs, pinv, rates, weights) -> np.ndarray:
    """:func:`pack_model` of B models at once (arrays with a leading axis of B): (B, L)."""
    B, k = rates.shape
    mu = q[:, 0, 1] / freqs[:, 1]
    off = ~np.eye(4, dtype=bool)
    target = np.broadcast_to(mu[:, None, None] * freqs[:, None, :], (B, 4, 4))[:, off]
    f81 = np.all(np.abs(q[:, off] - target) <= 1e-13 * np.abs(target), axis=1)
    return np.concatenate([lam, v.reshape(B, 16), vinv.reshape(B, 16), q.reshape(B, 16), freqs,
                           pinv[:, None], np.full((B, 1), float(k)), rates, weights,
                           f81[:, None].astype(np.float64), mu[:, None]], axis=1)


def transition_matrices(mv, t, Pm):
    """Pm[e, k] = V diag(exp(lambda rho_k t_e)) V^-1, negative round-off clamped to 0.

    For F81-type models the closed form :math:`a I + (1 - a) 1 \\pi^T`,
    :math:`a = e^{-\\mu \\rho_k t_e}`, is used instead, so that the matrices agree with
    the fast path of the kernels to rounding.
    """
    K = Pm.shape[1]
    f81 = mv[_RATES + 2 * K] > 0.5
    mu = mv[_RATES + 2 * K + 1]
    ex = np.empty(4)
    for e in range(Pm.shape[0]):
        for k in range(K):
            r = mv[_RATES + k] * t[e]
            if f81:
                a = math.exp(-mu * r)
                for i in range(4):
                    for j in range(4):
                        Pm[e, k, i, j] = (1.0 - a) * mv[_PI + j] + (a if i == j else 0.0)
                continue
            for m in range(4):
                ex[m] = math.exp(mv[_LAM + m] * r)
            for i in range(4):
                for j in range(4):
                    s = 0.0
                    for m in range(4):
                        s += mv[_V + 4 * i + m] * ex[m] * mv[_VI + 4 * m + j]
                    Pm[e, k, i, j] = s if s > 0.0 else 0.0


transition_matrices = cached_kernel(transition_matrices, _FAMILY)


@njit(inline="always")
def _edge_partials(mv, t, Pm, e, src, sr, sstep, dst, dr, p0, p1):
    """For every category k: dst[dr+4k : dr+4k+4] = P_k src[sr+sstep k : ...] over patterns
    p0..p1, P_k = Pm[e, k] (a tip's edge partials, or a node's with one or three children).

    In the F81 family, :math:`P_k = a I + (1 - a) 1 \\pi^T`, :math:`a = e^{-\\mu \\rho_k
    t_e}`, and :math:`P x = a x + (1 - a)(\\pi \\cdot x)`, a quarter of the arithmetic.
    (Each variant is its own function with one loop over patterns, called once per
    category: LLVM then vectorises it reliably.  The dispatchers are inlined by numba, so
    the variants' code is optimised only in themselves and in :func:`_traverse`.)
    """
    # plain int64 arguments: literal ones would compile extra specialisations
    e, sr, sstep, dr = np.int64(e), np.int64(sr), np.int64(sstep), np.int64(dr)
    for k in range(Pm.shape[1]):
        _EP(mv, t, Pm, e, src, sr, sstep, dst, dr, p0, p1, k)


@njit(fastmath=_FM)
def _edge_partials_f81(mv, t, Pm, e, src, sr, sstep, dst, dr, p0, p1, k):
    K = Pm.shape[1]
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    mu = mv[_RATES + 2 * K + 1]
    s0 = sr + sstep * k
    d0 = dr + 4 * k
    a = math.exp(-mu * mv[_RATES + k] * t[e])
    b = 1.0 - a
    for p in range(uint64(p0), uint64(p1)):
        x0 = src[s0, p]; x1 = src[s0 + 1, p]; x2 = src[s0 + 2, p]; x3 = src[s0 + 3, p]
        s = b * (pi0 * x0 + pi1 * x1 + pi2 * x2 + pi3 * x3)
        dst[d0, p] = a * x0 + s
        dst[d0 + 1, p] = a * x1 + s
        dst[d0 + 2, p] = a * x2 + s
        dst[d0 + 3, p] = a * x3 + s


@njit(fastmath=_FM)
def _edge_partials_gen(mv, t, Pm, e, src, sr, sstep, dst, dr, p0, p1, k):
    s0 = sr + sstep * k
    d0 = dr + 4 * k
    a00 = Pm[e, k, 0, 0]; a01 = Pm[e, k, 0, 1]; a02 = Pm[e, k, 0, 2]; a03 = Pm[e, k, 0, 3]
    a10 = Pm[e, k, 1, 0]; a11 = Pm[e, k, 1, 1]; a12 = Pm[e, k, 1, 2]; a13 = Pm[e, k, 1, 3]
    a20 = Pm[e, k, 2, 0]; a21 = Pm[e, k, 2, 1]; a22 = Pm[e, k, 2, 2]; a23 = Pm[e, k, 2, 3]
    a30 = Pm[e, k, 3, 0]; a31 = Pm[e, k, 3, 1]; a32 = Pm[e, k, 3, 2]; a33 = Pm[e, k, 3, 3]
    for p in range(uint64(p0), uint64(p1)):
        x0 = src[s0, p]; x1 = src[s0 + 1, p]; x2 = src[s0 + 2, p]; x3 = src[s0 + 3, p]
        dst[d0, p] = a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
        dst[d0 + 1, p] = a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
        dst[d0 + 2, p] = a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
        dst[d0 + 3, p] = a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3


@njit(inline="always")
def _up2(mv, t, Pm, e, buf, tips, xt, xr, ex, yt, yr, ey, dr, p0, p1):
    """For every category k: rows dr+4k.. = P_k (x * y) over patterns p0..p1: a binary
    node's partial (the product of its children's edge partials x and y) goes straight into
    the edge partial above it (edge ``e``).  Returns how many patterns have their largest
    entry (over categories and states) below :data:`SCALE_THRESHOLD`: each category's loop
    takes the maximum over states into the running maximum over categories in row
    :data:`ROW_MAX` and counts, so that no pass of its own checks for rescaling (the last
    category's count is the one returned).

    A child's edge partials are rows xr+4k.. of ``buf`` or, for a tip (``xt``), computed
    on the fly from its partials (rows xr.. of ``tips``) and its edge ``ex`` (for two tips,
    the second's go through rows :data:`ROW_TIP` first).
    """
    K = Pm.shape[1]
    e, xr, ex, yr, ey, dr = np.int64(e), np.int64(xr), np.int64(ex), np.int64(yr), np.int64(ey), \
        np.int64(dr)
    if yt and not xt:
        xt, xr, ex, yt, yr, ey = yt, yr, ey, xt, xr, ex
    if yt:
        _edge_partials(mv, t, Pm, ey, tips, yr, 0, buf, ROW_TIP, p0, p1)
        yr = np.int64(ROW_TIP)
    c = 0
    for k in range(K):
        if xt:
            c = _U_TI(mv, t, Pm, e, buf, tips, xr, ex, yr, ey, dr, p0, p1, k)
        else:
            c = _U_II(mv, t, Pm, e, buf, tips, xr, ex, yr, ey, dr, p0, p1, k)
    return c


@njit(fastmath=_FM)
def _up2_f81_ii(mv, t, Pm, e, buf, tips, xr, ex, yr, ey, dr, p0, p1, k):
    K = Pm.shape[1]
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    mu = mv[_RATES + 2 * K + 1]
    x = xr + 4 * k
    y = yr + 4 * k
    d = dr + 4 * k
    rk = mv[_RATES + k]
    a = math.exp(-mu * rk * t[e])
    b = 1.0 - a
    c = 0
    more = k > 0                     # the running maximum starts at category 0
    for p in range(uint64(p0), uint64(p1)):
        x0 = buf[x, p]; x1 = buf[x + 1, p]; x2 = buf[x + 2, p]; x3 = buf[x + 3, p]
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        z0 = x0 * y0; z1 = x1 * y1; z2 = x2 * y2; z3 = x3 * y3
        s = b * (pi0 * z0 + pi1 * z1 + pi2 * z2 + pi3 * z3)
        d0 = a * z0 + s; d1 = a * z1 + s; d2 = a * z2 + s; d3 = a * z3 + s
        buf[d, p] = d0; buf[d + 1, p] = d1; buf[d + 2, p] = d2; buf[d + 3, p] = d3
        m = d0 if d0 > d1 else d1
        m = d2 if d2 > m else m
        m = d3 if d3 > m else m
        o = buf[ROW_MAX, p]
        o = o if more else 0.0          # loaded either way: a select, not a branch
        m = o if o > m else m
        buf[ROW_MAX, p] = m
        c += m < SCALE_THRESHOLD
    return c


@njit(fastmath=_FM)
def _up2_f81_ti(mv, t, Pm, e, buf, tips, xr, ex, yr, ey, dr, p0, p1, k):
    K = Pm.shape[1]
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    mu = mv[_RATES + 2 * K + 1]
    y = yr + 4 * k
    d = dr + 4 * k
    rk = mv[_RATES + k]
    a = math.exp(-mu * rk * t[e])
    b = 1.0 - a
    ax = math.exp(-mu * rk * t[ex])
    bx = 1.0 - ax
    c = 0
    more = k > 0                     # the running maximum starts at category 0
    for p in range(uint64(p0), uint64(p1)):
        t0 = tips[xr, p]; t1 = tips[xr + 1, p]; t2 = tips[xr + 2, p]; t3 = tips[xr + 3, p]
        s = bx * (pi0 * t0 + pi1 * t1 + pi2 * t2 + pi3 * t3)
        x0 = ax * t0 + s; x1 = ax * t1 + s; x2 = ax * t2 + s; x3 = ax * t3 + s
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        z0 = x0 * y0; z1 = x1 * y1; z2 = x2 * y2; z3 = x3 * y3
        s = b * (pi0 * z0 + pi1 * z1 + pi2 * z2 + pi3 * z3)
        d0 = a * z0 + s; d1 = a * z1 + s; d2 = a * z2 + s; d3 = a * z3 + s
        buf[d, p] = d0; buf[d + 1, p] = d1; buf[d + 2, p] = d2; buf[d + 3, p] = d3
        m = d0 if d0 > d1 else d1
        m = d2 if d2 > m else m
        m = d3 if d3 > m else m
        o = buf[ROW_MAX, p]
        o = o if more else 0.0          # loaded either way: a select, not a branch
        m = o if o > m else m
        buf[ROW_MAX, p] = m
        c += m < SCALE_THRESHOLD
    return c


@njit(fastmath=_FM)
def _up2_gen_ii(mv, t, Pm, e, buf, tips, xr, ex, yr, ey, dr, p0, p1, k):
    x = xr + 4 * k
    y = yr + 4 * k
    d = dr + 4 * k
    a00 = Pm[e, k, 0, 0]; a01 = Pm[e, k, 0, 1]; a02 = Pm[e, k, 0, 2]; a03 = Pm[e, k, 0, 3]
    a10 = Pm[e, k, 1, 0]; a11 = Pm[e, k, 1, 1]; a12 = Pm[e, k, 1, 2]; a13 = Pm[e, k, 1, 3]
    a20 = Pm[e, k, 2, 0]; a21 = Pm[e, k, 2, 1]; a22 = Pm[e, k, 2, 2]; a23 = Pm[e, k, 2, 3]
    a30 = Pm[e, k, 3, 0]; a31 = Pm[e, k, 3, 1]; a32 = Pm[e, k, 3, 2]; a33 = Pm[e, k, 3, 3]
    c = 0
    more = k > 0                     # the running maximum starts at category 0
    for p in range(uint64(p0), uint64(p1)):
        x0 = buf[x, p]; x1 = buf[x + 1, p]; x2 = buf[x + 2, p]; x3 = buf[x + 3, p]
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        z0 = x0 * y0; z1 = x1 * y1; z2 = x2 * y2; z3 = x3 * y3
        d0 = a00 * z0 + a01 * z1 + a02 * z2 + a03 * z3
        d1 = a10 * z0 + a11 * z1 + a12 * z2 + a13 * z3
        d2 = a20 * z0 + a21 * z1 + a22 * z2 + a23 * z3
        d3 = a30 * z0 + a31 * z1 + a32 * z2 + a33 * z3
        buf[d, p] = d0; buf[d + 1, p] = d1; buf[d + 2, p] = d2; buf[d + 3, p] = d3
        m = d0 if d0 > d1 else d1
        m = d2 if d2 > m else m
        m = d3 if d3 > m else m
        o = buf[ROW_MAX, p]
        o = o if more else 0.0          # loaded either way: a select, not a branch
        m = o if o > m else m
        buf[ROW_MAX, p] = m
        c += m < SCALE_THRESHOLD
    return c


@njit(fastmath=_FM)
def _up2_gen_ti(mv, t, Pm, e, buf, tips, xr, ex, yr, ey, dr, p0, p1, k):
    y = yr + 4 * k
    d = dr + 4 * k
    a00 = Pm[e, k, 0, 0]; a01 = Pm[e, k, 0, 1]; a02 = Pm[e, k, 0, 2]; a03 = Pm[e, k, 0, 3]
    a10 = Pm[e, k, 1, 0]; a11 = Pm[e, k, 1, 1]; a12 = Pm[e, k, 1, 2]; a13 = Pm[e, k, 1, 3]
    a20 = Pm[e, k, 2, 0]; a21 = Pm[e, k, 2, 1]; a22 = Pm[e, k, 2, 2]; a23 = Pm[e, k, 2, 3]
    a30 = Pm[e, k, 3, 0]; a31 = Pm[e, k, 3, 1]; a32 = Pm[e, k, 3, 2]; a33 = Pm[e, k, 3, 3]
    c00 = Pm[ex, k, 0, 0]; c01 = Pm[ex, k, 0, 1]; c02 = Pm[ex, k, 0, 2]; c03 = Pm[ex, k, 0, 3]
    c10 = Pm[ex, k, 1, 0]; c11 = Pm[ex, k, 1, 1]; c12 = Pm[ex, k, 1, 2]; c13 = Pm[ex, k, 1, 3]
    c20 = Pm[ex, k, 2, 0]; c21 = Pm[ex, k, 2, 1]; c22 = Pm[ex, k, 2, 2]; c23 = Pm[ex, k, 2, 3]
    c30 = Pm[ex, k, 3, 0]; c31 = Pm[ex, k, 3, 1]; c32 = Pm[ex, k, 3, 2]; c33 = Pm[ex, k, 3, 3]
    c = 0
    more = k > 0                     # the running maximum starts at category 0
    for p in range(uint64(p0), uint64(p1)):
        t0 = tips[xr, p]; t1 = tips[xr + 1, p]; t2 = tips[xr + 2, p]; t3 = tips[xr + 3, p]
        x0 = c00 * t0 + c01 * t1 + c02 * t2 + c03 * t3
        x1 = c10 * t0 + c11 * t1 + c12 * t2 + c13 * t3
        x2 = c20 * t0 + c21 * t1 + c22 * t2 + c23 * t3
        x3 = c30 * t0 + c31 * t1 + c32 * t2 + c33 * t3
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        z0 = x0 * y0; z1 = x1 * y1; z2 = x2 * y2; z3 = x3 * y3
        d0 = a00 * z0 + a01 * z1 + a02 * z2 + a03 * z3
        d1 = a10 * z0 + a11 * z1 + a12 * z2 + a13 * z3
        d2 = a20 * z0 + a21 * z1 + a22 * z2 + a23 * z3
        d3 = a30 * z0 + a31 * z1 + a32 * z2 + a33 * z3
        buf[d, p] = d0; buf[d + 1, p] = d1; buf[d + 2, p] = d2; buf[d + 3, p] = d3
        m = d0 if d0 > d1 else d1
        m = d2 if d2 > m else m
        m = d3 if d3 > m else m
        o = buf[ROW_MAX, p]
        o = o if more else 0.0          # loaded either way: a select, not a branch
        m = o if o > m else m
        buf[ROW_MAX, p] = m
        c += m < SCALE_THRESHOLD
    return c


# -- site repeats: nodes computed once per distinct pattern of their subtree ----------------
#
# Below a node, many site patterns look alike: a node whose subtree shows only U distinct
# columns (its classes) needs its partials for U columns, not P.  Such a *compressed* node
# keeps them in columns 0..U-1 of its rows.  The column maps lie end to end in ``cmap``
# (int32), found through the table ``ncols`` (a row per node, see
# :func:`phylo.likelihood.tree_likelihood.site_repeat_plan`): ``cmap[o + u]`` is the
# column of a child that class u reads (a tip's: a pattern where the class occurs; a
# compressed child's: its class).  A node that is not compressed reads a compressed child
# through ``cmap[o + p]`` (pattern p -> the child's class), expanded into work rows first
# so that its own loop stays a plain vectorised one.  A compressed node's own map gives
# the class of each pattern, read only to pass a rescaling on to the patterns of a class.
# The reading is a gather (not vectorised), so only nodes with few classes are compressed:
# see :func:`phylo.likelihood.tree_likelihood.site_repeat_plan`.

@njit(inline="always")
def _up2c(mv, t, Pm, e, buf, tips, xt, xr, ex, yt, yr, ey, dr, U, cmap, ox, oy):
    """:func:`_up2` for a compressed node (columns 0..U-1); children's rows as in
    :func:`_up2` (a tip's in ``tips``), read at the columns ``cmap[ox + u]`` and
    ``cmap[oy + u]`` give."""
    K = Pm.shape[1]
    e, xr, ex, yr, ey, dr = np.int64(e), np.int64(xr), np.int64(ex), np.int64(yr), \
        np.int64(ey), np.int64(dr)
    ox, oy = np.int64(ox), np.int64(oy)
    c = 0
    for k in range(K):
        c = _UC(mv, t, Pm, e, buf, tips, xt, xr, ex, yt, yr, ey, dr, U, cmap, ox, oy, k)
    return c


@njit(fastmath=_FM)
def _up2c_f81(mv, t, Pm, e, buf, tips, xt, xr, ex, yt, yr, ey, dr, U, cmap, ox, oy, k):
    K = Pm.shape[1]
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    mu = mv[_RATES + 2 * K + 1]
    rk = mv[_RATES + k]
    a = math.exp(-mu * rk * t[e])
    b = 1.0 - a
    ax = math.exp(-mu * rk * t[ex])
    bx = 1.0 - ax
    ay = math.exp(-mu * rk * t[ey])
    by = 1.0 - ay
    x = xr if xt else xr + 4 * k
    y = yr if yt else yr + 4 * k
    d = dr + 4 * k
    c = 0
    more = k > 0                     # the running maximum starts at category 0
    mx = cmap[ox:]                   # views (see _expand)
    my = cmap[oy:]
    for u in range(U):
        qx = mx[u]
        qy = my[u]
        if xt:
            t0 = tips[x, qx]; t1 = tips[x + 1, qx]; t2 = tips[x + 2, qx]; t3 = tips[x + 3, qx]
            s = bx * (pi0 * t0 + pi1 * t1 + pi2 * t2 + pi3 * t3)
            x0 = ax * t0 + s; x1 = ax * t1 + s; x2 = ax * t2 + s; x3 = ax * t3 + s
        else:
            x0 = buf[x, qx]; x1 = buf[x + 1, qx]; x2 = buf[x + 2, qx]; x3 = buf[x + 3, qx]
        if yt:
            t0 = tips[y, qy]; t1 = tips[y + 1, qy]; t2 = tips[y + 2, qy]; t3 = tips[y + 3, qy]
            s = by * (pi0 * t0 + pi1 * t1 + pi2 * t2 + pi3 * t3)
            y0 = ay * t0 + s; y1 = ay * t1 + s; y2 = ay * t2 + s; y3 = ay * t3 + s
        else:
            y0 = buf[y, qy]; y1 = buf[y + 1, qy]; y2 = buf[y + 2, qy]; y3 = buf[y + 3, qy]
        z0 = x0 * y0; z1 = x1 * y1; z2 = x2 * y2; z3 = x3 * y3
        s = b * (pi0 * z0 + pi1 * z1 + pi2 * z2 + pi3 * z3)
        d0 = a * z0 + s; d1 = a * z1 + s; d2 = a * z2 + s; d3 = a * z3 + s
        buf[d, u] = d0; buf[d + 1, u] = d1; buf[d + 2, u] = d2; buf[d + 3, u] = d3
        m = d0 if d0 > d1 else d1
        m = d2 if d2 > m else m
        m = d3 if d3 > m else m
        o = buf[ROW_MAX, u]
        o = o if more else 0.0
        m = o if o > m else m
        buf[ROW_MAX, u] = m
        c += m < SCALE_THRESHOLD
    return c


@njit(fastmath=_FM)
def _up2c_gen(mv, t, Pm, e, buf, tips, xt, xr, ex, yt, yr, ey, dr, U, cmap, ox, oy, k):
    x = xr if xt else xr + 4 * k
    y = yr if yt else yr + 4 * k
    d = dr + 4 * k
    A = Pm[e, k]
    X = Pm[ex, k]
    Y = Pm[ey, k]
    c = 0
    more = k > 0                     # the running maximum starts at category 0
    mx = cmap[ox:]                   # views (see _expand)
    my = cmap[oy:]
    for u in range(U):
        qx = mx[u]
        qy = my[u]
        if xt:
            t0 = tips[x, qx]; t1 = tips[x + 1, qx]; t2 = tips[x + 2, qx]; t3 = tips[x + 3, qx]
            x0 = X[0, 0] * t0 + X[0, 1] * t1 + X[0, 2] * t2 + X[0, 3] * t3
            x1 = X[1, 0] * t0 + X[1, 1] * t1 + X[1, 2] * t2 + X[1, 3] * t3
            x2 = X[2, 0] * t0 + X[2, 1] * t1 + X[2, 2] * t2 + X[2, 3] * t3
            x3 = X[3, 0] * t0 + X[3, 1] * t1 + X[3, 2] * t2 + X[3, 3] * t3
        else:
            x0 = buf[x, qx]; x1 = buf[x + 1, qx]; x2 = buf[x + 2, qx]; x3 = buf[x + 3, qx]
        if yt:
            t0 = tips[y, qy]; t1 = tips[y + 1, qy]; t2 = tips[y + 2, qy]; t3 = tips[y + 3, qy]
            y0 = Y[0, 0] * t0 + Y[0, 1] * t1 + Y[0, 2] * t2 + Y[0, 3] * t3
            y1 = Y[1, 0] * t0 + Y[1, 1] * t1 + Y[1, 2] * t2 + Y[1, 3] * t3
            y2 = Y[2, 0] * t0 + Y[2, 1] * t1 + Y[2, 2] * t2 + Y[2, 3] * t3
            y3 = Y[3, 0] * t0 + Y[3, 1] * t1 + Y[3, 2] * t2 + Y[3, 3] * t3
        else:
            y0 = buf[y, qy]; y1 = buf[y + 1, qy]; y2 = buf[y + 2, qy]; y3 = buf[y + 3, qy]
        z0 = x0 * y0; z1 = x1 * y1; z2 = x2 * y2; z3 = x3 * y3
        d0 = A[0, 0] * z0 + A[0, 1] * z1 + A[0, 2] * z2 + A[0, 3] * z3
        d1 = A[1, 0] * z0 + A[1, 1] * z1 + A[1, 2] * z2 + A[1, 3] * z3
        d2 = A[2, 0] * z0 + A[2, 1] * z1 + A[2, 2] * z2 + A[2, 3] * z3
        d3 = A[3, 0] * z0 + A[3, 1] * z1 + A[3, 2] * z2 + A[3, 3] * z3
        buf[d, u] = d0; buf[d + 1, u] = d1; buf[d + 2, u] = d2; buf[d + 3, u] = d3
        m = d0 if d0 > d1 else d1
        m = d2 if d2 > m else m
        m = d3 if d3 > m else m
        o = buf[ROW_MAX, u]
        o = o if more else 0.0
        m = o if o > m else m
        buf[ROW_MAX, u] = m
        c += m < SCALE_THRESHOLD
    return c


@njit
def _expand(buf, sr, nrows, dr, cmap, o, p0, p1):
    """Rows dr..dr+nrows, patterns p0..p1 = rows sr.. of a compressed child, each
    pattern's class (``cmap[o + p]``)."""
    m = cmap[o:]                     # a view: indexing cmap[o + p] ran 1.5 times slower
    for r in range(nrows):
        for p in range(uint64(p0), uint64(p1)):
            buf[dr + r, p] = buf[sr + r, m[p]]


@njit
def _rescale_c(buf, r0, nrows, U, cmap, o, p0, p1, track):
    """:func:`_rescale` for a compressed node (columns 0..U-1): each class below the
    threshold is scaled, and its exponent added to the log scalers of its patterns."""
    for u in range(U):
        buf[ROW_MAX, u] = 0.0
    for r in range(r0, r0 + nrows):
        for u in range(U):
            x = buf[r, u]
            m = buf[ROW_MAX, u]
            buf[ROW_MAX, u] = x if x > m else m
    scaled = False
    for u in range(U):
        m = buf[ROW_MAX, u]
        ex = 0
        if m < SCALE_THRESHOLD and m > 0.0:
            ex = math.frexp(m)[1]
            f = math.ldexp(1.0, -ex)
            for r in range(r0, r0 + nrows):
                buf[r, u] *= f
            scaled = True
        buf[ROW_ACC, u] = ex       # a scratch row
    if scaled and track:
        own = cmap[o:]
        for p in range(uint64(p0), uint64(p1)):
            buf[ROW_LOGSCALE, p] += buf[ROW_ACC, own[p]]


@njit
def _rescale(buf, r0, nrows, mrow, p0, p1, track, have_max, frow):
    """Scale patterns of rows r0..r0+nrows whose largest entry is below the threshold by an
    exact power of two; returns whether any was.

    The per-pattern maxima are in row ``mrow`` (computed here unless ``have_max``); with
    ``track`` the exponents are added to the log scalers (row :data:`ROW_LOGSCALE`, in
    units of log 2); with ``frow >= 0``, when patterns are scaled, row ``frow`` receives
    every pattern's factor (1 where none was applied).  Only the check runs at every node;
    patterns are scaled rarely.
    """
    if not have_max:
        for p in range(uint64(p0), uint64(p1)):
            buf[mrow, p] = 0.0
        for r in range(r0, r0 + nrows):
            for p in range(uint64(p0), uint64(p1)):
                x = buf[r, p]
                m = buf[mrow, p]
                buf[mrow, p] = x if x > m else m
    c = 0
    for p in range(uint64(p0), uint64(p1)):
        c += buf[mrow, p] < SCALE_THRESHOLD
    if c == 0:
        return False                # the common case, checked without branches per pattern
    for p in range(uint64(p0), uint64(p1)):
        m = buf[mrow, p]
        f = 1.0
        if m < SCALE_THRESHOLD and m > 0.0:
            ex = math.frexp(m)[1]
            f = math.ldexp(1.0, -ex)
            for r in range(r0, r0 + nrows):
                buf[r, p] *= f
            if track:
                buf[ROW_LOGSCALE, p] += ex
        if frow >= 0:
            buf[frow, p] = f
    return True


# -- a logarithm that vectorises ---------------------------------------------------------
#
# math.log is a call LLVM cannot vectorise; one per site pattern costs as much as a node of
# the pruning on DS1.  The classic argument reduction and minimax polynomial (as in fdlibm:
# x = 2^e (1 + f), sqrt(2)/2 <= 1 + f < sqrt(2), log(1 + f) from s = f / (2 + f)), written
# with bit casts, is branch-free and vectorises; it is within an ulp of the correctly
# rounded value for positive normal numbers.  Other inputs go through math.log.

@intrinsic
def _as_int(typingctx, x):
    """The bits of a float64 as an int64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _as_float(typingctx, x):
    """The float64 whose bits are the int64 ``x``."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _ir.DoubleType())
    return types.float64(types.int64), codegen


# -- flushing subnormal numbers to zero ---------------------------------------------------
#
# On large trees some categories' partials fall far below the others' (rescaling keeps
# each pattern's largest partial up, not every category's): on 1000 taxa with GTR+G4 about
# one pre-order value in a hundred was subnormal, and each vector operation on one took a
# microcode assist, which made the gradient 12 times a likelihood.  The traversal runs
# with the x86 flags FTZ and DAZ set (subnormal results and operands as zero, as RAxML-NG
# and others do) and restores the caller's flags at the end.  What is lost is below 2^-1022
# times the largest partial of its pattern, which rescaling keeps above 2^-100.

_X86 = platform.machine().lower() in ("x86_64", "amd64")
_FTZ_DAZ = 0x8040


def _mxcsr_call(builder, name, slot):
    """Calls the LLVM intrinsic ``llvm.x86.sse.<name>`` (stmxcsr or ldmxcsr) on the i32 at
    ``slot``."""
    fnty = _ir.FunctionType(_ir.VoidType(), [_ir.IntType(8).as_pointer()])
    full = f"llvm.x86.sse.{name}"
    fn = builder.module.globals.get(full) or _ir.Function(builder.module, fnty, full)
    builder.call(fn, [builder.bitcast(slot, _ir.IntType(8).as_pointer())])


@intrinsic
def _mxcsr_or(typingctx, bits):
    """Sets ``bits`` in the x86 MXCSR register (no-op elsewhere); returns its old value."""
    def codegen(context, builder, sig, args):
        i32 = _ir.IntType(32)
        if not _X86:
            return _ir.Constant(i32, 0)
        slot = cgutils.alloca_once(builder, i32)
        _mxcsr_call(builder, "stmxcsr", slot)
        old = builder.load(slot)
        builder.store(builder.or_(old, builder.trunc(args[0], i32)), slot)
        _mxcsr_call(builder, "ldmxcsr", slot)
        return old
    return types.uint32(types.int64), codegen


@intrinsic
def _mxcsr_set(typingctx, value):
    """Sets the x86 MXCSR register to ``value`` (no-op elsewhere)."""
    def codegen(context, builder, sig, args):
        if _X86:
            slot = cgutils.alloca_once(builder, _ir.IntType(32))
            builder.store(args[0], slot)
            _mxcsr_call(builder, "ldmxcsr", slot)
        return context.get_dummy_value()
    return types.none(types.uint32), codegen


_LG1, _LG2, _LG3, _LG4 = (6.666666666666735130e-01, 3.999999999940941908e-01,
                          2.857142874366239149e-01, 2.222219843214978396e-01)
_LG5, _LG6, _LG7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
DBL_MIN = 2.2250738585072014e-308
DBL_MAX = 1.7976931348623157e308


@njit(inline="always", error_model="numpy")
def _log_normal(x):
    """log(x) for a positive normal float64 x (anything else: garbage, see above)."""
    b = _as_int(x)
    mb = (b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000      # 1 <= m < 2
    big = mb > 0x3FF6A09E667F3BCC                           # m > sqrt(2): halve it
    kb = (b >> 52) + (1 if big else 0)                      # the biased exponent
    mb = mb - (0x0010000000000000 if big else 0)
    f = _as_float(mb) - 1.0
    # the exponent as a float without an int -> float conversion (none in AVX2):
    # the bits of 2^52 + kb, minus 2^52 + 1023
    dk = _as_float(kb | 0x4330000000000000) - 4503599627371519.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + t1 + t2) + dk * _LN2_LO)) - f)


@njit(error_model="numpy")      # no zero-division check: a branch would stop vectorising
def log_array(x, out, p0, p1):
    """out[p] = log(x[p]) for p0..p1 (x >= 0; 0 gives -inf); within an ulp of math.log."""
    bad = 0
    for p in range(uint64(p0), uint64(p1)):
        v = x[p]
        out[p] = _log_normal(v)
        bad += not (v >= DBL_MIN and v <= DBL_MAX)
    if bad:
        for p in range(uint64(p0), uint64(p1)):
            v = x[p]
            if not (v >= DBL_MIN and v <= DBL_MAX):
                out[p] = math.log(v) if v > 0.0 else (-np.inf if v == 0.0 else np.nan)


@njit(fastmath=_FM, error_model="numpy")
def _root_logs(weights, buf, site_ll, p0, p1):
    """Without invariant sites, when every site likelihood (``site_ll``, scaled) is a
    positive normal number: ``site_ll[p]`` = its log plus the pattern's log scaler, row
    :data:`ROW_FRAC` = 1; returns sum_p w_p site_ll[p] (four running sums: the dependent
    chain of one would cost more than the logs), or NaN, touching nothing, when some
    site likelihood is not a positive normal number."""
    bad = 0
    for p in range(uint64(p0), uint64(p1)):
        v = site_ll[p]
        bad += not (v >= DBL_MIN and v <= DBL_MAX)
    if bad:
        return np.nan
    for p in range(uint64(p0), uint64(p1)):
        site_ll[p] = _log_normal(site_ll[p]) + buf[ROW_LOGSCALE, p] * LN2
        buf[ROW_FRAC, p] = 1.0
    s0 = 0.0; s1 = 0.0; s2 = 0.0; s3 = 0.0
    p = p0
    while p + 4 <= p1:
        s0 += weights[p] * site_ll[p]
        s1 += weights[p + 1] * site_ll[p + 1]
        s2 += weights[p + 2] * site_ll[p + 2]
        s3 += weights[p + 3] * site_ll[p + 3]
        p += 4
    while p < p1:
        s0 += weights[p] * site_ll[p]
        p += 1
    return (s0 + s1) + (s2 + s3)


@njit(inline="always")
def _root(mv, weights, inv, buf, r0, K, site_ll, p0, p1):
    """Per-pattern log-likelihoods from the root's partials (rows r0 + 4k + s); returns
    sum_p w_p log L_p over p0..p1.

    Row :data:`ROW_FRAC` receives (1 - pinv) L_var / L, the share of the variable-site
    component (1 without invariant sites), used by the gradient.
    """
    pinv = mv[_PINV]
    total = 0.0
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    for p in range(uint64(p0), uint64(p1)):
        site_ll[p] = 0.0
    for k in range(K):
        w = mv[_RATES + K + k]
        r = r0 + 4 * k
        for p in range(uint64(p0), uint64(p1)):
            site_ll[p] += w * (pi0 * buf[r, p] + pi1 * buf[r + 1, p] + pi2 * buf[r + 2, p]
                               + pi3 * buf[r + 3, p])
    for p in range(uint64(p0), uint64(p1)):
        buf[ROW_DEN, p] = site_ll[p]              # for the gradient's pattern factors
    if pinv == 0.0:
        fast = _root_logs(weights, buf, site_ll, p0, p1)   # logs that vectorise
        if fast == fast:
            return fast
    for p in range(uint64(p0), uint64(p1)):
        lv = site_ll[p]
        if lv > 0.0:
            llv = math.log(lv) + buf[ROW_LOGSCALE, p] * LN2
        else:
            llv = -np.inf
        if pinv > 0.0:
            a = math.log1p(-pinv) + llv
            ip = pinv * inv[p]
            if ip > 0.0:
                b = math.log(ip)
                m = max(a, b)
                ll = m + math.log(math.exp(a - m) + math.exp(b - m))
                buf[ROW_FRAC, p] = math.exp(a - ll)
            else:
                ll = a
                buf[ROW_FRAC, p] = 1.0
        else:
            ll = llv
            buf[ROW_FRAC, p] = 1.0
        site_ll[p] = ll
        total += weights[p] * ll
    return total


@njit(inline="always")
def _down2(mv, t, Pm, buf, tips, qr, xt, xr, ex, vx, yt, yr, ey, vy, p0, p1):
    """The pre-order step at a binary node, for both children and every category, one loop
    over patterns p0..p1 per category; returns the two edges' gradient terms.

    With the parent's pre-order partial q (rows qr+4k..) and the children's edge partials
    x, y (rows xr+4k.., yr+4k.. of ``buf``; for a tip (``xt``) computed on the fly from
    rows xr.. of ``tips`` and its edge ex), u = q * y and v = q * x are what the rest of
    the tree contributes above each child's edge.  The terms are the sums over patterns
    and categories of w rho u^T Q x and w rho v^T Q y: the root's pre-order partial of
    each pattern carries the factor that turns them into terms of d log L / dt (see
    :func:`_pattern_factors`), so no denominator is formed.  An internal child's pre-order
    partial (P_x^T u, P_y^T v) goes to rows vx+4k.. (vy+4k..).  For F81-type Q,
    :math:`u^T Q x = \\mu((\\pi \\cdot x) \\sum u - u^T x)` and
    :math:`P^T u = a u + (1 - a)(\\sum u)\\, \\pi`.  For two tips the general family has
    a loop of its own (no pre-order partial to compute); the F81 one passes the second
    tip's edge partials through rows :data:`ROW_TIP` first.
    """
    K = Pm.shape[1]
    # plain int64 arguments: literal ones would compile extra specialisations
    qr, xr, ex, vx = np.int64(qr), np.int64(xr), np.int64(ex), np.int64(vx)
    yr, ey, vy = np.int64(yr), np.int64(ey), np.int64(vy)
    swap = yt and not xt
    if swap:
        xt, xr, ex, vx, yt, yr, ey, vy = yt, yr, ey, vy, xt, xr, ex, vx
    if yt and not _GENERAL:
        _edge_partials(mv, t, Pm, ey, tips, yr, 0, buf, ROW_TIP, p0, p1)
        yr = np.int64(ROW_TIP)
    g0 = 0.0
    g1 = 0.0
    for k in range(K):
        if yt and _GENERAL:
            a, b = _D_TT(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k)
        elif xt:
            a, b = _D_TI(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k)
        else:
            a, b = _D_II(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k)
        g0 += a
        g1 += b
    if swap:
        return g1, g0
    return g0, g1


# The pre-order loops sum their gradient terms over patterns (reassociation lets LLVM
# vectorise those sums; their rounding then depends on the vector width, not on data).
_FMR = {"contract", "reassoc", "nsz"}


@njit(inline="always")
def _f81_terms(q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, pi0, pi1, pi2, pi3):
    """One pattern and category of an F81-type pre-order step: u = q * y, v = q * x, their
    totals, and the numerators over mu w rho, (pi . x) sum u - u^T x and its mirror."""
    u0 = q0 * y0; u1 = q1 * y1; u2 = q2 * y2; u3 = q3 * y3
    v0 = q0 * x0; v1 = q1 * x1; v2 = q2 * x2; v3 = q3 * x3
    den = u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3
    su = u0 + u1 + u2 + u3
    sv = v0 + v1 + v2 + v3
    px = pi0 * x0 + pi1 * x1 + pi2 * x2 + pi3 * x3
    py = pi0 * y0 + pi1 * y1 + pi2 * y2 + pi3 * y3
    return u0, u1, u2, u3, v0, v1, v2, v3, su, sv, px * su - den, py * sv - den


@njit(fastmath=_FMR)
def _down2_f81_ii(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k):
    K = Pm.shape[1]
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    mu = mv[_RATES + 2 * K + 1]
    rk = mv[_RATES + k]
    wmu = mv[_RATES + K + k] * rk * mu
    q = qr + 4 * k
    x = xr + 4 * k
    y = yr + 4 * k
    vxk = vx + 4 * k
    vyk = vy + 4 * k
    ax = math.exp(-mu * rk * t[ex])
    bx = 1.0 - ax
    ay = math.exp(-mu * rk * t[ey])
    by = 1.0 - ay
    sx = 0.0
    sy = 0.0
    for p in range(uint64(p0), uint64(p1)):
        x0 = buf[x, p]; x1 = buf[x + 1, p]; x2 = buf[x + 2, p]; x3 = buf[x + 3, p]
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        q0 = buf[q, p]; q1 = buf[q + 1, p]; q2 = buf[q + 2, p]; q3 = buf[q + 3, p]
        u0, u1, u2, u3, v0, v1, v2, v3, su, sv, nx, ny = _f81_terms(
            q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, pi0, pi1, pi2, pi3)
        sx += nx
        sy += ny
        c = bx * su
        buf[vxk, p] = ax * u0 + c * pi0; buf[vxk + 1, p] = ax * u1 + c * pi1
        buf[vxk + 2, p] = ax * u2 + c * pi2; buf[vxk + 3, p] = ax * u3 + c * pi3
        c = by * sv
        buf[vyk, p] = ay * v0 + c * pi0; buf[vyk + 1, p] = ay * v1 + c * pi1
        buf[vyk + 2, p] = ay * v2 + c * pi2; buf[vyk + 3, p] = ay * v3 + c * pi3
    return wmu * sx, wmu * sy


@njit(fastmath=_FMR)
def _down2_f81_ti(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k):
    K = Pm.shape[1]
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    mu = mv[_RATES + 2 * K + 1]
    rk = mv[_RATES + k]
    wmu = mv[_RATES + K + k] * rk * mu
    q = qr + 4 * k
    y = yr + 4 * k
    vyk = vy + 4 * k
    ax = math.exp(-mu * rk * t[ex])
    bx = 1.0 - ax
    ay = math.exp(-mu * rk * t[ey])
    by = 1.0 - ay
    sx = 0.0
    sy = 0.0
    for p in range(uint64(p0), uint64(p1)):
        t0 = tips[xr, p]; t1 = tips[xr + 1, p]; t2 = tips[xr + 2, p]; t3 = tips[xr + 3, p]
        s = bx * (pi0 * t0 + pi1 * t1 + pi2 * t2 + pi3 * t3)
        x0 = ax * t0 + s; x1 = ax * t1 + s; x2 = ax * t2 + s; x3 = ax * t3 + s
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        q0 = buf[q, p]; q1 = buf[q + 1, p]; q2 = buf[q + 2, p]; q3 = buf[q + 3, p]
        _, _, _, _, v0, v1, v2, v3, _, sv, nx, ny = _f81_terms(
            q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, pi0, pi1, pi2, pi3)
        sx += nx
        sy += ny
        c = by * sv
        buf[vyk, p] = ay * v0 + c * pi0; buf[vyk + 1, p] = ay * v1 + c * pi1
        buf[vyk + 2, p] = ay * v2 + c * pi2; buf[vyk + 3, p] = ay * v3 + c * pi3
    return wmu * sx, wmu * sy


@njit(inline="always")
def _p(m, e, k):
    """The 16 entries of Pm[e, k] (row-major), as separate values."""
    return (m[e, k, 0, 0], m[e, k, 0, 1], m[e, k, 0, 2], m[e, k, 0, 3],
            m[e, k, 1, 0], m[e, k, 1, 1], m[e, k, 1, 2], m[e, k, 1, 3],
            m[e, k, 2, 0], m[e, k, 2, 1], m[e, k, 2, 2], m[e, k, 2, 3],
            m[e, k, 3, 0], m[e, k, 3, 1], m[e, k, 3, 2], m[e, k, 3, 3])


@njit(inline="always")
def _g(mv, K, k):
    """Columns 1..3 of rho_k Q (row-major, 12 values): the rows of Q sum to zero, so
    :math:`\\rho\\, u^T Q x = \\sum_{j \\ge 1} (x_j - x_0) (\\rho\\, Q^T u)_j`."""
    r = mv[_RATES + k]
    return (r * mv[_Q + 1], r * mv[_Q + 2], r * mv[_Q + 3],
            r * mv[_Q + 5], r * mv[_Q + 6], r * mv[_Q + 7],
            r * mv[_Q + 9], r * mv[_Q + 10], r * mv[_Q + 11],
            r * mv[_Q + 13], r * mv[_Q + 14], r * mv[_Q + 15])


@njit(inline="always")
def _gen_terms(q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, g):
    """One pattern and category of a general pre-order step: u = q * y, v = q * x and the
    two numerators rho u^T Q x, rho v^T Q y (``g`` from :func:`_g`)."""
    g01, g02, g03, g11, g12, g13, g21, g22, g23, g31, g32, g33 = g
    u0 = q0 * y0; u1 = q1 * y1; u2 = q2 * y2; u3 = q3 * y3
    v0 = q0 * x0; v1 = q1 * x1; v2 = q2 * x2; v3 = q3 * x3
    h1 = g01 * u0 + g11 * u1 + g21 * u2 + g31 * u3
    h2 = g02 * u0 + g12 * u1 + g22 * u2 + g32 * u3
    h3 = g03 * u0 + g13 * u1 + g23 * u2 + g33 * u3
    nx = (x1 - x0) * h1 + (x2 - x0) * h2 + (x3 - x0) * h3
    h1 = g01 * v0 + g11 * v1 + g21 * v2 + g31 * v3
    h2 = g02 * v0 + g12 * v1 + g22 * v2 + g32 * v3
    h3 = g03 * v0 + g13 * v1 + g23 * v2 + g33 * v3
    ny = (y1 - y0) * h1 + (y2 - y0) * h2 + (y3 - y0) * h3
    return u0, u1, u2, u3, v0, v1, v2, v3, nx, ny


# The general pre-order loops below are limited by the multiplications and fused
# multiply-adds (about 70 per pattern): the children's pre-order partials (two 4 x 4
# products) and the two numerators through three columns of Q each (the rows of Q sum to
# zero).  The category weight w_k is carried by the pre-order partials of category k (the
# root's are w_k pi times the pattern's factor), so the loops do not apply it.

@njit(fastmath=_FMR)
def _down2_gen_ii(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k):
    K = Pm.shape[1]
    q = qr + 4 * k
    x = xr + 4 * k
    y = yr + 4 * k
    vxk = vx + 4 * k
    vyk = vy + 4 * k
    g = _g(mv, K, k)
    a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33 = \
        _p(Pm, ex, k)
    b00, b01, b02, b03, b10, b11, b12, b13, b20, b21, b22, b23, b30, b31, b32, b33 = \
        _p(Pm, ey, k)
    sx = 0.0
    sy = 0.0
    for p in range(uint64(p0), uint64(p1)):
        x0 = buf[x, p]; x1 = buf[x + 1, p]; x2 = buf[x + 2, p]; x3 = buf[x + 3, p]
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        q0 = buf[q, p]; q1 = buf[q + 1, p]; q2 = buf[q + 2, p]; q3 = buf[q + 3, p]
        u0, u1, u2, u3, v0, v1, v2, v3, nx, ny = _gen_terms(
            q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, g)
        sx += nx
        sy += ny
        buf[vxk, p] = a00 * u0 + a10 * u1 + a20 * u2 + a30 * u3
        buf[vxk + 1, p] = a01 * u0 + a11 * u1 + a21 * u2 + a31 * u3
        buf[vxk + 2, p] = a02 * u0 + a12 * u1 + a22 * u2 + a32 * u3
        buf[vxk + 3, p] = a03 * u0 + a13 * u1 + a23 * u2 + a33 * u3
        buf[vyk, p] = b00 * v0 + b10 * v1 + b20 * v2 + b30 * v3
        buf[vyk + 1, p] = b01 * v0 + b11 * v1 + b21 * v2 + b31 * v3
        buf[vyk + 2, p] = b02 * v0 + b12 * v1 + b22 * v2 + b32 * v3
        buf[vyk + 3, p] = b03 * v0 + b13 * v1 + b23 * v2 + b33 * v3
    return sx, sy


@njit(fastmath=_FMR)
def _down2_gen_ti(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k):
    K = Pm.shape[1]
    q = qr + 4 * k
    y = yr + 4 * k
    vyk = vy + 4 * k
    g = _g(mv, K, k)
    c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 = \
        _p(Pm, ex, k)
    b00, b01, b02, b03, b10, b11, b12, b13, b20, b21, b22, b23, b30, b31, b32, b33 = \
        _p(Pm, ey, k)
    sx = 0.0
    sy = 0.0
    for p in range(uint64(p0), uint64(p1)):
        t0 = tips[xr, p]; t1 = tips[xr + 1, p]; t2 = tips[xr + 2, p]; t3 = tips[xr + 3, p]
        x0 = c00 * t0 + c01 * t1 + c02 * t2 + c03 * t3
        x1 = c10 * t0 + c11 * t1 + c12 * t2 + c13 * t3
        x2 = c20 * t0 + c21 * t1 + c22 * t2 + c23 * t3
        x3 = c30 * t0 + c31 * t1 + c32 * t2 + c33 * t3
        y0 = buf[y, p]; y1 = buf[y + 1, p]; y2 = buf[y + 2, p]; y3 = buf[y + 3, p]
        q0 = buf[q, p]; q1 = buf[q + 1, p]; q2 = buf[q + 2, p]; q3 = buf[q + 3, p]
        _, _, _, _, v0, v1, v2, v3, nx, ny = _gen_terms(
            q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, g)
        sx += nx
        sy += ny
        buf[vyk, p] = b00 * v0 + b10 * v1 + b20 * v2 + b30 * v3
        buf[vyk + 1, p] = b01 * v0 + b11 * v1 + b21 * v2 + b31 * v3
        buf[vyk + 2, p] = b02 * v0 + b12 * v1 + b22 * v2 + b32 * v3
        buf[vyk + 3, p] = b03 * v0 + b13 * v1 + b23 * v2 + b33 * v3
    return sx, sy


@njit(fastmath=_FMR)
def _down2_gen_tt(mv, t, Pm, buf, tips, qr, xr, ex, vx, yr, ey, vy, p0, p1, k):
    K = Pm.shape[1]
    q = qr + 4 * k
    g = _g(mv, K, k)
    c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 = \
        _p(Pm, ex, k)
    b00, b01, b02, b03, b10, b11, b12, b13, b20, b21, b22, b23, b30, b31, b32, b33 = \
        _p(Pm, ey, k)
    sx = 0.0
    sy = 0.0
    for p in range(uint64(p0), uint64(p1)):
        t0 = tips[xr, p]; t1 = tips[xr + 1, p]; t2 = tips[xr + 2, p]; t3 = tips[xr + 3, p]
        x0 = c00 * t0 + c01 * t1 + c02 * t2 + c03 * t3
        x1 = c10 * t0 + c11 * t1 + c12 * t2 + c13 * t3
        x2 = c20 * t0 + c21 * t1 + c22 * t2 + c23 * t3
        x3 = c30 * t0 + c31 * t1 + c32 * t2 + c33 * t3
        t0 = tips[yr, p]; t1 = tips[yr + 1, p]; t2 = tips[yr + 2, p]; t3 = tips[yr + 3, p]
        y0 = b00 * t0 + b01 * t1 + b02 * t2 + b03 * t3
        y1 = b10 * t0 + b11 * t1 + b12 * t2 + b13 * t3
        y2 = b20 * t0 + b21 * t1 + b22 * t2 + b23 * t3
        y3 = b30 * t0 + b31 * t1 + b32 * t2 + b33 * t3
        q0 = buf[q, p]; q1 = buf[q + 1, p]; q2 = buf[q + 2, p]; q3 = buf[q + 3, p]
        _, _, _, _, _, _, _, _, nx, ny = _gen_terms(
            q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, g)
        sx += nx
        sy += ny
    return sx, sy


@njit(fastmath=_FMR, error_model="numpy")
def _pattern_factors(weights, buf, p0, p1):
    """Row :data:`ROW_FRAC` = w_p frac_p / L_p: the factor the root's pre-order partial of
    pattern p is scaled by (L_p, row :data:`ROW_DEN`, is the scaled likelihood of the
    variable-site component; frac_p its share of the whole).

    In exact arithmetic every pre-order step's denominator q_a^T (x * y) is that same L_p
    (every node's post-order scaling is in it, once the traversal has multiplied each
    node's pre-order partial by the factors its own edge partial was scaled by), so with
    this factor the step's numerators are already the pattern's terms of d log L / dt,
    and no pre-order partial ever needs rescaling: each one's total over states is at
    least its step's denominator (the edge partials are at most one), that is w_p frac_p,
    the pattern's weight in the gradient.  A pattern of zero share (frac_p = 0) gets
    factor 0; one of likelihood 0 (log-likelihood -inf) gets an infinite factor, and
    gradients of NaN or infinity."""
    for p in range(uint64(p0), uint64(p1)):
        f = buf[ROW_FRAC, p]
        buf[ROW_FRAC, p] = weights[p] * f / buf[ROW_DEN, p] if f > 0.0 else 0.0


@njit(fastmath=_FM)
def _product(buf, dr, nrows, n, xr, yr, zr, p0, p1):
    """Rows dr..dr+nrows = the product of the first n (1 to 3) of the row ranges starting
    at xr, yr, zr, over patterns p0..p1."""
    for i in range(nrows):
        if n == 1:
            for p in range(uint64(p0), uint64(p1)):
                buf[dr + i, p] = buf[xr + i, p]
        elif n == 2:
            for p in range(uint64(p0), uint64(p1)):
                buf[dr + i, p] = buf[xr + i, p] * buf[yr + i, p]
        else:
            for p in range(uint64(p0), uint64(p1)):
                buf[dr + i, p] = buf[xr + i, p] * buf[yr + i, p] * buf[zr + i, p]


# The traversal (:func:`_traverse` and the dispatchers it inlines) calls the variants of
# one model family through these names.  This file is loaded twice more as the modules
# ``<this module>_f81`` and ``<this module>_general`` (see
# :mod:`phylo.likelihood._families`), each with its family's variants bound here: each
# family's traversal compiles, and is cached, on its own, so a session pays for compiling
# only the family it uses.
_GENERAL = _FAMILY == "general"
if _GENERAL:
    _EP, _U_II, _U_TI, _D_II, _D_TI, _D_TT = (_edge_partials_gen, _up2_gen_ii, _up2_gen_ti,
                                              _down2_gen_ii, _down2_gen_ti, _down2_gen_tt)
    _UC = _up2c_gen
else:
    # (_D_TT is not called in this family: two tips go through _D_TI)
    _EP, _U_II, _U_TI, _D_II, _D_TI, _D_TT = (_edge_partials_f81, _up2_f81_ii, _up2_f81_ti,
                                              _down2_f81_ii, _down2_f81_ti, _down2_f81_ti)
    _UC = _up2c_f81


@njit
def _child(j, idx, topo, tips, slot, buf, t, Pm, mv, p0, p1):
    """First row of the edge partials (4 K rows) of child j of traversal row idx.

    An internal child's are stored in its slot; a tip's are computed into rows
    :data:`ROW_TIP` + 4 K j.
    """
    n_taxa = tips.shape[0] // 4
    K = Pm.shape[1]
    c = topo[idx, 2 + j]
    if c >= n_taxa:
        return ROW_TIP + 24 * K + 4 * K * slot[c - n_taxa]
    _edge_partials(mv, t, Pm, topo[idx, 5 + j], tips, 4 * c, 0, buf, ROW_TIP + 4 * K * j,
                   p0, p1)
    return ROW_TIP + 4 * K * j


@njit
def _child_up(j, idx, topo, tips, slot, buf, t, Pm, mv, p0, p1, compress, ncols, cmap):
    """:func:`_child` in the post-order, where a compressed child's edge partials are
    expanded into rows :data:`ROW_TIP` + 4 K j."""
    n_taxa = tips.shape[0] // 4
    c = topo[idx, 2 + j]
    if compress and c >= n_taxa and ncols[c - n_taxa, 0] > 0:
        KR = 4 * Pm.shape[1]
        _expand(buf, ROW_TIP + 24 * Pm.shape[1] + KR * slot[c - n_taxa], KR, ROW_TIP + KR * j,
                cmap, ncols[topo[idx, 0] - n_taxa, 1 + j], p0, p1)
        return ROW_TIP + KR * j
    return _child(j, idx, topo, tips, slot, buf, t, Pm, mv, p0, p1)


@njit(inline="always")
def _pair(mv, t, Pm, buf, tips, slot, pslot, grad, qr, c0, e0, c1, e1, part0, pre0, p0, p1):
    """The pre-order step for children c0, c1 (edges e0, e1) below a pre-order partial at
    rows qr..: gradient terms added to ``grad``, the children's pre-order partials stored.
    ``c1 = -1`` stands for a sibling whose partials are all one (a node with one child, or
    the last child of a node with three)."""
    n_taxa = tips.shape[0] // 4
    K = Pm.shape[1]
    KR = 4 * K
    t0 = c0 < n_taxa
    t1 = 0 <= c1 < n_taxa
    dummy = ROW_TIP + KR                       # scratch: written, never read
    if c1 < 0:
        yr = ROW_TIP + 16 * K                  # the rows of ones
        vy = dummy
    else:
        yr = 4 * c1 if t1 else part0 + slot[c1 - n_taxa] * KR
        vy = dummy if t1 else pre0 + pslot[c1 - n_taxa] * KR
    xr = 4 * c0 if t0 else part0 + slot[c0 - n_taxa] * KR
    vx = dummy if t0 else pre0 + pslot[c0 - n_taxa] * KR
    g0, g1 = _down2(mv, t, Pm, buf, tips, qr, t0, xr, e0, vx, t1, yr, e1, vy, p0, p1)
    grad[e0] += g0
    if c1 >= 0:
        grad[e1] += g1


def _traverse(tips, weights, inv, mv, topo, slot, pslot, ncols, cmap, T, lo, hi, Pm, buf, site_ll,
              grads, out, bounds, compute_P, want_grad):
    """Log-likelihoods ``out[b]`` of the branch-length vectors ``t = T[b]``, rows ``lo..hi``
    of a batch, and with ``want_grad`` their gradients ``grads[b]``.  The one compiled
    entry point of a model family: batches are evaluated in one call (a call from Python
    costs microseconds), one evaluation is a batch of one (:func:`_one_by_rows`).

    Every per-pattern array lives in rows of one buffer ``buf`` (see :func:`buffer_rows`),
    so the kernels take row numbers, never array views: the work rows, then one slot of
    ``4 K`` rows per internal node (``slot[v - n_taxa]``; for the likelihood alone nodes
    whose partials are never alive at the same time share a slot), then, with
    ``want_grad`` (then every node has its own slot), slots of the pre-order partials
    (``pslot[v - n_taxa]``, shared the same way).  A slot holds the edge partial
    :math:`P_e L_v` above its node (the root's: the node partial).  ``tips`` holds the tip
    partials, rows ``4 c .. 4 c + 3`` for taxon ``c``.

    Site repeats (likelihood alone, one pattern block): an internal node ``v`` with
    ``ncols[v - n_taxa, 0] > 0`` is compressed, its partials computed for that many classes
    of patterns (see :func:`_up2c`); ``cmap`` holds the columns to read, at the offsets in
    the rest of the row (see :func:`phylo.likelihood.tree_likelihood.site_repeat_plan`).
    Pass an empty ``ncols`` (shape (0, 5)) to compute every node for every pattern.

    The traversals run once per pattern block ``bounds[b]..bounds[b+1]`` (cache blocking);
    with ``compute_P`` False the transition matrices ``Pm`` are taken as already set.
    ``site_ll`` receives the last vector's per-pattern log-likelihoods and ``grads[b]``
    (when wanted) :math:`\\partial \\log L / \\partial t_e` summed over the blocks.  The GIL
    is released, so threads may evaluate disjoint blocks of one problem, or separate
    buffers, at once.
    """
    n_taxa = tips.shape[0] // 4
    K = Pm.shape[1]
    KR = 4 * K
    part0 = ROW_TIP + 24 * K             # the partials follow the work rows
    tmp = ROW_TIP + 12 * K
    n_int = topo.shape[0]
    root = topo[n_int - 1, 0]
    pre0 = part0 + n_int * KR        # with want_grad every node has a slot
    # flags as variables, not literals: one compiled signature of _rescale
    track = bounds.shape[0] > 0
    no_max = not track
    # with want_grad, the last n_int rows receive the factors the post-order applies to a
    # node's patterns, when it scales any (scaled[v - n_taxa])
    frow0 = buf.shape[0] - n_int
    scaled = np.zeros(n_int, dtype=np.bool_)
    # the edge above every node of this traversal
    up = np.empty(n_taxa + n_int, dtype=np.int64)
    for v in range(n_taxa + n_int):
        up[v] = -1
    for idx in range(n_int):
        for j in range(topo[idx, 1]):
            up[topo[idx, 2 + j]] = topo[idx, 5 + j]
    P = site_ll.shape[0]
    compress = (ncols.shape[0] > 0 and not want_grad and bounds.shape[0] == 2
                and bounds[0] == 0 and bounds[1] == P)
    none = np.zeros(0)
    csr = _mxcsr_or(_FTZ_DAZ)          # subnormals as zero, the caller's flags restored below
    for row in range(lo, hi):
        t = T[row]
        grad = grads[row] if want_grad else none
        if _GENERAL:                # F81-type kernels use closed forms only
            if compute_P:
                transition_matrices(mv, t, Pm)
        if want_grad:
            for e in range(grad.shape[0]):
                grad[e] = 0.0
        total = 0.0
        for b in range(bounds.shape[0] - 1):
            p0 = bounds[b]
            p1 = bounds[b + 1]
            # ---- post-order (Felsenstein pruning) into edge partials, rescaled per pattern
            for p in range(uint64(p0), uint64(p1)):
                buf[ROW_LOGSCALE, p] = 0.0
            scaled[:] = False
            for idx in range(n_int):
                v = topo[idx, 0]
                nk = topo[idx, 1]
                nr = part0 + slot[v - n_taxa] * KR
                binary = nk == 2 and v != root
                if binary:
                    # children's edge partials: a tip's computed on the fly, an internal
                    # node's read from its slot
                    c0 = topo[idx, 2]
                    c1 = topo[idx, 3]
                    t0 = c0 < n_taxa
                    t1 = c1 < n_taxa
                    x0 = 4 * c0 if t0 else part0 + slot[c0 - n_taxa] * KR
                    x1 = 4 * c1 if t1 else part0 + slot[c1 - n_taxa] * KR
                    if compress:
                        U = ncols[v - n_taxa, 0]
                        if U > 0:
                            low = _up2c(mv, t, Pm, up[v], buf, tips, t0, x0, topo[idx, 5], t1, x1,
                                        topo[idx, 6], nr, U, cmap, ncols[v - n_taxa, 1],
                                        ncols[v - n_taxa, 2])
                            if low > 0:
                                _rescale_c(buf, nr, KR, U, cmap, ncols[v - n_taxa, 4], p0, p1,
                                           track)
                            continue
                        # compressed children are expanded into work rows first
                        if not t0 and ncols[c0 - n_taxa, 0] > 0:
                            _expand(buf, x0, KR, ROW_TIP + KR, cmap, ncols[v - n_taxa, 1], p0, p1)
                            x0 = ROW_TIP + KR
                        if not t1 and ncols[c1 - n_taxa, 0] > 0:
                            _expand(buf, x1, KR, ROW_TIP + 2 * KR, cmap, ncols[v - n_taxa, 2], p0,
                                    p1)
                            x1 = ROW_TIP + 2 * KR
                    low = _up2(mv, t, Pm, up[v], buf, tips, t0, x0, topo[idx, 5], t1, x1,
                               topo[idx, 6], nr, p0, p1)
                    if low > 0:
                        if _rescale(buf, nr, KR, np.int64(ROW_MAX), p0, p1, track, no_max,
                                    frow0 + v - n_taxa if want_grad else np.int64(-1)):
                            scaled[v - n_taxa] = True
                    continue
                r0 = _child_up(np.int64(0), idx, topo, tips, slot, buf, t, Pm, mv, p0, p1,
                               compress, ncols, cmap)
                r1 = r0
                r2 = r0
                if nk > 1:
                    r1 = _child_up(np.int64(1), idx, topo, tips, slot, buf, t, Pm, mv, p0, p1,
                                   compress, ncols, cmap)
                if nk > 2:
                    r2 = _child_up(np.int64(2), idx, topo, tips, slot, buf, t, Pm, mv, p0, p1,
                                   compress, ncols, cmap)
                if v == root:
                    _product(buf, nr, KR, nk, r0, r1, r2, p0, p1)
                else:   # 1 or 3 children below a non-root node (rare)
                    _product(buf, tmp, KR, nk, r0, r1, r2, p0, p1)
                    _edge_partials(mv, t, Pm, up[v], buf, tmp, 4, buf, nr, p0, p1)
                if _rescale(buf, nr, KR, np.int64(ROW_MAX), p0, p1, track, no_max,
                            frow0 + v - n_taxa if want_grad else np.int64(-1)):
                    scaled[v - n_taxa] = True
            total += _root(mv, weights, inv, buf, part0 + slot[root - n_taxa] * KR, K, site_ll,
                           p0, p1)
            if not want_grad:
                continue
            # ---- pre-order partials and the gradient (Ji et al. 2020)
            _pattern_factors(weights, buf, p0, p1)
            for r in range(KR):
                f = mv[_PI + r % 4]
                if _GENERAL:
                    # the general loops take category k's weight from its pre-order partials
                    f *= mv[_RATES + K + r // 4]
                for p in range(uint64(p0), uint64(p1)):
                    buf[pre0 + pslot[root - n_taxa] * KR + r, p] = f * buf[ROW_FRAC, p]
            for idx in range(n_int - 1, -1, -1):
                a = topo[idx, 0]
                nk = topo[idx, 1]
                qa = pre0 + pslot[a - n_taxa] * KR
                if scaled[a - n_taxa]:
                    # the factors this node's edge partials were scaled by, so that every
                    # step's denominator stays the pattern's weight (_pattern_factors)
                    fr = frow0 + a - n_taxa
                    for r in range(KR):
                        for p in range(uint64(p0), uint64(p1)):
                            buf[qa + r, p] *= buf[fr, p]
                # one or two calls of the pair step (one call site: it is inlined)
                for j in range(1 if nk < 3 else 2):
                    q = qa
                    c0 = topo[idx, 2]
                    e0 = topo[idx, 5]
                    c1 = np.int64(-1)           # a node with one child: the sibling is all ones
                    e1 = e0
                    if nk >= 2 and j == 0:
                        c1 = topo[idx, 3]
                        e1 = topo[idx, 6]
                    if nk == 3:
                        q = tmp
                        if j == 0:
                            # children 0 and 1, the third child's edge partials folded into q
                            r2 = _child(np.int64(2), idx, topo, tips, slot, buf, t, Pm, mv, p0,
                                        p1)
                            _product(buf, tmp, KR, np.int64(2), qa, r2, r2, p0, p1)
                        else:
                            # child 2, with those of children 0 and 1 folded into q
                            r0 = _child(np.int64(0), idx, topo, tips, slot, buf, t, Pm, mv, p0,
                                        p1)
                            r1 = _child(np.int64(1), idx, topo, tips, slot, buf, t, Pm, mv, p0,
                                        p1)
                            _product(buf, tmp, KR, np.int64(3), qa, r0, r1, p0, p1)
                            c0 = topo[idx, 4]
                            e0 = topo[idx, 7]
                            e1 = e0
                    _pair(mv, t, Pm, buf, tips, slot, pslot, grad, q, c0, e0, c1, e1,
                          part0, pre0, p0, p1)
        out[row] = total
    _mxcsr_set(csr)


_traverse = cached_kernel(_traverse, _FAMILY)



# -- sums of state pairs over every edge: the gradient in the model's parameters -------------
#
# The branch gradient above sums its terms over rate categories as it goes, and keeps the
# pre-order partials in shared slots.  The derivative with respect to a parameter of Q (an
# exchangeability, a base frequency) or to a category's rate needs, per edge e (from a to
# v) and category k, the 4 x 4 sums of state pairs
#
#     N[e, k, i, j] = sum_p  c_p  u_{e,k,p}(i)  L_{v,k,p}(j),
#
# where u is what the rest of the tree contributes above the edge (the parent's pre-order
# partial times the siblings' edge partials) and L the node partial below it, with the
# factor c_p = w_p f_p / L_p of the pre-order pass above: then d log L / d theta =
# sum_{e,k} sum_ij N[e,k,i,j] dP_{e,k}[i,j] / d theta for anything that moves the
# transition matrices (see :mod:`phylo.likelihood.parameter_gradient`).  Rescaling is
# handled as in the branch gradient: a node's pre-order partial is multiplied by the
# factors its own partials were scaled by, so that u^T P L = w_p f_p at every edge.
#
# Layout of ``buf`` (rows, patterns): the work rows CM_*, then per internal node v
# (i = v - n_taxa) its node partial L (rows nodes_l + 4K i), its edge partial P L (rows
# nodes_m + 4K i), its pre-order partial (nodes_q + 4K i) and one row of its scaling
# factors (frow0 + i), as :func:`state_pair_sums` lays them out.  As in the other kernels,
# each hot loop is one function over patterns for one category (binary nodes: one fused
# loop for the post-order step, one for the pre-order step and one per child for its
# sums); nodes with one or three children (the root) go through simpler loops.
CM_MAX, CM_LOGSCALE, CM_FACTOR, CM_DEN, CM_FRAC = 0, 1, 2, 3, 4
CM_TMP = 5          # then 3 groups of 4K scratch rows


def count_rows(n_internal, n_categories):
    """Rows of the buffer of :func:`state_pair_sums`."""
    K = n_categories
    return CM_TMP + 12 * K + n_internal * (12 * K + 1)


@njit(fastmath=_FM)
def _cm_apply(Pm, e, k, src, s0, dst, d0, p0, p1, transpose):
    """dst[d0 + i] = sum_j P[e, k, i, j] src[s0 + j] (``transpose``: P^T) over patterns."""
    a00 = Pm[e, k, 0, 0]; a01 = Pm[e, k, 0, 1]; a02 = Pm[e, k, 0, 2]; a03 = Pm[e, k, 0, 3]
    a10 = Pm[e, k, 1, 0]; a11 = Pm[e, k, 1, 1]; a12 = Pm[e, k, 1, 2]; a13 = Pm[e, k, 1, 3]
    a20 = Pm[e, k, 2, 0]; a21 = Pm[e, k, 2, 1]; a22 = Pm[e, k, 2, 2]; a23 = Pm[e, k, 2, 3]
    a30 = Pm[e, k, 3, 0]; a31 = Pm[e, k, 3, 1]; a32 = Pm[e, k, 3, 2]; a33 = Pm[e, k, 3, 3]
    if transpose:
        a01, a10 = a10, a01
        a02, a20 = a20, a02
        a03, a30 = a30, a03
        a12, a21 = a21, a12
        a13, a31 = a31, a13
        a23, a32 = a32, a23
    for p in range(uint64(p0), uint64(p1)):
        x0 = src[s0, p]; x1 = src[s0 + 1, p]; x2 = src[s0 + 2, p]; x3 = src[s0 + 3, p]
        dst[d0, p] = a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
        dst[d0 + 1, p] = a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
        dst[d0 + 2, p] = a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
        dst[d0 + 3, p] = a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3


@njit(fastmath=_FM)
def _cm_product(buf, k, xr, yr, lr, p0, p1):
    """A binary node's partial for category k: rows lr.. = x * y (children's edge partials
    at rows xr.., yr..), with the running maximum over categories in row CM_MAX; returns
    how many patterns are below the threshold.  (P L is a loop of its own: one that also
    wrote it would write eight rows, and LLVM would not vectorise it behind as many
    overlap checks.)"""
    c = 0
    more = k > 0
    for p in range(uint64(p0), uint64(p1)):
        z0 = buf[xr, p] * buf[yr, p]; z1 = buf[xr + 1, p] * buf[yr + 1, p]
        z2 = buf[xr + 2, p] * buf[yr + 2, p]; z3 = buf[xr + 3, p] * buf[yr + 3, p]
        buf[lr, p] = z0; buf[lr + 1, p] = z1; buf[lr + 2, p] = z2; buf[lr + 3, p] = z3
        m = z0 if z0 > z1 else z1
        m = z2 if z2 > m else m
        m = z3 if z3 > m else m
        o = buf[CM_MAX, p]
        o = o if more else 0.0
        m = o if o > m else m
        buf[CM_MAX, p] = m
        c += m < SCALE_THRESHOLD
    return c


@njit(fastmath=_FM)
def _cm_pre(Pm, e, k, buf, qr, sr, dr, p0, p1):
    """A child's pre-order partial for category k: rows dr.. = P_e^T (q * s), with the
    parent's pre-order partial q (rows qr..) and the product s of the siblings' edge
    partials (rows sr..)."""
    a00 = Pm[e, k, 0, 0]; a01 = Pm[e, k, 0, 1]; a02 = Pm[e, k, 0, 2]; a03 = Pm[e, k, 0, 3]
    a10 = Pm[e, k, 1, 0]; a11 = Pm[e, k, 1, 1]; a12 = Pm[e, k, 1, 2]; a13 = Pm[e, k, 1, 3]
    a20 = Pm[e, k, 2, 0]; a21 = Pm[e, k, 2, 1]; a22 = Pm[e, k, 2, 2]; a23 = Pm[e, k, 2, 3]
    a30 = Pm[e, k, 3, 0]; a31 = Pm[e, k, 3, 1]; a32 = Pm[e, k, 3, 2]; a33 = Pm[e, k, 3, 3]
    for p in range(uint64(p0), uint64(p1)):
        u0 = buf[qr, p] * buf[sr, p]; u1 = buf[qr + 1, p] * buf[sr + 1, p]
        u2 = buf[qr + 2, p] * buf[sr + 2, p]; u3 = buf[qr + 3, p] * buf[sr + 3, p]
        buf[dr, p] = a00 * u0 + a10 * u1 + a20 * u2 + a30 * u3
        buf[dr + 1, p] = a01 * u0 + a11 * u1 + a21 * u2 + a31 * u3
        buf[dr + 2, p] = a02 * u0 + a12 * u1 + a22 * u2 + a32 * u3
        buf[dr + 3, p] = a03 * u0 + a13 * u1 + a23 * u2 + a33 * u3


@njit(fastmath=_FMR)
def _cm_pairs(buf, qr, sr, l, lr, p0, p1, out, e, k):
    """out[e, k, i, j] += sum_p u_i l[lr + j, p] with u = q * s (rows qr.., sr.. of
    ``buf``): one loop that only reads, with sixteen sums."""
    s00 = 0.0; s01 = 0.0; s02 = 0.0; s03 = 0.0; s10 = 0.0; s11 = 0.0; s12 = 0.0; s13 = 0.0
    s20 = 0.0; s21 = 0.0; s22 = 0.0; s23 = 0.0; s30 = 0.0; s31 = 0.0; s32 = 0.0; s33 = 0.0
    for p in range(uint64(p0), uint64(p1)):
        u0 = buf[qr, p] * buf[sr, p]; u1 = buf[qr + 1, p] * buf[sr + 1, p]
        u2 = buf[qr + 2, p] * buf[sr + 2, p]; u3 = buf[qr + 3, p] * buf[sr + 3, p]
        l0 = l[lr, p]; l1 = l[lr + 1, p]; l2 = l[lr + 2, p]; l3 = l[lr + 3, p]
        s00 += u0 * l0; s01 += u0 * l1; s02 += u0 * l2; s03 += u0 * l3
        s10 += u1 * l0; s11 += u1 * l1; s12 += u1 * l2; s13 += u1 * l3
        s20 += u2 * l0; s21 += u2 * l1; s22 += u2 * l2; s23 += u2 * l3
        s30 += u3 * l0; s31 += u3 * l1; s32 += u3 * l2; s33 += u3 * l3
    out[e, k, 0, 0] += s00; out[e, k, 0, 1] += s01; out[e, k, 0, 2] += s02
    out[e, k, 0, 3] += s03; out[e, k, 1, 0] += s10; out[e, k, 1, 1] += s11
    out[e, k, 1, 2] += s12; out[e, k, 1, 3] += s13; out[e, k, 2, 0] += s20
    out[e, k, 2, 1] += s21; out[e, k, 2, 2] += s22; out[e, k, 2, 3] += s23
    out[e, k, 3, 0] += s30; out[e, k, 3, 1] += s31; out[e, k, 3, 2] += s32
    out[e, k, 3, 3] += s33


@njit(fastmath=_FM)
def _cm_times(buf, dr, sr, nrows, p0, p1):
    """Rows dr.. *= rows sr.. (nrows rows) over patterns p0..p1."""
    for r in range(nrows):
        for p in range(uint64(p0), uint64(p1)):
            buf[dr + r, p] *= buf[sr + r, p]


@njit(fastmath=_FM)
def _cm_copy(buf, dr, sr, nrows, p0, p1):
    """Rows dr.. = rows sr.. (nrows rows) over patterns p0..p1."""
    for r in range(nrows):
        for p in range(uint64(p0), uint64(p1)):
            buf[dr + r, p] = buf[sr + r, p]


@njit
def _cm_edge(j, idx, topo, tips, buf, Pm, tmp, nodes_m, p0, p1):
    """First row of the edge partials (4 K rows) of child j of traversal row idx: an
    internal child's are stored (``nodes_m``), a tip's computed into rows ``tmp``."""
    n_taxa = tips.shape[0] // 4
    K = Pm.shape[1]
    c = topo[idx, 2 + j]
    if c >= n_taxa:
        return nodes_m + 4 * K * (c - n_taxa)
    e = topo[idx, 5 + j]
    for k in range(K):
        _cm_apply(Pm, e, k, tips, 4 * c, buf, tmp + 4 * k, p0, p1, False)
    return tmp


@njit(fastmath=_FM)
def _cm_scale(buf, r0, nrows, frow, p0, p1):
    """Rows r0.. (nrows rows) times row ``frow`` (a node's scaling factors)."""
    for r in range(nrows):
        for p in range(uint64(p0), uint64(p1)):
            buf[r0 + r, p] *= buf[frow, p]


@njit
def _cm_child(c, e, tips, buf, Pm, qa, sr, nodes_l, nodes_q, pairs, p0, p1):
    """The pre-order step down to child c (edge e): its sums of state pairs from the
    parent's pre-order partial (rows qa..) and the product of its siblings' edge partials
    (rows sr..), and an internal child's pre-order partial."""
    n_taxa = tips.shape[0] // 4
    K = Pm.shape[1]
    KR = 4 * K
    for k in range(K):
        o = 4 * k
        if c < n_taxa:
            _cm_pairs(buf, qa + o, sr + o, tips, 4 * c, p0, p1, pairs, e, k)
        else:
            _cm_pairs(buf, qa + o, sr + o, buf, nodes_l + KR * (c - n_taxa) + o, p0, p1,
                      pairs, e, k)
            _cm_pre(Pm, e, k, buf, qa + o, sr + o, nodes_q + KR * (c - n_taxa) + o, p0, p1)


def state_pair_sums(tips, weights, inv, mv, topo, t, Pm, buf, site_ll, pairs, root_sums, bounds):
    """The log-likelihood of branch lengths ``t``, with the sums of state pairs ``pairs``
    (E, K, 4, 4) of every edge and category and ``root_sums`` (K, 4), sum_p c_p L_root
    (see the comment above), over the pattern blocks ``bounds``.  ``site_ll`` receives the
    per-pattern log-likelihoods and row :data:`CM_FRAC` of ``buf`` the variable sites'
    share f_p of each.  ``mv``, ``tips``, ``weights``, ``inv`` and ``topo`` as for
    :func:`_traverse`; ``buf`` has :func:`count_rows` rows."""
    n_taxa = tips.shape[0] // 4
    K = Pm.shape[1]
    KR = 4 * K
    n_int = topo.shape[0]
    root = topo[n_int - 1, 0]
    tmp_a = CM_TMP
    tmp_b = CM_TMP + KR
    tmp_c = CM_TMP + 2 * KR
    nodes_l = CM_TMP + 3 * KR
    nodes_m = nodes_l + KR * n_int
    nodes_q = nodes_m + KR * n_int
    frow0 = nodes_q + KR * n_int
    pinv = mv[_PINV]
    track = bounds.shape[0] > 0     # flags as variables: one compiled signature of _rescale
    no_max = not track
    have_max = track
    scaled = np.zeros(n_int, dtype=np.bool_)
    up = np.empty(n_taxa + n_int, dtype=np.int64)
    for v in range(n_taxa + n_int):
        up[v] = -1
    for idx in range(n_int):
        for j in range(topo[idx, 1]):
            up[topo[idx, 2 + j]] = topo[idx, 5 + j]
    csr = _mxcsr_or(_FTZ_DAZ)
    transition_matrices(mv, t, Pm)
    pairs[:] = 0.0
    root_sums[:] = 0.0
    total = 0.0
    for b in range(bounds.shape[0] - 1):
        p0 = bounds[b]
        p1 = bounds[b + 1]
        for p in range(uint64(p0), uint64(p1)):
            buf[CM_LOGSCALE, p] = 0.0
        scaled[:] = False
        # ---- post-order: node partials L and edge partials P L
        for idx in range(n_int):
            v = topo[idx, 0]
            nk = topo[idx, 1]
            i = v - n_taxa
            lr = nodes_l + KR * i
            if nk == 2:
                xr = _cm_edge(np.int64(0), idx, topo, tips, buf, Pm, tmp_a, nodes_m, p0, p1)
                yr = _cm_edge(np.int64(1), idx, topo, tips, buf, Pm, tmp_b, nodes_m, p0, p1)
                low = 0
                for k in range(K):
                    low = _cm_product(buf, k, xr + 4 * k, yr + 4 * k, lr + 4 * k, p0, p1)
                if low > 0:
                    if _rescale(buf, lr, KR, np.int64(CM_MAX), p0, p1, track, have_max,
                                frow0 + i):
                        scaled[i] = True
            else:
                for j in range(nk):
                    r = _cm_edge(j, idx, topo, tips, buf, Pm, tmp_a, nodes_m, p0, p1)
                    if j == 0:
                        _cm_copy(buf, lr, r, KR, p0, p1)
                    else:
                        _cm_times(buf, lr, r, KR, p0, p1)
                if _rescale(buf, lr, KR, np.int64(CM_MAX), p0, p1, track, no_max, frow0 + i):
                    scaled[i] = True
            if v != root:
                for k in range(K):
                    _cm_apply(Pm, up[v], k, buf, lr + 4 * k, buf, nodes_m + KR * i + 4 * k, p0,
                              p1, False)
        # ---- the root: log-likelihoods, shares and the pattern factors
        rr = nodes_l + KR * (root - n_taxa)
        pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
        for p in range(uint64(p0), uint64(p1)):
            buf[CM_DEN, p] = 0.0
        for k in range(K):
            w = mv[_RATES + K + k]
            r = rr + 4 * k
            for p in range(uint64(p0), uint64(p1)):
                buf[CM_DEN, p] += w * (pi0 * buf[r, p] + pi1 * buf[r + 1, p]
                                       + pi2 * buf[r + 2, p] + pi3 * buf[r + 3, p])
        log_array(buf[CM_DEN], site_ll, p0, p1)
        for p in range(uint64(p0), uint64(p1)):
            site_ll[p] += buf[CM_LOGSCALE, p] * LN2
            buf[CM_FRAC, p] = 1.0
        if pinv > 0.0:
            l1p = math.log1p(-pinv)
            for p in range(uint64(p0), uint64(p1)):
                a = l1p + site_ll[p]
                ip = pinv * inv[p]
                if ip > 0.0:
                    bb = math.log(ip)
                    m = max(a, bb)
                    ll = m + math.log(math.exp(a - m) + math.exp(bb - m))
                    buf[CM_FRAC, p] = math.exp(a - ll)
                else:
                    ll = a
                site_ll[p] = ll
        for p in range(uint64(p0), uint64(p1)):
            total += weights[p] * site_ll[p]
            f = buf[CM_FRAC, p]
            d = buf[CM_DEN, p]
            # a pattern of likelihood 0 (log-likelihood -inf) contributes nothing here
            buf[CM_FACTOR, p] = weights[p] * f / d if f > 0.0 and d > 0.0 else 0.0
        for k in range(K):
            r = rr + 4 * k
            for s in range(4):
                acc = 0.0
                for p in range(uint64(p0), uint64(p1)):
                    acc += buf[CM_FACTOR, p] * buf[r + s, p]
                root_sums[k, s] += acc
        # ---- pre-order partials and the sums of state pairs
        qr = nodes_q + KR * (root - n_taxa)
        for k in range(K):
            w = mv[_RATES + K + k]
            for s in range(4):
                f = w * mv[_PI + s]
                for p in range(uint64(p0), uint64(p1)):
                    buf[qr + 4 * k + s, p] = f * buf[CM_FACTOR, p]
        for idx in range(n_int - 1, -1, -1):
            a = topo[idx, 0]
            nk = topo[idx, 1]
            qa = nodes_q + KR * (a - n_taxa)
            if scaled[a - n_taxa]:
                _cm_scale(buf, qa, KR, frow0 + a - n_taxa, p0, p1)
            if nk == 2:
                xr = _cm_edge(np.int64(0), idx, topo, tips, buf, Pm, tmp_a, nodes_m, p0, p1)
                yr = _cm_edge(np.int64(1), idx, topo, tips, buf, Pm, tmp_b, nodes_m, p0, p1)
                _cm_child(topo[idx, 2], topo[idx, 5], tips, buf, Pm, qa, yr, nodes_l, nodes_q,
                          pairs, p0, p1)
                _cm_child(topo[idx, 3], topo[idx, 6], tips, buf, Pm, qa, xr, nodes_l, nodes_q,
                          pairs, p0, p1)
                continue
            for j in range(nk):
                # the product of the other children's edge partials, in rows tmp_c (all
                # ones for a single child)
                first = True
                for i in range(nk):
                    if i != j:
                        r = _cm_edge(i, idx, topo, tips, buf, Pm, tmp_a, nodes_m, p0, p1)
                        if first:
                            _cm_copy(buf, tmp_c, r, KR, p0, p1)
                            first = False
                        else:
                            _cm_times(buf, tmp_c, r, KR, p0, p1)
                if first:
                    for r in range(KR):
                        for p in range(uint64(p0), uint64(p1)):
                            buf[tmp_c + r, p] = 1.0
                _cm_child(topo[idx, 2 + j], topo[idx, 5 + j], tips, buf, Pm, qa, tmp_c, nodes_l,
                          nodes_q, pairs, p0, p1)
    _mxcsr_set(csr)
    return total


state_pair_sums = cached_kernel(state_pair_sums, _FAMILY)
