"""The gradient of the log-likelihood in the branch lengths and the model's parameters.

For a fixed topology, branch lengths :math:`t` and a model with rate matrix
:math:`Q = V \\Lambda V^{-1}`, rate categories :math:`\\rho_k` (weights :math:`\\omega_k`)
and invariant sites (:math:`p_{inv}`), every parameter :math:`\\theta` of :math:`Q` moves
the likelihood only through the transition matrices :math:`P_{e,k} = e^{Q \\tau_{e,k}}`,
:math:`\\tau_{e,k} = \\rho_k t_e`, the root distribution and the invariant sites.  One
post-order and one pre-order pass (:func:`phylo.likelihood._kernels.state_pair_sums`) give,
for every edge :math:`e` (above node :math:`v`) and category :math:`k`, the sums of state
pairs

.. math:: N_{e,k} = \\sum_p c_p\\, u_{e,k,p} L_{v,k,p}^T, \\qquad
          c_p = \\frac{w_p f_p}{L^{var}_p},

with :math:`u` what the rest of the tree contributes above the edge (pre-order), :math:`L`
the partial below it (post-order), :math:`w_p` the pattern's count and :math:`f_p` the
variable sites' share of its likelihood.  Then for anything that moves :math:`P_{e,k}`,

.. math:: \\frac{\\partial \\ell}{\\partial \\theta} = \\sum_{e,k}
          \\langle N_{e,k},\\; \\partial P_{e,k} / \\partial \\theta \\rangle .

**Derivatives of P through the eigendecomposition** (Kalbfleisch & Lawless 1985; Schadt,
Sinsheimer & Lange 1998).  With :math:`G = V^{-1} (\\partial Q/\\partial\\theta) V`,

.. math:: \\frac{\\partial P(\\tau)}{\\partial \\theta} = V (F(\\tau) \\circ G) V^{-1},
          \\qquad F_{ij}(\\tau) = \\int_0^\\tau e^{\\lambda_i s} e^{\\lambda_j (\\tau - s)} ds
          = \\frac{e^{\\lambda_i \\tau} - e^{\\lambda_j \\tau}}{\\lambda_i - \\lambda_j}

(:math:`\\tau e^{\\lambda_i \\tau}` when the eigenvalues are equal, as they are in JC69 and
K80; computed as :math:`\\tau e^{\\max(\\lambda_i, \\lambda_j) \\tau}
\\mathrm{exprel}(-|\\lambda_i - \\lambda_j| \\tau)`, which is stable for any gap).  So with
:math:`\\tilde N_{e,k} = V^T N_{e,k} V^{-T}` and the one 4 x 4 matrix
:math:`H = \\sum_{e,k} \\tilde N_{e,k} \\circ F(\\tau_{e,k})`,

.. math:: \\frac{\\partial \\ell}{\\partial \\theta} = \\sum_{ij} H_{ij} G_{ij}
          = \\langle V^{-T} H V^T,\\; \\partial Q / \\partial \\theta \\rangle,

so every parameter of :math:`Q` costs a 4 x 4 product once :math:`H` is known, and the
matrix :math:`\\partial \\ell / \\partial Q = V^{-T} H V^T` serves them all.  A category's
rate and a branch length enter :math:`P` as :math:`e^{Q \\tau}`, whose derivative in
:math:`\\tau` is :math:`V \\Lambda e^{\\Lambda \\tau} V^{-1}`:

.. math:: \\frac{\\partial \\ell}{\\partial t_e} = \\sum_k \\rho_k D_{e,k}, \\quad
          \\frac{\\partial \\ell}{\\partial \\rho_k} = \\sum_e t_e D_{e,k}, \\quad
          D_{e,k} = \\sum_i (\\tilde N_{e,k})_{ii} \\lambda_i e^{\\lambda_i \\tau_{e,k}} .

**The model's parameters.**  :math:`Q_{ij} = r_{ij} \\pi_j / \\beta` for :math:`i \\ne j`,
:math:`\\beta = \\sum_i \\pi_i \\sum_{j \\ne i} r_{ij} \\pi_j` (one substitution per unit of
branch length).  The exchangeabilities :math:`r` and the frequencies :math:`\\pi` (taken as
free positive numbers here; a simplex map is applied by the caller) enter through
:math:`\\partial Q / \\partial \\theta = (\\partial \\hat R / \\partial \\theta - Q\\,
\\partial\\beta/\\partial\\theta) / \\beta`; the frequencies also through the root,
:math:`\\sum_k \\omega_k \\sum_p c_p L_{root,k,p}(s)`, and the invariant sites,
:math:`\\sum_p w_p p_{inv} A_{p,s} / L_p` (:math:`A_{p,s}` = 1 when every tip of pattern p
allows s).  The Gamma shape :math:`\\alpha` enters through the category rates:
:math:`\\partial \\ell / \\partial \\alpha = \\sum_k (\\partial \\ell/\\partial\\rho_k)
\\, \\partial \\rho_k / \\partial \\alpha`, the last factor by a central difference of
:func:`~phylo.likelihood.models.gamma_rates` (step :math:`10^{-5}\\alpha`; about ten
correct digits: the rates have no closed-form derivative in the shape, and this costs no
likelihood).  The proportion of invariant sites enters the mixture and the rates
:math:`\\rho_k = \\bar\\rho_k / (1 - p_{inv})`:

.. math:: \\frac{\\partial \\ell}{\\partial p_{inv}} = \\sum_p w_p \\Big[\\frac{1 - f_p}
          {p_{inv}} - \\frac{f_p}{1 - p_{inv}}\\Big] + \\sum_k \\frac{\\partial \\ell}
          {\\partial \\rho_k} \\frac{\\rho_k}{1 - p_{inv}} .

**Cost.**  The pass computes every node's partial per pattern (no site repeats) and keeps
all of them; it gives the branch gradient as well.  ``python benchmarks/likelihood.py
--parameters`` measures it against one likelihood and one branch gradient.

References
----------
Kalbfleisch JD, Lawless JF. 1985. The analysis of panel data under a Markov assumption.
J Am Stat Assoc 80:863-871.
Schadt EE, Sinsheimer JS, Lange K. 1998. Computational advances in maximum likelihood
methods for molecular phylogeny. Genome Res 8:222-233.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from . import _kernels as K
from ._buffers import zeros
from ._families import family
from .models import _PAIRS, Model, gamma_rates
from .tree_likelihood import TreeLikelihood, _pattern_blocks

__all__ = ["ModelDerivatives", "ParameterGradient", "rate_matrix_derivatives"]

#: relative step of the central difference of the Gamma category rates in the shape
SHAPE_STEP = 1e-5
_ROWS = np.array([i for i, _ in _PAIRS])
_COLS = np.array([j for _, j in _PAIRS])
_DIAG = np.arange(4)


@dataclass
class ModelDerivatives:
    """Derivatives of the log-likelihood with respect to the model's natural parameters.

    Attributes
    ----------
    rate_matrix : (4, 4)
        :math:`\\partial \\ell / \\partial Q_{ij}` (all 16 entries taken as free).
    exchangeabilities : (6,)
        :math:`\\partial \\ell / \\partial r` (AC, AG, AT, CG, CT, GT; the rate matrix
        normalised, so ``r @ exchangeabilities == 0``).
    kappa : float
        :math:`\\partial \\ell / \\partial r_{AG} + \\partial \\ell / \\partial r_{CT}`,
        the derivative in K80/HKY's kappa.
    frequencies : (4,)
        :math:`\\partial \\ell / \\partial \\pi_s` with the four frequencies taken as free
        positive numbers (through Q, the root and the invariant sites).
    category_rates : (K,)
        :math:`\\partial \\ell / \\partial \\rho_k`.
    alpha : float or None
        :math:`\\partial \\ell / \\partial \\alpha` (None without Gamma categories).
    pinv : float or None
        :math:`\\partial \\ell / \\partial p_{inv}` (None when :math:`p_{inv} = 0`).
    """

    rate_matrix: np.ndarray
    exchangeabilities: np.ndarray
    kappa: float
    frequencies: np.ndarray
    category_rates: np.ndarray
    alpha: float | None
    pinv: float | None


def rate_matrix_derivatives(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """:math:`\\partial Q / \\partial r` (6, 4, 4) and :math:`\\partial Q / \\partial \\pi`
    (4, 4, 4) of the normalised rate matrix (frequencies taken as free positive numbers)."""
    r = model.exchangeabilities
    pi = model._freqs()
    R = np.zeros((4, 4))
    R[_ROWS, _COLS] = r
    R[_COLS, _ROWS] = r
    q_hat = R * pi[None, :]
    q_hat[_DIAG, _DIAG] = -q_hat.sum(axis=1)
    beta = float(-(pi @ q_hat[_DIAG, _DIAG]))
    Q = q_hat / beta
    # d R_hat / d r_ab: +pi_b at (a, b), +pi_a at (b, a), -pi_b at (a, a), -pi_a at (b, b)
    dr = np.zeros((6, 4, 4))
    m = np.arange(6)
    dr[m, _ROWS, _COLS] = pi[_COLS]
    dr[m, _COLS, _ROWS] = pi[_ROWS]
    dr[m, _ROWS, _ROWS] -= pi[_COLS]
    dr[m, _COLS, _COLS] -= pi[_ROWS]
    dr = (dr - Q[None] * (2.0 * pi[_ROWS] * pi[_COLS])[:, None, None]) / beta
    # d R_hat / d pi_c: column c off the diagonal is R[:, c], the diagonal -R[i, c]
    dpi = np.zeros((4, 4, 4))
    c = np.arange(4)
    dpi[c, :, c] = R.T
    dpi[c[:, None], _DIAG[None, :], _DIAG[None, :]] -= R.T
    dpi[c, c, c] = 0.0
    dbeta = 2.0 * (R @ pi)  # R has a zero diagonal
    dpi = (dpi - Q[None] * dbeta[:, None, None]) / beta
    return dr, dpi


def _shape_derivative(model: Model) -> np.ndarray:
    """d rho_k / d alpha of the variable categories' rates (central difference)."""
    a = float(model.alpha)
    h = SHAPE_STEP * a
    k = model.n_categories
    up = gamma_rates(a + h, k, model.median)
    down = gamma_rates(a - h, k, model.median)
    return (up - down) / (2.0 * h) / (1.0 - model.pinv)


class ParameterGradient:
    """:math:`\\ell`, :math:`\\partial \\ell / \\partial t` and the derivatives in the model's
    parameters of one topology, in one pass (see the module docstring).

    Parameters
    ----------
    likelihood : TreeLikelihood
        Its alignment, topology and rate categories; the model is given per call.

    Examples
    --------
    >>> grad = ParameterGradient(TreeLikelihood(aln, tree, GTR(alpha=0.5)))  # doctest: +SKIP
    >>> ll, dt, dm = grad(t, GTR((1, 2, 1, 1, 3, 1), alpha=0.7))             # doctest: +SKIP
    >>> dm.exchangeabilities, dm.frequencies, dm.alpha                        # doctest: +SKIP
    """

    def __init__(self, likelihood: TreeLikelihood):
        self.likelihood = lik = likelihood
        n_int = lik.n_nodes - lik.n_taxa
        kc, P, E = lik.n_categories, lik.n_patterns, lik.n_branches
        rows = K.count_rows(n_int, kc)
        self._bounds = _pattern_blocks(P, 8 * rows, 1)
        self._buf = zeros((rows, P))
        self._Pm = np.zeros((E, kc, 4, 4))
        self._pairs = np.zeros((E, kc, 4, 4))
        self._root = np.zeros((kc, 4))
        self._site = np.zeros(P)
        self.n_evaluations = 0

    def state_pair_sums(self, t, model: Model | None = None):
        """``(log L, N, root_sums, model, (mv, inv))``: the kernel's sums of state pairs
        (E, K, 4, 4) and root sums (K, 4) at branch lengths ``t`` under ``model`` (default:
        the likelihood's)."""
        lik = self.likelihood
        t = lik._check(t)
        m = (lik.model if model is None else model).resolve(lik.alignment)
        mv, inv = lik.model_vector(m)
        ll = family(mv).state_pair_sums(
            lik._tips2,
            lik._weights,
            inv,
            mv,
            lik._topo,
            t,
            self._Pm,
            self._buf,
            self._site,
            self._pairs,
            self._root,
            self._bounds,
        )
        self.n_evaluations += 1
        return float(ll), self._pairs, self._root, m, (mv, inv)

    def __call__(self, t, model: Model | None = None):
        """``(log L, dlogL/dt, ModelDerivatives)`` at branch lengths ``t`` under ``model``
        (default: the likelihood's)."""
        lik = self.likelihood
        t = lik._check(t)
        ll, N, root, m, (mv, inv) = self.state_pair_sums(t, model)
        with np.errstate(over="ignore", invalid="ignore"):  # absurd lengths: inf or NaN
            return self._derivatives(ll, t, N, root, m, inv)

    def _derivatives(self, ll, t, N, root, m, inv):
        lik = self.likelihood
        lam, V, Vinv = m.eigen()
        rho = m.category_rates()
        omega = m.category_weights()
        tau = t[:, None] * rho[None, :]  # (E, K)
        Nt = V.T @ N @ Vinv.T  # (E, K, 4, 4): V^T N V^-T
        ex = np.exp(lam[None, None, :] * tau[:, :, None])  # (E, K, 4)
        D = (np.diagonal(Nt, axis1=2, axis2=3) * lam * ex).sum(axis=2)  # (E, K)
        dt = D @ rho
        drho = t @ D
        gap = np.abs(lam[:, None] - lam[None, :])
        top = np.maximum(lam[:, None], lam[None, :])
        tt = tau[:, :, None, None]
        F = tt * np.exp(top * tt) * special.exprel(-gap * tt)
        H = (Nt * F).sum(axis=(0, 1))
        dQ = Vinv.T @ H @ V.T
        dQr, dQpi = rate_matrix_derivatives(m)
        d_r = dQr.reshape(6, 16) @ dQ.reshape(16)
        d_pi = dQpi.reshape(4, 16) @ dQ.reshape(16) + omega @ root
        frac = self._buf[K.CM_FRAC]
        w = lik._weights
        pinv = float(m.pinv)
        d_pinv = None
        if pinv > 0.0:
            ok = inv > 0.0
            share = np.where(ok, w * (1.0 - frac) / np.where(ok, inv, 1.0), 0.0)
            d_pi = d_pi + lik._invariant @ share
            d_pinv = float(
                np.sum(w * ((1.0 - frac) / pinv - frac / (1.0 - pinv))) + drho @ rho / (1.0 - pinv)
            )
        d_alpha = None
        if m.alpha is not None and m.n_categories > 1:
            d_alpha = float(drho @ _shape_derivative(m))
        return (
            ll,
            dt,
            ModelDerivatives(
                rate_matrix=dQ,
                exchangeabilities=d_r,
                kappa=float(d_r[1] + d_r[4]),
                frequencies=d_pi,
                category_rates=drho,
                alpha=d_alpha,
                pinv=d_pinv,
            ),
        )
