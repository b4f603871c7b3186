"""numba kernels of the tree likelihood: pruning, rescaling, branch gradients.

Plain functions over arrays (float64 values, int64 indices); the typed, documented
interface is :class:`phylo.likelihood.tree_likelihood.TreeLikelihood`.  There is one
compiled entry point, :func:`evaluate` (likelihood, or likelihood and gradient), plus
:func:`transition_matrices`; both release the GIL, so batches and pattern blocks run on
ordinary threads.  Keeping the call graph flat and the signatures few keeps the first
compilation short (numba re-optimises every callee inside each caller).

Layout (patterns innermost, so that the loops over patterns vectorise):

``tips``    (n_taxa, 4, P)          tip partials (indicators of the allowed states)
``part``    (n_internal, K, 4, P)   post-order partials of internal node ``v`` at ``v - n_taxa``
``pre``     (n_internal, K, 4, P)   pre-order partials of internal nodes
``Pm``      (E, K, 4, 4)            transition matrices of each edge and rate category
``topo``    (n_internal, 8) int64   one row per internal node in post-order (root last):
                                    node, n_children, child0..2, edge0..2 (-1 padded)
``mv``      float64 vector          the model: eigenvalues (4), V (16), V^-1 (16), Q (16),
                                    frequencies (4), pinv, K, rates (K), weights (K),
                                    F81 flag, mu (see :func:`pack_model`)

Post-order (Felsenstein 1981): :math:`L_v(s) = \\prod_{c} \\sum_j P_{e_c}(s, j) L_c(j)`.
Rescaling: after each internal node, a pattern whose largest entry (over categories and
states) is below :data:`SCALE_THRESHOLD` is multiplied by a power of two, which is exact in
floating point, and the exponent is added to the pattern's log scaler.

Gradient (Ji et al. 2020): with pre-order partials :math:`q_a` (probability of the data
outside the subtree of :math:`a` jointly with the state at :math:`a`) and, for the edge
:math:`e` from :math:`a` to child :math:`v`, :math:`u_e = q_a \\odot \\prod_{w \\ne v}
P_{e_w} L_w`, the likelihood of every pattern is :math:`L = \\sum_k \\omega_k
u_{e,k}^T P_{e,k} L_{v,k}`, so

.. math:: \\frac{\\partial \\log L}{\\partial t_e} =
   \\frac{\\sum_k \\omega_k \\rho_k\\, u_{e,k}^T Q P_{e,k} L_{v,k}}
        {\\sum_k \\omega_k\\, u_{e,k}^T P_{e,k} L_{v,k}},
   \\qquad q_v = P_e^T u_e .

The ratio does not depend on how :math:`u` and :math:`L` are scaled, so pre-order partials
are rescaled freely per pattern without bookkeeping.  The edge partials
:math:`P_{e_w} L_w` are recomputed during the pre-order pass instead of being stored,
which costs a third more arithmetic but much less memory traffic.

References
----------
Felsenstein J. 1981. J Mol Evol 17:368-376.
Ji X, Zhang Z, Holbrook A, Nishimura A, Baele G, Rambaut A, Lemey P, Suchard MA. 2020.
Gradients do grow on trees: a linear-time O(N)-dimensional gradient for statistical
phylogenetics. Mol Biol Evol 37:3047-3060.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

#: Rows of the per-pattern work array of :func:`evaluate`.
WORK_ROWS = 32
#: Rescale a pattern when its largest partial falls below this value.
SCALE_THRESHOLD = 2.0 ** -100
LN2 = math.log(2.0)

# offsets in the model vector
_LAM, _V, _VI, _Q, _PI, _PINV, _K, _RATES = 0, 4, 20, 36, 52, 56, 57, 58


def pack_model(lam, v, vinv, q, freqs, pinv, rates, weights) -> np.ndarray:
    """The model vector read by the kernels (see the module docstring).

    Two entries follow the category weights: 1.0 when Q is of the F81 form
    :math:`Q_{ij} = \\mu \\pi_j` (JC69, F81: all exchangeabilities equal), and that
    :math:`\\mu`; the gradient then skips a 4 x 4 product.
    """
    k = len(rates)
    q = np.asarray(q, dtype=np.float64)
    freqs = np.asarray(freqs, dtype=np.float64)
    mu = q[0, 1] / freqs[1]
    off = ~np.eye(4, dtype=bool)
    f81 = bool(np.allclose(q[off], (mu * np.broadcast_to(freqs, (4, 4)))[off], rtol=1e-13,
                           atol=0.0))
    return np.concatenate([lam, np.ravel(v), np.ravel(vinv), np.ravel(q), freqs,
                           [pinv, float(k)], rates, weights,
                           [1.0 if f81 else 0.0, mu]]).astype(np.float64)


@njit(cache=True, nogil=True)
def transition_matrices(mv, t, Pm):
    """Pm[e, k] = V diag(exp(lambda rho_k t_e)) V^-1, negative round-off clamped to 0."""
    K = Pm.shape[1]
    ex = np.empty(4)
    for e in range(Pm.shape[0]):
        for k in range(K):
            r = mv[_RATES + k] * t[e]
            for m in range(4):
                ex[m] = math.exp(mv[_LAM + m] * r)
            for i in range(4):
                for j in range(4):
                    s = 0.0
                    for m in range(4):
                        s += mv[_V + 4 * i + m] * ex[m] * mv[_VI + 4 * m + j]
                    Pm[e, k, i, j] = s if s > 0.0 else 0.0


@njit
def _pp2(A, s, B, r, d, mx, p0, p1):
    """d = (A s) * (B r) over patterns p0..p1; mx[p] = max(mx[p], max_i d[i, p])."""
    a00 = A[0, 0]; a01 = A[0, 1]; a02 = A[0, 2]; a03 = A[0, 3]
    a10 = A[1, 0]; a11 = A[1, 1]; a12 = A[1, 2]; a13 = A[1, 3]
    a20 = A[2, 0]; a21 = A[2, 1]; a22 = A[2, 2]; a23 = A[2, 3]
    a30 = A[3, 0]; a31 = A[3, 1]; a32 = A[3, 2]; a33 = A[3, 3]
    b00 = B[0, 0]; b01 = B[0, 1]; b02 = B[0, 2]; b03 = B[0, 3]
    b10 = B[1, 0]; b11 = B[1, 1]; b12 = B[1, 2]; b13 = B[1, 3]
    b20 = B[2, 0]; b21 = B[2, 1]; b22 = B[2, 2]; b23 = B[2, 3]
    b30 = B[3, 0]; b31 = B[3, 1]; b32 = B[3, 2]; b33 = B[3, 3]
    for p in range(uint64(p0), uint64(p1)):
        x0 = s[0, p]; x1 = s[1, p]; x2 = s[2, p]; x3 = s[3, p]
        y0 = r[0, p]; y1 = r[1, p]; y2 = r[2, p]; y3 = r[3, p]
        z0 = (a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3) * (b00 * y0 + b01 * y1 + b02 * y2 + b03 * y3)
        z1 = (a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3) * (b10 * y0 + b11 * y1 + b12 * y2 + b13 * y3)
        z2 = (a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3) * (b20 * y0 + b21 * y1 + b22 * y2 + b23 * y3)
        z3 = (a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3) * (b30 * y0 + b31 * y1 + b32 * y2 + b33 * y3)
        d[0, p] = z0
        d[1, p] = z1
        d[2, p] = z2
        d[3, p] = z3
        m = mx[p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        mx[p] = z3 if z3 > m else m


@njit
def _pp_pair(A, s, B, r, ea, eb, p0, p1):
    """ea = A s and eb = B r over patterns p0..p1 (edge partials of two children)."""
    a00 = A[0, 0]; a01 = A[0, 1]; a02 = A[0, 2]; a03 = A[0, 3]
    a10 = A[1, 0]; a11 = A[1, 1]; a12 = A[1, 2]; a13 = A[1, 3]
    a20 = A[2, 0]; a21 = A[2, 1]; a22 = A[2, 2]; a23 = A[2, 3]
    a30 = A[3, 0]; a31 = A[3, 1]; a32 = A[3, 2]; a33 = A[3, 3]
    b00 = B[0, 0]; b01 = B[0, 1]; b02 = B[0, 2]; b03 = B[0, 3]
    b10 = B[1, 0]; b11 = B[1, 1]; b12 = B[1, 2]; b13 = B[1, 3]
    b20 = B[2, 0]; b21 = B[2, 1]; b22 = B[2, 2]; b23 = B[2, 3]
    b30 = B[3, 0]; b31 = B[3, 1]; b32 = B[3, 2]; b33 = B[3, 3]
    for p in range(uint64(p0), uint64(p1)):
        x0 = s[0, p]; x1 = s[1, p]; x2 = s[2, p]; x3 = s[3, p]
        y0 = r[0, p]; y1 = r[1, p]; y2 = r[2, p]; y3 = r[3, p]
        f0 = a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
        f1 = a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
        f2 = a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
        f3 = a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        g0 = b00 * y0 + b01 * y1 + b02 * y2 + b03 * y3
        g1 = b10 * y0 + b11 * y1 + b12 * y2 + b13 * y3
        g2 = b20 * y0 + b21 * y1 + b22 * y2 + b23 * y3
        g3 = b30 * y0 + b31 * y1 + b32 * y2 + b33 * y3
        ea[0, p] = f0; ea[1, p] = f1; ea[2, p] = f2; ea[3, p] = f3
        eb[0, p] = g0; eb[1, p] = g1; eb[2, p] = g2; eb[3, p] = g3


@njit(fastmath={"reassoc", "nsz"}, error_model="numpy")
def _weighted_ratio_sum(w, f, num, den, p0, p1):
    """sum_p w[p] f[p] num[p] / den[p] (reassociated so that it vectorises)."""
    g = 0.0
    for p in range(uint64(p0), uint64(p1)):
        g += w[p] * f[p] * (num[p] / den[p])
    return g


@njit
def _count_below(x, threshold, p0, p1):
    """How many of x[p0:p1] are below threshold (an integer reduction: it vectorises)."""
    c = 0
    for p in range(uint64(p0), uint64(p1)):
        c += x[p] < threshold
    return c


@njit
def _rescale(node, mx, logscale, p0, p1, track, have_max):
    """Scale patterns whose largest entry is below the threshold by an exact power of two.

    With ``track`` the exponents are added to ``logscale`` (in units of log 2); with
    ``have_max`` the per-pattern maxima are already in ``mx``.
    """
    K = node.shape[0]
    if not have_max:
        for p in range(uint64(p0), uint64(p1)):
            mx[p] = 0.0
        for k in range(K):
            for s in range(4):
                row = node[k, s]
                for p in range(uint64(p0), uint64(p1)):
                    x = row[p]
                    m = mx[p]
                    mx[p] = x if x > m else m
    if _count_below(mx, SCALE_THRESHOLD, p0, p1) == 0:
        return                      # the common case, checked without branches per pattern
    for p in range(uint64(p0), uint64(p1)):
        m = mx[p]
        if m < SCALE_THRESHOLD and m > 0.0:
            ex = math.frexp(m)[1]
            f = math.ldexp(1.0, -ex)
            for k in range(K):
                for s in range(4):
                    node[k, s, p] *= f
            if track:
                logscale[p] += ex


@njit
def _matvec(M, src, dst, p0, p1):
    """dst = M src over patterns p0..p1 (compact loops, for the rare non-binary nodes)."""
    S = src.shape[0]
    for i in range(S):
        for p in range(uint64(p0), uint64(p1)):
            dst[i, p] = 0.0
        for m in range(S):
            a = M[i, m]
            for p in range(uint64(p0), uint64(p1)):
                dst[i, p] += a * src[m, p]


@njit
def _root(mv, weights, inv, root, logscale, site_ll, frac, p0, p1):
    """Per-pattern log-likelihoods at the root; returns sum_p w_p log L_p over p0..p1.

    ``frac[p]`` receives (1 - pinv) L_var / L, the share of the variable-site component
    (1 without invariant sites), used by the gradient.
    """
    K = root.shape[0]
    pinv = mv[_PINV]
    total = 0.0
    pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
    for p in range(uint64(p0), uint64(p1)):
        site_ll[p] = 0.0
    for k in range(K):
        w = mv[_RATES + K + k]
        r = root[k]
        for p in range(uint64(p0), uint64(p1)):
            site_ll[p] += w * (pi0 * r[0, p] + pi1 * r[1, p] + pi2 * r[2, p] + pi3 * r[3, p])
    for p in range(uint64(p0), uint64(p1)):
        lv = site_ll[p]
        if lv > 0.0:
            llv = math.log(lv) + logscale[p] * LN2
        else:
            llv = -np.inf
        if pinv > 0.0:
            a = math.log1p(-pinv) + llv
            ip = pinv * inv[p]
            if ip > 0.0:
                b = math.log(ip)
                m = max(a, b)
                ll = m + math.log(math.exp(a - m) + math.exp(b - m))
                frac[p] = math.exp(a - ll)
            else:
                ll = a
                frac[p] = 1.0
        else:
            ll = llv
            frac[p] = 1.0
        site_ll[p] = ll
        total += weights[p] * ll
    return total


@njit
def _edge_pass_f81(M, qa, sib, e, qv, has_child, acc, w, wmu, pi0, pi1, pi2, pi3, p0, p1):
    """:func:`_edge_pass` for F81-type rate matrices (no 4 x 4 product for Q e)."""
    if not has_child:
        for p in range(uint64(p0), uint64(p1)):
            u0 = qa[0, p] * sib[0, p]; u1 = qa[1, p] * sib[1, p]
            u2 = qa[2, p] * sib[2, p]; u3 = qa[3, p] * sib[3, p]
            e0 = e[0, p]; e1 = e[1, p]; e2 = e[2, p]; e3 = e[3, p]
            ue = u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3
            pe = pi0 * e0 + pi1 * e1 + pi2 * e2 + pi3 * e3
            acc[0, p] += wmu * (pe * (u0 + u1 + u2 + u3) - ue)
            acc[1, p] += w * ue
        return
    a00 = M[0, 0]; a01 = M[0, 1]; a02 = M[0, 2]; a03 = M[0, 3]
    a10 = M[1, 0]; a11 = M[1, 1]; a12 = M[1, 2]; a13 = M[1, 3]
    a20 = M[2, 0]; a21 = M[2, 1]; a22 = M[2, 2]; a23 = M[2, 3]
    a30 = M[3, 0]; a31 = M[3, 1]; a32 = M[3, 2]; a33 = M[3, 3]
    for p in range(uint64(p0), uint64(p1)):
        u0 = qa[0, p] * sib[0, p]; u1 = qa[1, p] * sib[1, p]
        u2 = qa[2, p] * sib[2, p]; u3 = qa[3, p] * sib[3, p]
        e0 = e[0, p]; e1 = e[1, p]; e2 = e[2, p]; e3 = e[3, p]
        ue = u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3
        pe = pi0 * e0 + pi1 * e1 + pi2 * e2 + pi3 * e3
        acc[0, p] += wmu * (pe * (u0 + u1 + u2 + u3) - ue)
        acc[1, p] += w * ue
        z0 = a00 * u0 + a10 * u1 + a20 * u2 + a30 * u3
        z1 = a01 * u0 + a11 * u1 + a21 * u2 + a31 * u3
        z2 = a02 * u0 + a12 * u1 + a22 * u2 + a32 * u3
        z3 = a03 * u0 + a13 * u1 + a23 * u2 + a33 * u3
        qv[0, p] = z0; qv[1, p] = z1; qv[2, p] = z2; qv[3, p] = z3
        m = acc[2, p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        acc[2, p] = z3 if z3 > m else m


@njit
def _edge_pass(mv, M, qa, sib, e, qv, has_child, acc, k, p0, p1):
    """One edge and category of the pre-order pass, fused over patterns p0..p1.

    u = qa * sib (the pre-order partial at the parent times the sibling's edge partial);
    acc[0] += w rho u^T Q e, acc[1] += w u^T e; with a child, qv = M^T u and acc[2] tracks
    its maximum.  (num, den and max share one array: fewer arrays, fewer alias checks.)
    """
    K = int(mv[_K])
    w = mv[_RATES + K + k]
    wr = w * mv[_RATES + k]
    f81 = mv[_RATES + 2 * K] > 0.5
    if f81:
        # Q e = mu ((pi . e) 1 - e), so u^T Q e = mu ((pi . e) sum(u) - u^T e)
        wmu = wr * mv[_RATES + 2 * K + 1]
        pi0 = mv[_PI]; pi1 = mv[_PI + 1]; pi2 = mv[_PI + 2]; pi3 = mv[_PI + 3]
        _edge_pass_f81(M, qa, sib, e, qv, has_child, acc, w, wmu, pi0, pi1, pi2, pi3, p0, p1)
        return
    q00 = mv[_Q + 0]; q01 = mv[_Q + 1]; q02 = mv[_Q + 2]; q03 = mv[_Q + 3]
    q10 = mv[_Q + 4]; q11 = mv[_Q + 5]; q12 = mv[_Q + 6]; q13 = mv[_Q + 7]
    q20 = mv[_Q + 8]; q21 = mv[_Q + 9]; q22 = mv[_Q + 10]; q23 = mv[_Q + 11]
    q30 = mv[_Q + 12]; q31 = mv[_Q + 13]; q32 = mv[_Q + 14]; q33 = mv[_Q + 15]
    if not has_child:
        for p in range(uint64(p0), uint64(p1)):
            u0 = qa[0, p] * sib[0, p]; u1 = qa[1, p] * sib[1, p]
            u2 = qa[2, p] * sib[2, p]; u3 = qa[3, p] * sib[3, p]
            e0 = e[0, p]; e1 = e[1, p]; e2 = e[2, p]; e3 = e[3, p]
            g0 = q00 * e0 + q01 * e1 + q02 * e2 + q03 * e3
            g1 = q10 * e0 + q11 * e1 + q12 * e2 + q13 * e3
            g2 = q20 * e0 + q21 * e1 + q22 * e2 + q23 * e3
            g3 = q30 * e0 + q31 * e1 + q32 * e2 + q33 * e3
            acc[0, p] += wr * (u0 * g0 + u1 * g1 + u2 * g2 + u3 * g3)
            acc[1, p] += w * (u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3)
        return
    a00 = M[0, 0]; a01 = M[0, 1]; a02 = M[0, 2]; a03 = M[0, 3]
    a10 = M[1, 0]; a11 = M[1, 1]; a12 = M[1, 2]; a13 = M[1, 3]
    a20 = M[2, 0]; a21 = M[2, 1]; a22 = M[2, 2]; a23 = M[2, 3]
    a30 = M[3, 0]; a31 = M[3, 1]; a32 = M[3, 2]; a33 = M[3, 3]
    for p in range(uint64(p0), uint64(p1)):
        u0 = qa[0, p] * sib[0, p]; u1 = qa[1, p] * sib[1, p]
        u2 = qa[2, p] * sib[2, p]; u3 = qa[3, p] * sib[3, p]
        e0 = e[0, p]; e1 = e[1, p]; e2 = e[2, p]; e3 = e[3, p]
        g0 = q00 * e0 + q01 * e1 + q02 * e2 + q03 * e3
        g1 = q10 * e0 + q11 * e1 + q12 * e2 + q13 * e3
        g2 = q20 * e0 + q21 * e1 + q22 * e2 + q23 * e3
        g3 = q30 * e0 + q31 * e1 + q32 * e2 + q33 * e3
        acc[0, p] += wr * (u0 * g0 + u1 * g1 + u2 * g2 + u3 * g3)
        acc[1, p] += w * (u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3)
        z0 = a00 * u0 + a10 * u1 + a20 * u2 + a30 * u3
        z1 = a01 * u0 + a11 * u1 + a21 * u2 + a31 * u3
        z2 = a02 * u0 + a12 * u1 + a22 * u2 + a32 * u3
        z3 = a03 * u0 + a13 * u1 + a23 * u2 + a33 * u3
        qv[0, p] = z0; qv[1, p] = z1; qv[2, p] = z2; qv[3, p] = z3
        m = acc[2, p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        acc[2, p] = z3 if z3 > m else m


@njit(cache=True, nogil=True)
def evaluate(tips, weights, inv, mv, topo, t, Pm, part, pre, work, site_ll, grad, bounds,
             compute_P, want_grad):
    """Log-likelihood of branch lengths ``t`` and, with ``want_grad``, its gradient.

    The traversals run once per pattern block ``bounds[b]..bounds[b+1]`` (cache blocking);
    with ``compute_P`` False the transition matrices ``Pm`` are taken as already set.
    ``site_ll`` receives per-pattern log-likelihoods and ``grad`` (when wanted)
    :math:`\\partial \\log L / \\partial t_e` summed over the blocks; ``pre`` is only
    touched with ``want_grad``.  The GIL is released, so threads may evaluate disjoint
    blocks of one problem, or separate buffers, at the same time.  ``work`` has
    :data:`WORK_ROWS` rows of P: maxima, log scalers, variable-site shares, 9 rows of
    gradient accumulators, 12 rows of edge partials, 4 rows of scratch, 4 rows of ones.

    (The traversals are written out here rather than in helpers: numba re-optimises a
    callee inside every caller, so a flat call graph compiles much faster.)
    """
    n_taxa = tips.shape[0]
    K = Pm.shape[1]
    n_int = topo.shape[0]
    root = topo[n_int - 1, 0]
    mx = work[0]
    logscale = work[1]
    frac = work[2]
    acc = work[3:12]
    scr = work[12:24]
    tmp = work[24:28]
    ones = work[28:32]
    # flags as variables, not literals: one compiled signature of _rescale
    track = bounds.shape[0] > 0
    have_max = track
    no_track = not track
    no_max = no_track
    if compute_P:
        transition_matrices(mv, t, Pm)
    if want_grad:
        for e in range(grad.shape[0]):
            grad[e] = 0.0
    total = 0.0
    for b in range(bounds.shape[0] - 1):
        p0 = bounds[b]
        p1 = bounds[b + 1]
        # ---- post-order (Felsenstein pruning), rescaled per pattern
        for p in range(uint64(p0), uint64(p1)):
            logscale[p] = 0.0
        for idx in range(n_int):
            v = topo[idx, 0]
            nk = topo[idx, 1]
            node = part[v - n_taxa]
            if nk == 2:
                for p in range(uint64(p0), uint64(p1)):
                    mx[p] = 0.0
                c0 = topo[idx, 2]
                c1 = topo[idx, 3]
                e0 = topo[idx, 5]
                e1 = topo[idx, 6]
                for k in range(K):
                    s0 = tips[c0] if c0 < n_taxa else part[c0 - n_taxa, k]
                    s1 = tips[c1] if c1 < n_taxa else part[c1 - n_taxa, k]
                    _pp2(Pm[e0, k], s0, Pm[e1, k], s1, node[k], mx, p0, p1)
                _rescale(node, mx, logscale, p0, p1, track, have_max)
            else:  # 1 or 3 children: compact loops (one such node per tree at most)
                for k in range(K):
                    d = node[k]
                    for i in range(4):
                        for p in range(uint64(p0), uint64(p1)):
                            d[i, p] = 1.0
                    for j in range(nk):
                        c = topo[idx, 2 + j]
                        src = tips[c] if c < n_taxa else part[c - n_taxa, k]
                        _matvec(Pm[topo[idx, 5 + j], k], src, tmp, p0, p1)
                        for i in range(4):
                            for p in range(uint64(p0), uint64(p1)):
                                d[i, p] *= tmp[i, p]
                _rescale(node, mx, logscale, p0, p1, track, no_max)
        total += _root(mv, weights, inv, part[root - n_taxa], logscale, site_ll, frac, p0, p1)
        if not want_grad:
            continue
        # ---- pre-order partials and the gradient (Ji et al. 2020)
        rq = pre[root - n_taxa]
        for k in range(K):
            for s in range(4):
                f = mv[_PI + s]
                for p in range(uint64(p0), uint64(p1)):
                    rq[k, s, p] = f
        for idx in range(n_int - 1, -1, -1):
            a = topo[idx, 0]
            nk = topo[idx, 1]
            qa = pre[a - n_taxa]
            for i in range(3 * nk):
                for p in range(uint64(p0), uint64(p1)):
                    acc[i, p] = 0.0
            for k in range(K):
                # edge partials P_e L_child of the children, recomputed into scr
                if nk == 2:
                    c0 = topo[idx, 2]
                    c1 = topo[idx, 3]
                    s0 = tips[c0] if c0 < n_taxa else part[c0 - n_taxa, k]
                    s1 = tips[c1] if c1 < n_taxa else part[c1 - n_taxa, k]
                    _pp_pair(Pm[topo[idx, 5], k], s0, Pm[topo[idx, 6], k], s1, scr[0:4],
                             scr[4:8], p0, p1)
                else:
                    for j in range(nk):
                        c = topo[idx, 2 + j]
                        src = tips[c] if c < n_taxa else part[c - n_taxa, k]
                        _matvec(Pm[topo[idx, 5 + j], k], src, scr[4 * j:4 * j + 4], p0, p1)
                for j in range(nk):
                    c = topo[idx, 2 + j]
                    e = topo[idx, 5 + j]
                    has_child = c >= n_taxa
                    qv = pre[c - n_taxa, k] if has_child else tmp
                    if nk == 2:
                        q = qa[k]
                        sib = scr[4 * (1 - j):4 * (1 - j) + 4]
                    elif nk == 3:
                        o1 = (j + 1) % 3
                        o2 = (j + 2) % 3
                        qk = qa[k]
                        for i in range(4):
                            for p in range(uint64(p0), uint64(p1)):
                                tmp[i, p] = qk[i, p] * scr[4 * o1 + i, p]
                        q = tmp
                        sib = scr[4 * o2:4 * o2 + 4]
                    else:
                        q = qa[k]
                        sib = ones
                    _edge_pass(mv, Pm[e, k], q, sib, scr[4 * j:4 * j + 4], qv, has_child,
                               acc[3 * j:3 * j + 3], k, p0, p1)
            for j in range(nk):
                c = topo[idx, 2 + j]
                e = topo[idx, 5 + j]
                grad[e] += _weighted_ratio_sum(weights, frac, acc[3 * j], acc[3 * j + 1], p0,
                                               p1)
                if c >= n_taxa:
                    _rescale(pre[c - n_taxa], acc[3 * j + 2], acc[3 * j + 2], p0, p1, no_track,
                             have_max)
    return total
