"""The rootings of unrooted trees under an SBN: their probabilities, the posterior over them,
and the expected parameter counts of the EM E-step (Zhang & Matsen, NeurIPS 2018, section 4).

An unrooted topology ``T`` on ``n`` taxa has ``E = 2n-3`` rootings ``T_e`` (one per edge) and
``p(T) = sum_e p(T_e)``.  All ``E`` values ``log p(T_e)`` come from one upward and one downward
pass over the tree (:func:`phylo.sbn._kernels.rooting_logprobs`), so scoring a tree, or
computing the posterior ``q(e) = p(T_e) / p(T)``, costs O(n) rather than O(n^2).

The functions take the ``(T, 2n-3, 7)`` parameter tables of :mod:`phylo.sbn.support` and
``log_theta`` extended by a final ``-inf`` (the id of parameters outside the support).
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K


def rooting_log_probs(
    parents: np.ndarray, table: np.ndarray, log_theta_ext: np.ndarray, n_taxa: int
) -> np.ndarray:
    """``(T, 2n-3)``: ``log p(T_t rooted on the edge above node v)``."""
    T, N = parents.shape
    out = np.empty((T, N - 1))
    if T:
        K.rooting_logprobs(parents, table, log_theta_ext, n_taxa, out)
    return out


def normalise_rootings(lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log p(T), q)`` from the rooting log probabilities ``lp`` (rows of ``-inf`` give
    ``-inf`` and ``q = 0``)."""
    mx = lp.max(axis=1)
    finite = np.isfinite(mx)
    if finite.all():
        q = lp - mx[:, None]
        np.exp(q, out=q)
        tot = q.sum(axis=1)
        q /= tot[:, None]
        return mx + np.log(tot), q
    shift = np.where(finite, mx, 0.0)
    q = np.exp(lp - shift[:, None])
    tot = q.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = np.where(finite, shift + np.log(tot), -np.inf)
        q = np.where(finite[:, None], q / tot[:, None], 0.0)
    return loglik, q


def log_likelihood(parents, table, log_theta_ext, n_taxa) -> np.ndarray:
    """``log p(T_t)`` of every unrooted tree (sum over its rootings)."""
    return normalise_rootings(rooting_log_probs(parents, table, log_theta_ext, n_taxa))[0]


def posterior(parents, table, log_theta_ext, n_taxa) -> tuple[np.ndarray, np.ndarray]:
    """``(log p(T_t), q_t)`` with ``q_t[v] = p(root on the edge above v | T_t)``."""
    return normalise_rootings(rooting_log_probs(parents, table, log_theta_ext, n_taxa))


def estep(parents, table, log_theta_ext, weights, n_taxa) -> tuple[np.ndarray, np.ndarray]:
    """E-step of SBN-EM: ``(expected counts (M + 1,), log p(T_t) (T,))``.

    ``counts[m] = sum_t weights[t] E_q[number of times the rooting of T_t uses m]``.
    """
    loglik, q = posterior(parents, table, log_theta_ext, n_taxa)
    counts = np.zeros(log_theta_ext.shape[0])
    K.rooting_counts(parents, table, q, np.asarray(weights, dtype=float), n_taxa, counts)
    return counts, loglik


def weighted_counts(parents, table, q, weights, n_taxa, size) -> np.ndarray:
    """``sum_t weights[t] E[number of times the rooting of T_t uses each parameter]`` for
    a rooting posterior ``q`` already at hand (from :func:`posterior`): the E-step of
    :func:`estep` without recomputing ``q``.  ``size``: the length of ``log_theta_ext``
    (the last entry collects ids outside the support)."""
    counts = np.zeros(size)
    if parents.shape[0]:
        K.rooting_counts(parents, table, q, np.asarray(weights, dtype=float), n_taxa, counts)
    return counts
