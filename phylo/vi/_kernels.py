"""numba kernels of variational inference: stochastic beam search over SBN derivations.

Plain functions over arrays; the typed wrapper is :func:`phylo.vi.estimators.sample_derivations`.

A rooted tree of an SBN is derived top-down: the root split (a parameter of group 0), then,
depth first, one subsplit for every clade of more than one taxon under the parent key of
that clade (the SBN support arrays of :class:`phylo.sbn.Support`: ``offsets`` of the
parameter groups, ``param_sub`` the subsplit of each parameter, ``subsplits`` its two clades,
``sub_keys`` the parent key each clade of a subsplit opens, ``-1`` for a single taxon, ``-2``
when the key is outside the support, ``clade_leaf`` the taxon of a single-taxon clade).
Every derivation of ``n`` taxa takes exactly ``n - 1`` choices, so the beams of stochastic
beam search (Kool, van Hoof & Welling 2019) all finish together.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def _truncated(g, z, t):
    """Gumbel ``g`` of a child shifted so that the children's maximum ``z`` becomes the
    parent's perturbed value ``t`` (Kool et al. 2019, appendix B)."""
    if g == z:
        return t
    v = t - g + np.log(-np.expm1(g - z))
    if v > 0:
        return t - v - np.log1p(np.exp(-v))
    return t - np.log1p(np.exp(v))


@nb.njit(cache=True, inline="always")
def _usable(m, log_theta, param_sub, sub_keys):
    """Parameter ``m`` has a positive probability and both its clades can be completed."""
    s = param_sub[m]
    return np.isfinite(log_theta[m]) and sub_keys[s, 0] != -2 and sub_keys[s, 1] != -2


@nb.njit(cache=True)
def beam_search(
    log_theta, offsets, param_sub, subsplits, sub_keys, clade_leaf, n, k, gumbel, root_gumbel,
    out_ids, out_logp, out_par,
):  # fmt: skip
    """Stochastic beam search for ``k`` distinct rooted derivations.

    ``gumbel[step, beam, j]``: standard Gumbel noise for child ``j`` of the group expanded
    by beam ``beam`` at ``step`` (``(n - 1, k, max group size)``); ``root_gumbel`` the
    root's.  Writes the parameter ids of each derivation (``out_ids``, ``(k, n - 1)``, in
    the order chosen), its log probability ``out_logp`` and its rooted parent array
    ``out_par`` (``(k, 2n - 1)``: leaves ``0..n-1``, the root ``n``, then new nodes in the
    order they are made); returns how many derivations were found (fewer than ``k`` when
    the support has fewer).
    """
    N = 2 * n - 1
    steps = n - 1
    stack_key = np.empty((k, n), np.int64)
    stack_node = np.empty((k, n), np.int64)
    depth = np.zeros(k, np.int64)
    nxt = np.zeros(k, np.int64)
    logp = np.zeros(k)
    key = np.zeros(k)
    ids = np.empty((k, steps), np.int64)
    par = np.empty((k, N), np.int64)
    maxg = gumbel.shape[2]
    cand_beam = np.empty(k * maxg, np.int64)
    cand_m = np.empty(k * maxg, np.int64)
    cand_phi = np.empty(k * maxg)
    cand_key = np.empty(k * maxg)
    n_beams = 1
    stack_key[0, 0] = 0
    stack_node[0, 0] = n
    depth[0] = 1
    nxt[0] = n + 1
    par[0, n] = -1
    key[0] = root_gumbel
    # scratch copies for the new beams
    s_key2 = np.empty_like(stack_key)
    s_node2 = np.empty_like(stack_node)
    depth2 = np.empty_like(depth)
    nxt2 = np.empty_like(nxt)
    logp2 = np.empty_like(logp)
    key2 = np.empty_like(key)
    ids2 = np.empty_like(ids)
    par2 = np.empty_like(par)
    for step in range(steps):
        n_cand = 0
        for b in range(n_beams):
            g = stack_key[b, depth[b] - 1]
            lo, hi = offsets[g], offsets[g + 1]
            # valid children and their normaliser
            mx = -np.inf
            for m in range(lo, hi):
                if _usable(m, log_theta, param_sub, sub_keys) and log_theta[m] > mx:
                    mx = log_theta[m]
            if mx == -np.inf:
                continue
            tot = 0.0
            for m in range(lo, hi):
                if _usable(m, log_theta, param_sub, sub_keys):
                    tot += np.exp(log_theta[m] - mx)
            lse = mx + np.log(tot)
            z = -np.inf
            first = n_cand
            for j in range(hi - lo):
                m = lo + j
                if not _usable(m, log_theta, param_sub, sub_keys):
                    continue
                phi = logp[b] + log_theta[m] - lse
                gv = phi + gumbel[step, b, j]
                cand_beam[n_cand] = b
                cand_m[n_cand] = m
                cand_phi[n_cand] = phi
                cand_key[n_cand] = gv
                if gv > z:
                    z = gv
                n_cand += 1
            for c in range(first, n_cand):
                cand_key[c] = _truncated(cand_key[c], z, key[b])
        if n_cand == 0:
            return 0
        order = np.argsort(-cand_key[:n_cand], kind="mergesort")
        new = min(k, n_cand)
        for r in range(new):
            c = order[r]
            b = cand_beam[c]
            m = cand_m[c]
            d = depth[b] - 1
            node = stack_node[b, d]
            for i in range(d):
                s_key2[r, i] = stack_key[b, i]
                s_node2[r, i] = stack_node[b, i]
            nx = nxt[b]
            for i in range(N):
                par2[r, i] = par[b, i]
            for i in range(step):
                ids2[r, i] = ids[b, i]
            ids2[r, step] = m
            s = param_sub[m]
            made = np.empty(2, np.int64)
            for j in range(2):
                cl = subsplits[s, j]
                leaf = clade_leaf[cl]
                if leaf >= 0:
                    par2[r, leaf] = node
                    made[j] = -1
                else:
                    par2[r, nx] = node
                    made[j] = nx
                    nx += 1
            # clade 1 below clade 0 on the stack, so that clade 0 is expanded first
            for j in (1, 0):
                if made[j] >= 0:
                    s_key2[r, d] = sub_keys[s, j]
                    s_node2[r, d] = made[j]
                    d += 1
            depth2[r] = d
            nxt2[r] = nx
            logp2[r] = cand_phi[c]
            key2[r] = cand_key[c]
        n_beams = new
        for r in range(new):
            for i in range(depth2[r]):
                stack_key[r, i] = s_key2[r, i]
                stack_node[r, i] = s_node2[r, i]
            depth[r] = depth2[r]
            nxt[r] = nxt2[r]
            logp[r] = logp2[r]
            key[r] = key2[r]
            for i in range(step + 1):
                ids[r, i] = ids2[r, i]
            for i in range(N):
                par[r, i] = par2[r, i]
    for r in range(n_beams):
        out_logp[r] = logp[r]
        for i in range(steps):
            out_ids[r, i] = ids[r, i]
        for i in range(N):
            out_par[r, i] = par[r, i]
    return n_beams
