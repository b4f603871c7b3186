"""numba kernels of the tree likelihood: pruning, rescaling, branch gradients, batches.

Plain functions over arrays (float64 values, int64 indices); the typed, documented
interface is :class:`phylo.likelihood.tree_likelihood.TreeLikelihood`.

Layout (patterns innermost, so that the loops over patterns vectorise):

``tips``    (n_taxa, 4, P)          tip partials (indicators of the allowed states)
``part``    (n_internal, K, 4, P)   post-order partials of internal node ``v`` at ``v - n_taxa``
``edges``   (E, K, 4, P)            post-order partials at the top of edge ``e``: P_e L_child
``pre``     (n_internal, K, 4, P)   pre-order partials of internal nodes
``Pm``      (E, K, 4, 4)            transition matrices of each edge and rate category
``topo``    (n_internal, 8) int64   one row per internal node in post-order (root last):
                                    node, n_children, child0..2, edge0..2 (-1 padded)
``mv``      float64 vector          the model: eigenvalues (4), V (16), V^-1 (16), Q (16),
                                    frequencies (4), pinv, K, rates (K), weights (K)

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
are rescaled freely per pattern without bookkeeping.

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
from numba import njit, prange, uint64

#: Rescale a pattern when its largest partial falls below this value.
SCALE_THRESHOLD = 2.0 ** -100
LN2 = math.log(2.0)

# offsets in the model vector
_LAM, _V, _VI, _Q, _PI, _PINV, _K, _RATES = 0, 4, 20, 36, 52, 56, 57, 58


def pack_model(lam, v, vinv, q, freqs, pinv, rates, weights) -> np.ndarray:
    """The model vector read by the kernels (see the module docstring)."""
    k = len(rates)
    return np.concatenate([lam, np.ravel(v), np.ravel(vinv), np.ravel(q), freqs,
                           [pinv, float(k)], rates, weights]).astype(np.float64)


@njit(cache=True)
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


@njit(cache=True)
def _pp1(M, s, d, p0, p1, mul):
    """d = M s  (mul=False) or d *= M s (mul=True), over patterns p0..p1."""
    a00 = M[0, 0]; a01 = M[0, 1]; a02 = M[0, 2]; a03 = M[0, 3]
    a10 = M[1, 0]; a11 = M[1, 1]; a12 = M[1, 2]; a13 = M[1, 3]
    a20 = M[2, 0]; a21 = M[2, 1]; a22 = M[2, 2]; a23 = M[2, 3]
    a30 = M[3, 0]; a31 = M[3, 1]; a32 = M[3, 2]; a33 = M[3, 3]
    if mul:
        for p in range(uint64(p0), uint64(p1)):
            x0 = s[0, p]; x1 = s[1, p]; x2 = s[2, p]; x3 = s[3, p]
            d[0, p] *= a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            d[1, p] *= a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            d[2, p] *= a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            d[3, p] *= a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
    else:
        for p in range(uint64(p0), uint64(p1)):
            x0 = s[0, p]; x1 = s[1, p]; x2 = s[2, p]; x3 = s[3, p]
            d[0, p] = a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            d[1, p] = a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            d[2, p] = a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            d[3, p] = a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3


@njit(cache=True)
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


@njit(cache=True)
def _pp2s(A, s, B, r, d, ea, eb, mx, p0, p1):
    """ea = A s, eb = B r, d = ea * eb over patterns p0..p1, with the running max in mx."""
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
        z0 = f0 * g0; z1 = f1 * g1; z2 = f2 * g2; z3 = f3 * g3
        d[0, p] = z0; d[1, p] = z1; d[2, p] = z2; d[3, p] = z3
        m = mx[p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        mx[p] = z3 if z3 > m else m


@njit(cache=True)
def _mul(a, b, d, p0, p1):
    """d = a * b (4 x P rows) over patterns p0..p1."""
    for i in range(4):
        for p in range(uint64(p0), uint64(p1)):
            d[i, p] = a[i, p] * b[i, p]


@njit(cache=True)
def _rescale(node, mx, logscale, p0, p1, track, have_max):
    """Scale patterns whose largest entry is below the threshold by an exact power of two.

    With ``track`` the exponents are added to ``logscale`` (in units of log 2); with
    ``have_max`` the per-pattern maxima are already in ``mx``.
    """
    K = node.shape[0]
    if not have_max:
        _max_into(node, mx, p0, p1)
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


@njit(cache=True)
def _max_into(node, mx, p0, p1):
    """mx[p] = max over categories and states of node[:, :, p]."""
    K = node.shape[0]
    for p in range(uint64(p0), uint64(p1)):
        mx[p] = 0.0
    for k in range(K):
        for s in range(4):
            row = node[k, s]
            for p in range(uint64(p0), uint64(p1)):
                x = row[p]
                m = mx[p]
                mx[p] = x if x > m else m


@njit(cache=True)
def _src(tips, part, child, k, n_taxa):
    if child < n_taxa:
        return tips[child]
    return part[child - n_taxa, k]


@njit(cache=True)
def _postorder(tips, Pm, topo, part, edges, store, mx, logscale, p0, p1):
    """Post-order partials of every internal node over patterns p0..p1.

    ``store``: also keep the edge partials P_e L_child in ``edges`` (for the gradient).
    ``logscale`` receives the summed scaling exponents (units of log 2) of each pattern.
    """
    n_taxa = tips.shape[0]
    K = Pm.shape[1]
    for p in range(uint64(p0), uint64(p1)):
        logscale[p] = 0.0
    for idx in range(topo.shape[0]):
        v = topo[idx, 0]
        nk = topo[idx, 1]
        node = part[v - n_taxa]
        for p in range(uint64(p0), uint64(p1)):
            mx[p] = 0.0
        for k in range(K):
            d = node[k]
            c0 = topo[idx, 2]
            e0 = topo[idx, 5]
            if nk == 1:
                if store:
                    _pp1(Pm[e0, k], _src(tips, part, c0, k, n_taxa), edges[e0, k], p0, p1,
                         False)
                _pp1(Pm[e0, k], _src(tips, part, c0, k, n_taxa), d, p0, p1, False)
                continue
            c1 = topo[idx, 3]
            e1 = topo[idx, 6]
            if store:
                _pp2s(Pm[e0, k], _src(tips, part, c0, k, n_taxa),
                      Pm[e1, k], _src(tips, part, c1, k, n_taxa), d, edges[e0, k],
                      edges[e1, k], mx, p0, p1)
            else:
                _pp2(Pm[e0, k], _src(tips, part, c0, k, n_taxa),
                     Pm[e1, k], _src(tips, part, c1, k, n_taxa), d, mx, p0, p1)
            if nk == 3:
                c2 = topo[idx, 4]
                e2 = topo[idx, 7]
                if store:
                    _pp1(Pm[e2, k], _src(tips, part, c2, k, n_taxa), edges[e2, k], p0, p1,
                         False)
                    _mul(d, edges[e2, k], d, p0, p1)
                else:
                    _pp1(Pm[e2, k], _src(tips, part, c2, k, n_taxa), d, p0, p1, True)
        # binary nodes have their maxima from the fused loops
        _rescale(node, mx, logscale, p0, p1, True, nk == 2)


@njit(cache=True)
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


@njit(cache=True)
def _edge_pass(mv, M, qa, sib, e, qv, has_child, num, den, mx, k, p0, p1):
    """One edge and category of the pre-order pass, fused over patterns p0..p1.

    u = qa * sib (the pre-order partial at the parent times the sibling's edge partial);
    num += w rho u^T Q e, den += w u^T e; with a child, qv = M^T u and mx tracks its max.
    """
    K = int(mv[_K])
    w = mv[_RATES + K + k]
    wr = w * mv[_RATES + k]
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
            num[p] += wr * (u0 * g0 + u1 * g1 + u2 * g2 + u3 * g3)
            den[p] += w * (u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3)
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
        num[p] += wr * (u0 * g0 + u1 * g1 + u2 * g2 + u3 * g3)
        den[p] += w * (u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3)
        z0 = a00 * u0 + a10 * u1 + a20 * u2 + a30 * u3
        z1 = a01 * u0 + a11 * u1 + a21 * u2 + a31 * u3
        z2 = a02 * u0 + a12 * u1 + a22 * u2 + a32 * u3
        z3 = a03 * u0 + a13 * u1 + a23 * u2 + a33 * u3
        qv[0, p] = z0; qv[1, p] = z1; qv[2, p] = z2; qv[3, p] = z3
        m = mx[p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        mx[p] = z3 if z3 > m else m


@njit(cache=True)
def _preorder_gradient(mv, weights, tips, Pm, topo, edges, pre, u, frac, num, den, mx,
                       grad, p0, p1):
    """Pre-order pass: adds sum_p w_p dlogL_p/dt_e over patterns p0..p1 to grad[e]."""
    n_taxa = tips.shape[0]
    K = Pm.shape[1]
    n_int = topo.shape[0]
    root = topo[n_int - 1, 0]
    rq = pre[root - n_taxa]
    for k in range(K):
        for s in range(4):
            f = mv[_PI + s]
            for p in range(uint64(p0), uint64(p1)):
                rq[k, s, p] = f
    ones = np.ones((1, 4, 1))
    for idx in range(n_int - 1, -1, -1):
        a = topo[idx, 0]
        nk = topo[idx, 1]
        qa = pre[a - n_taxa]
        if nk == 1 and ones.shape[2] != tips.shape[2]:
            ones = np.ones((1, 4, tips.shape[2]))
        for j in range(nk):
            c = topo[idx, 2 + j]
            e = topo[idx, 5 + j]
            has_child = c >= n_taxa
            for p in range(uint64(p0), uint64(p1)):
                num[p] = 0.0
                den[p] = 0.0
                mx[p] = 0.0
            for k in range(K):
                qv = pre[c - n_taxa, k] if has_child else u[k]
                if nk == 1:
                    _edge_pass(mv, Pm[e, k], qa[k], ones[0], edges[e, k], qv, has_child,
                               num, den, mx, k, p0, p1)
                elif nk == 2:
                    sib = topo[idx, 5 + (1 - j)]
                    _edge_pass(mv, Pm[e, k], qa[k], edges[sib, k], edges[e, k], qv,
                               has_child, num, den, mx, k, p0, p1)
                else:
                    s1 = topo[idx, 5 + (j + 1) % 3]
                    s2 = topo[idx, 5 + (j + 2) % 3]
                    _mul(qa[k], edges[s1, k], u[k], p0, p1)
                    _edge_pass(mv, Pm[e, k], u[k], edges[s2, k], edges[e, k], qv,
                               has_child, num, den, mx, k, p0, p1)
            g = 0.0
            for p in range(uint64(p0), uint64(p1)):
                g += weights[p] * frac[p] * (num[p] / den[p])
            grad[e] += g
            if has_child:
                _rescale(pre[c - n_taxa], mx, mx, p0, p1, False, True)


# ------------------------------------------------------------------------- entry points

@njit(cache=True)
def _loglik_block(tips, weights, inv, mv, topo, Pm, part, work, site_ll, p0, p1):
    n_taxa = tips.shape[0]
    _postorder(tips, Pm, topo, part, part, False, work[0], work[1], p0, p1)
    root = topo[topo.shape[0] - 1, 0]
    return _root(mv, weights, inv, part[root - n_taxa], work[1], site_ll, work[2], p0, p1)


@njit(cache=True)
def _gradient_block(tips, weights, inv, mv, topo, Pm, part, edges, pre, u, work, site_ll,
                    grad, p0, p1):
    n_taxa = tips.shape[0]
    _postorder(tips, Pm, topo, part, edges, True, work[0], work[1], p0, p1)
    root = topo[topo.shape[0] - 1, 0]
    ll = _root(mv, weights, inv, part[root - n_taxa], work[1], site_ll, work[2], p0, p1)
    _preorder_gradient(mv, weights, tips, Pm, topo, edges, pre, u, work[2], work[3], work[4],
                       work[0], grad, p0, p1)
    return ll


@njit(cache=True)
def log_likelihood(tips, weights, inv, mv, topo, t, Pm, part, work, site_ll, bounds):
    """Log-likelihood of branch lengths ``t`` (one thread); fills ``site_ll``.

    The traversal runs once per pattern block ``bounds[b]..bounds[b+1]`` (cache blocking).
    """
    transition_matrices(mv, t, Pm)
    total = 0.0
    for b in range(bounds.shape[0] - 1):
        total += _loglik_block(tips, weights, inv, mv, topo, Pm, part, work, site_ll,
                               bounds[b], bounds[b + 1])
    return total


@njit(cache=True)
def gradient(tips, weights, inv, mv, topo, t, Pm, part, edges, pre, u, work, site_ll, grad,
             bounds):
    """Log-likelihood and its gradient over all branches (one thread, blocked patterns)."""
    transition_matrices(mv, t, Pm)
    for e in range(grad.shape[0]):
        grad[e] = 0.0
    total = 0.0
    for b in range(bounds.shape[0] - 1):
        total += _gradient_block(tips, weights, inv, mv, topo, Pm, part, edges, pre, u, work,
                                 site_ll, grad, bounds[b], bounds[b + 1])
    return total


@njit(cache=True, parallel=True)
def log_likelihood_parallel(tips, weights, inv, mv, topo, t, Pm, part, work, site_ll, bounds):
    """As :func:`log_likelihood`, with the pattern blocks shared among threads."""
    transition_matrices(mv, t, Pm)
    nb = bounds.shape[0] - 1
    out = np.zeros(nb)
    for b in prange(nb):
        out[b] = _loglik_block(tips, weights, inv, mv, topo, Pm, part, work, site_ll,
                               bounds[b], bounds[b + 1])
    return out.sum()


@njit(cache=True, parallel=True)
def gradient_parallel(tips, weights, inv, mv, topo, t, Pm, part, edges, pre, u, work,
                      site_ll, grads, bounds):
    """As :func:`gradient`, pattern blocks in parallel; ``grads`` is (blocks, E)."""
    transition_matrices(mv, t, Pm)
    nb = bounds.shape[0] - 1
    out = np.zeros(nb)
    for b in prange(nb):
        for e in range(grads.shape[1]):
            grads[b, e] = 0.0
        out[b] = _gradient_block(tips, weights, inv, mv, topo, Pm, part, edges, pre, u, work,
                                 site_ll, grads[b], bounds[b], bounds[b + 1])
    return out.sum()


@njit(cache=True, parallel=True)
def log_likelihood_batch(tips, weights, inv, mv, topo, T, Pm, part, work, site_ll, out,
                         bounds):
    """out[b] = log-likelihood of branch lengths T[b]; threads take contiguous chunks of b.

    ``Pm``, ``part``, ``work`` and ``site_ll`` have a leading axis of one buffer per thread.
    """
    B = T.shape[0]
    nt = part.shape[0]
    P = tips.shape[2]
    for th in prange(nt):
        lo = (B * th) // nt
        hi = (B * (th + 1)) // nt
        for b in range(lo, hi):
            transition_matrices(mv, T[b], Pm[th])
            tot = 0.0
            for j in range(bounds.shape[0] - 1):
                tot += _loglik_block(tips, weights, inv, mv, topo, Pm[th], part[th], work[th],
                                     site_ll[th], bounds[j], bounds[j + 1])
            out[b] = tot


@njit(cache=True, parallel=True)
def gradient_batch(tips, weights, inv, mv, topo, T, Pm, part, edges, pre, u, work, site_ll,
                   out, grads, bounds):
    """out[b], grads[b] = log-likelihood and gradient at T[b]; per-thread buffers."""
    B = T.shape[0]
    nt = part.shape[0]
    P = tips.shape[2]
    for th in prange(nt):
        lo = (B * th) // nt
        hi = (B * (th + 1)) // nt
        for b in range(lo, hi):
            transition_matrices(mv, T[b], Pm[th])
            for e in range(grads.shape[1]):
                grads[b, e] = 0.0
            tot = 0.0
            for j in range(bounds.shape[0] - 1):
                tot += _gradient_block(tips, weights, inv, mv, topo, Pm[th], part[th],
                                       edges[th], pre[th], u[th], work[th], site_ll[th],
                                       grads[b], bounds[j], bounds[j + 1])
            out[b] = tot
