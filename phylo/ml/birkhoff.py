r"""Relaxations of permutations to the Birkhoff polytope (Linderman, Mena, Cooper, Paninski &
Cunningham 2018, "Reparameterizing the Birkhoff Polytope for Variational Permutation
Inference", AISTATS).

The Birkhoff polytope :math:`\mathcal{B}_N` is the set of :math:`N \times N` doubly stochastic
matrices (non-negative, rows and columns summing to one); its vertices are the permutation
matrices.  Three tools:

**Sinkhorn–Knopp.**  Alternately normalising the rows and the columns of a positive matrix
:math:`A` converges to the unique doubly stochastic matrix :math:`D_1 A D_2` with positive
diagonal :math:`D_1, D_2` (Sinkhorn 1964).  It is done here in log space.

**Stick-breaking.**  A matrix :math:`B \in [0,1]^{(N-1)\times(N-1)}` is mapped to
:math:`X \in \mathcal{B}_N` entry by entry in raster order (rows top to bottom, columns left
to right): :math:`x_{mn} = \ell_{mn} + \beta_{mn}(u_{mn} - \ell_{mn})` with

.. math::
   u_{mn} &= \min\Big\{1 - \sum_{k<n} x_{mk},\; 1 - \sum_{k<m} x_{kn}\Big\}, \\
   \ell_{mn} &= \max\Big\{0,\; 1 - N + n - \sum_{k<n} x_{mk}
               + \sum_{k<m}\sum_{j>n} x_{kj}\Big\},

the last column and the last row being whatever the row and column sums leave.  The upper
bound keeps the row and column sums below one; the lower bound leaves no more stick in the row
than the remaining columns can still take.  Because :math:`x_{mn}` depends only on
:math:`\beta_{mn}` and earlier entries, the Jacobian of :math:`B \mapsto X_{1:N-1,1:N-1}` is
triangular and

.. math:: \log\left|\det \frac{\partial X}{\partial B}\right| = \sum_{m,n<N} \log(u_{mn} - \ell_{mn}).

With a Gaussian :math:`\Psi \sim \mathcal{N}(\mu, \nu^2)` and
:math:`\beta_{mn} = \sigma(\psi_{mn}/\tau)` the Jacobian gains
:math:`\sum \log[\sigma(\psi/\tau)\,\sigma(-\psi/\tau)/\tau]`, which gives the density
:math:`q_\tau(X) = \mathcal{N}(\Psi; \mu, \nu^2) / |\det \partial X/\partial\Psi|`.

**Rounding.**  With :math:`\widetilde M = \mathrm{Sinkhorn}(M)`,
:math:`\Psi = \widetilde M + V \odot Z` (:math:`Z` standard normal) and
:math:`\mathrm{round}(\Psi)` the permutation matrix nearest to :math:`\Psi` in Frobenius norm
(Hungarian algorithm, maximising :math:`\mathrm{tr}(P^T\Psi)`),

.. math:: X = \tau \Psi + (1 - \tau)\,\mathrm{round}(\Psi), \qquad \tau \in (0, 1].

For every permutation :math:`Q`,
:math:`\mathrm{tr}(Q^T X) = \tau\,\mathrm{tr}(Q^T\Psi) + (1-\tau)\,\mathrm{tr}(Q^T P)`
is maximised by :math:`Q = P = \mathrm{round}(\Psi)`, so :math:`\mathrm{round}(X) =
\mathrm{round}(\Psi)`, the map is invertible on its image, piecewise affine with Jacobian
:math:`\tau^{N^2}`, and

.. math:: q_\tau(X) = \prod_{m,n} \frac{1}{\tau \nu_{mn}}\,
          \mathcal{N}\Big(\frac{\psi_{mn} - \widetilde m_{mn}}{\nu_{mn}}; 0, 1\Big)
          \;\mathbb{1}[\mathrm{round}(\Psi) = \mathrm{round}(X)],
          \quad \Psi = \frac{X - (1-\tau)\,\mathrm{round}(X)}{\tau}.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import expit, log_expit, logsumexp

from phylo.errors import InputError
from phylo.ml import _kernels
from phylo.ml._checks import as_float_array, generator, positive_int, positive_scalar

_LOG_2PI = np.log(2.0 * np.pi)


def _square_batch(x, name, allow_neg_inf=False):
    x = as_float_array(x, name, allow_neg_inf=allow_neg_inf)
    if x.ndim not in (2, 3) or x.shape[-1] != x.shape[-2]:
        raise InputError(f"{name}: expected a square matrix or a batch of them, got {x.shape}")
    single = x.ndim == 2
    return (x[None] if single else x), single


def sinkhorn(
    log_alpha, temperature: float = 1.0, tol: float = 1e-12, max_iter: int = 100_000
) -> np.ndarray:
    r"""Sinkhorn–Knopp normalisation of :math:`\exp(\log\alpha / \tau)` in log space.

    Parameters
    ----------
    log_alpha
        Log of a positive matrix, shape ``(N, N)`` or ``(m, N, N)``; ``-inf`` entries (zeros)
        are allowed if a doubly stochastic pattern remains.
    temperature
        :math:`\tau`; small values push the result towards a permutation matrix.
    tol
        Stop when every row sum is within ``tol`` of one (after a column normalisation).
    max_iter
        Give up (with :class:`~phylo.errors.InputError`) after this many sweeps.

    Returns
    -------
    ndarray
        Doubly stochastic matrices of the input's shape.
    """
    la, single = _square_batch(log_alpha, "log_alpha", allow_neg_inf=True)
    la = la / positive_scalar(temperature, "temperature")
    max_iter = positive_int(max_iter, "max_iter")
    for _ in range(max_iter):
        la = la - logsumexp(la, axis=2, keepdims=True)
        la = la - logsumexp(la, axis=1, keepdims=True)
        err = np.abs(np.exp(logsumexp(la, axis=2)) - 1.0).max()
        if err <= tol:
            break
    else:
        raise InputError(
            f"log_alpha: Sinkhorn did not converge in {max_iter} sweeps "
            "(is there a doubly stochastic matrix with this zero pattern?)"
        )
    out = np.exp(la)
    return out[0] if single else out


def stick_breaking(beta):
    r"""Map :math:`B \in [0,1]^{(N-1)\times(N-1)}` to a doubly stochastic :math:`X`.

    Parameters
    ----------
    beta
        Shape ``(N-1, N-1)`` or ``(m, N-1, N-1)``, entries in :math:`[0, 1]`.

    Returns
    -------
    x : ndarray, shape (N, N) or (m, N, N)
    log_det : float or ndarray, shape (m,)
        :math:`\log|\det \partial X_{1:N-1,1:N-1}/\partial B| = \sum\log(u_{mn} - \ell_{mn})`.
    """
    b, single = _square_batch(beta, "beta")
    if ((b < 0) | (b > 1)).any():
        raise InputError("beta: entries must lie in [0, 1]")
    x, logdet = _kernels.stick_breaking_forward(np.ascontiguousarray(b))
    return (x[0], float(logdet[0])) if single else (x, logdet)


def inverse_stick_breaking(x):
    r"""Invert :func:`stick_breaking`: :math:`\beta_{mn} = (x_{mn} - \ell_{mn})/(u_{mn} - \ell_{mn})`.

    Returns
    -------
    beta : ndarray, shape (N-1, N-1) or (m, N-1, N-1)
    log_det : float or ndarray
        The forward :math:`\log|\det \partial X/\partial B|` at that point.
    """
    xx, single = _square_batch(x, "x")
    if xx.shape[-1] < 2:
        raise InputError("x: need at least a 2 x 2 matrix")
    beta, logdet = _kernels.stick_breaking_inverse(np.ascontiguousarray(xx))
    return (beta[0], float(logdet[0])) if single else (beta, logdet)


def _sigmoid_log_det(psi, tau):
    z = psi / tau
    return np.sum(log_expit(z) + log_expit(-z), axis=(-2, -1)) - psi.shape[-1] ** 2 * np.log(tau)


def stick_breaking_from_gaussian(psi, temperature: float):
    r"""Map real :math:`\Psi` through :math:`\beta = \sigma(\Psi/\tau)` and stick-breaking.

    Returns
    -------
    x : ndarray
        Doubly stochastic matrices.
    log_det : float or ndarray
        :math:`\log|\det \partial X_{1:N-1,1:N-1} / \partial \Psi|`, including the logistic
        factor :math:`\sum\log[\sigma(\psi/\tau)\sigma(-\psi/\tau)/\tau]`.
    """
    psi = as_float_array(psi, "psi")
    tau = positive_scalar(temperature, "temperature")
    x, logdet = stick_breaking(expit(psi / tau))
    return x, logdet + _sigmoid_log_det(psi, tau)


def sample_stick_breaking(
    mu, sigma, temperature: float, rng: np.random.Generator, size: int | None = None
):
    r"""Sample :math:`X` from the stick-breaking distribution with Gaussian :math:`\Psi`.

    Parameters
    ----------
    mu, sigma
        Mean and standard deviation of :math:`\Psi`, shape ``(N-1, N-1)``.
    temperature
        :math:`\tau`.
    rng
        Source of randomness.
    size
        Number of samples (``None`` for one).

    Returns
    -------
    x : ndarray
    log_density : float or ndarray
        :math:`\log q_\tau(X)`.
    """
    rng = generator(rng)
    mu = as_float_array(mu, "mu", ndim=2)
    sigma = as_float_array(sigma, "sigma", ndim=2)
    if sigma.shape != mu.shape or (sigma <= 0).any():
        raise InputError("sigma: expected positive entries, shape of mu")
    shape = mu.shape if size is None else (positive_int(size, "size"),) + mu.shape
    z = rng.standard_normal(shape)
    psi = mu + sigma * z
    x, logdet = stick_breaking_from_gaussian(psi, temperature)
    log_gauss = np.sum(-0.5 * z**2 - np.log(sigma) - 0.5 * _LOG_2PI, axis=(-2, -1))
    return x, log_gauss - logdet


def stick_breaking_log_density(x, mu, sigma, temperature: float):
    r"""Log-density of the stick-breaking distribution at doubly stochastic ``x``.

    :math:`\log q_\tau(X) = \log\mathcal{N}(\Psi; \mu, \sigma^2)
    - \log|\det\partial X/\partial\Psi|`, with :math:`\Psi` recovered by inverting the map.
    """
    mu = as_float_array(mu, "mu", ndim=2)
    sigma = as_float_array(sigma, "sigma", ndim=2)
    tau = positive_scalar(temperature, "temperature")
    beta, logdet_b = inverse_stick_breaking(x)
    beta = np.clip(beta, 1e-300, 1.0 - 1e-16)
    psi = tau * (np.log(beta) - np.log1p(-beta))
    logdet = logdet_b + _sigmoid_log_det(psi, tau)
    z = (psi - mu) / sigma
    log_gauss = np.sum(-0.5 * z**2 - np.log(sigma) - 0.5 * _LOG_2PI, axis=(-2, -1))
    return log_gauss - logdet


def round_to_permutation(x) -> np.ndarray:
    r"""The permutation matrix nearest in Frobenius norm: :math:`\arg\max_P \mathrm{tr}(P^T X)`.

    Uses the Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`).
    Accepts ``(N, N)`` or ``(m, N, N)``.
    """
    xx, single = _square_batch(x, "x")
    out = np.zeros_like(xx)
    for s in range(xx.shape[0]):
        rows, cols = linear_sum_assignment(xx[s], maximize=True)
        out[s, rows, cols] = 1.0
    return out[0] if single else out


def sample_rounding(m, v, temperature: float, rng: np.random.Generator, size: int | None = None):
    r"""Sample :math:`X = \tau\Psi + (1-\tau)\,\mathrm{round}(\Psi)`.

    Here :math:`\Psi = \mathrm{Sinkhorn}(M) + V\odot Z` with standard normal :math:`Z`.

    Parameters
    ----------
    m
        Positive matrix :math:`M`, shape ``(N, N)``.
    v
        Positive noise scales :math:`V` (standard deviations), shape ``(N, N)``.
    temperature
        :math:`\tau \in (0, 1]`.
    rng
        Source of randomness.
    size
        Number of samples (``None`` for one).

    Returns
    -------
    x : ndarray
    psi : ndarray
        The Gaussian matrices :math:`\Psi` that were rounded.
    """
    rng = generator(rng)
    m = as_float_array(m, "m", ndim=2)
    v = as_float_array(v, "v", ndim=2)
    tau = positive_scalar(temperature, "temperature")
    if tau > 1.0:
        raise InputError("temperature: rounding needs tau in (0, 1]")
    if (m <= 0).any() or v.shape != m.shape or (v <= 0).any():
        raise InputError("m, v: expected positive matrices of equal shape")
    m_ds = sinkhorn(np.log(m))
    shape = m.shape if size is None else (positive_int(size, "size"),) + m.shape
    psi = m_ds + v * rng.standard_normal(shape)
    return tau * psi + (1.0 - tau) * round_to_permutation(psi), psi


def rounding_log_density(x, m, v, temperature: float):
    r"""Log-density :math:`\log q_\tau(X)` of :func:`sample_rounding` (``-inf`` off its image)."""
    xx, single = _square_batch(x, "x")
    m = as_float_array(m, "m", ndim=2)
    v = as_float_array(v, "v", ndim=2)
    tau = positive_scalar(temperature, "temperature")
    if (m <= 0).any() or v.shape != m.shape or (v <= 0).any():
        raise InputError("m, v: expected positive matrices of equal shape")
    m_ds = sinkhorn(np.log(m))
    p = round_to_permutation(xx)
    psi = (xx - (1.0 - tau) * p) / tau
    z = (psi - m_ds) / v
    out = np.sum(-0.5 * z**2 - np.log(tau * v) - 0.5 * _LOG_2PI, axis=(-2, -1))
    outside = np.any(round_to_permutation(psi) != p, axis=(-2, -1))
    out = np.where(outside, -np.inf, out)
    return float(out[0]) if single else out
