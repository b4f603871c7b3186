r"""Bayesian compression (Louizos, Ullrich & Welling 2017, "Bayesian Compression for Deep
Learning", NeurIPS): KL terms of the group sparsity priors, and bit precision from posterior
variances.

**Group normal–Jeffreys prior (BC-GNJ).**  Each input unit (group) :math:`i` of a layer has a
scale :math:`z_i` with the log-uniform prior :math:`p(z_i) \propto 1/|z_i|` and
:math:`p(w_{ij} \mid z_i) = \mathcal{N}(0, z_i^2)`.  With
:math:`q(z_i) = \mathcal{N}(\mu_{z_i}, \mu_{z_i}^2\alpha_i)` and
:math:`q(w_{ij}\mid z_i) = \mathcal{N}(z_i\mu_{ij}, z_i^2\sigma_{ij}^2)`,

.. math:: \mathrm{KL} = \sum_i \mathrm{KL}(q(z_i)\,\|\,p(z_i))
          + \sum_{ij} \tfrac12\big(\sigma_{ij}^2 + \mu_{ij}^2 - 1 - \log\sigma_{ij}^2\big),

the first term being the sparse variational dropout approximation
(:func:`phylo.ml.sparse_vd.kl_approximation`) at
:math:`\log\alpha_i = \log\sigma_{z_i}^2 - \log\mu_{z_i}^2`; the scale :math:`z_i` cancels in
the second.

**Group horseshoe prior (BC-GHS).**  :math:`s \sim C^+(0, \tau_0)`,
:math:`\tilde z_i \sim C^+(0, 1)`, :math:`w_{ij} \sim \mathcal{N}(0, \tilde z_i^2 s^2)`, written
non-centred as :math:`w_{ij} = \tilde z_i s\, \tilde w_{ij}` with
:math:`\tilde w_{ij} \sim \mathcal{N}(0,1)`.  Each half-Cauchy is split into a gamma and an
inverse gamma: if :math:`a \sim \mathrm{Gamma}(\tfrac12, \text{rate } 1/\tau^2)` and
:math:`b \sim \mathrm{InvGamma}(\tfrac12, \text{scale } 1)` then :math:`\sqrt{ab} \sim
C^+(0, \tau)` (write :math:`\tau\, |Z|/|W|` for standard normal :math:`Z, W`).  So
:math:`s^2 = s_a s_b` with :math:`s_a \sim \mathrm{Gamma}(\tfrac12, \tau_0^{-2})`,
:math:`s_b \sim \mathrm{InvGamma}(\tfrac12, 1)`, and :math:`\tilde z_i^2 = \tilde\alpha_i
\tilde\beta_i` with :math:`\tilde\alpha_i \sim \mathrm{Gamma}(\tfrac12, 1)`,
:math:`\tilde\beta_i \sim \mathrm{InvGamma}(\tfrac12, 1)`.  (The paper writes
:math:`\mathcal{G}(\tfrac12, \tau_0^2)` with the scale convention.)  The posteriors of all four
are log-normal, :math:`\mathcal{LN}(\mu, \sigma^2)`, whose KL divergences to the priors are
closed-form: for :math:`\mathrm{Gamma}(a, \text{rate } r)`,

.. math:: \mathrm{KL} = -\mu - \tfrac12 - \tfrac12\log(2\pi\sigma^2) - a\log r + \log\Gamma(a)
          - (a-1)\mu + r\,e^{\mu + \sigma^2/2},

and for :math:`\mathrm{InvGamma}(a, \text{scale } c)`,

.. math:: \mathrm{KL} = -\mu - \tfrac12 - \tfrac12\log(2\pi\sigma^2) - a\log c + \log\Gamma(a)
          + (a+1)\mu + c\,e^{-\mu + \sigma^2/2}.

**Bit precision.**  A weight whose marginal posterior variance is :math:`V` cannot be pinned
down more finely than its posterior spread, so the significand needs only enough bits for the
unit round-off :math:`u(t) = \tfrac12\, 2^{1-t}` to stay above it.  Following the public
reference implementation, a weight needs :math:`t(V) = \#\{t \in 1..23 : 2V < u(t)\}`
significand bits, a layer uses the ceiling of the mean (or another reduction) of
:math:`t(V)` over its weights, and the exponent needs
:math:`\lceil \log_2(\log_2(\text{max}|w|) + 1) + 1\rceil` bits.  The marginal posterior of
:math:`w = z\tilde w` under BC-GNJ has mean :math:`\mu_z\mu_w` and variance
:math:`\mu_z^2\sigma_w^2 + \sigma_z^2\mu_w^2 + \sigma_z^2\sigma_w^2`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, positive_int, positive_scalar
from phylo.ml.sparse_vd import kl_approximation

_LOG_2PI = np.log(2.0 * np.pi)


def kl_standard_normal(mu, log_sigma2) -> np.ndarray:
    r""":math:`\mathrm{KL}(\mathcal{N}(\mu,\sigma^2)\,\|\,\mathcal{N}(0,1)) =
    \tfrac12(\sigma^2 + \mu^2 - 1 - \log\sigma^2)`, elementwise."""
    mu = as_float_array(mu, "mu")
    ls2 = as_float_array(log_sigma2, "log_sigma2")
    return 0.5 * (np.exp(ls2) + mu**2 - 1.0 - ls2)


def kl_lognormal_gamma(mu, log_sigma2, shape: float, rate: float) -> np.ndarray:
    r""":math:`\mathrm{KL}(\mathcal{LN}(\mu,\sigma^2)\,\|\,\mathrm{Gamma}(a, \text{rate } r))`."""
    mu = as_float_array(mu, "mu")
    ls2 = as_float_array(log_sigma2, "log_sigma2")
    a = positive_scalar(shape, "shape")
    r = positive_scalar(rate, "rate")
    neg_entropy = -mu - 0.5 - 0.5 * (_LOG_2PI + ls2)
    cross = a * np.log(r) - gammaln(a) + (a - 1.0) * mu - r * np.exp(mu + 0.5 * np.exp(ls2))
    return neg_entropy - cross


def kl_lognormal_inverse_gamma(mu, log_sigma2, shape: float, scale: float) -> np.ndarray:
    r""":math:`\mathrm{KL}(\mathcal{LN}(\mu,\sigma^2)\,\|\,\mathrm{InvGamma}(a, \text{scale } c))`."""
    mu = as_float_array(mu, "mu")
    ls2 = as_float_array(log_sigma2, "log_sigma2")
    a = positive_scalar(shape, "shape")
    c = positive_scalar(scale, "scale")
    neg_entropy = -mu - 0.5 - 0.5 * (_LOG_2PI + ls2)
    cross = a * np.log(c) - gammaln(a) - (a + 1.0) * mu - c * np.exp(-mu + 0.5 * np.exp(ls2))
    return neg_entropy - cross


def kl_group_normal_jeffreys(z_mu, z_log_sigma2, w_mu, w_log_sigma2, eps: float = 1e-8) -> float:
    r"""Total KL of a BC-GNJ layer (groups along the last axis of the weights).

    Parameters
    ----------
    z_mu, z_log_sigma2
        Posterior mean and log-variance of the group scales, shape ``(d_in,)``.
    w_mu, w_log_sigma2
        Posterior means and log-variances of the weights, shape ``(d_out, d_in)``.
    eps
        Added to :math:`\mu_z^2` inside the logarithm.
    """
    z_mu = as_float_array(z_mu, "z_mu", ndim=1)
    z_ls2 = as_float_array(z_log_sigma2, "z_log_sigma2", ndim=1)
    la = z_ls2 - np.log(z_mu**2 + eps)
    return float(np.sum(kl_approximation(la)) + np.sum(kl_standard_normal(w_mu, w_log_sigma2)))


def kl_group_horseshoe(
    sa_mu,
    sa_log_sigma2,
    sb_mu,
    sb_log_sigma2,
    alpha_mu,
    alpha_log_sigma2,
    beta_mu,
    beta_log_sigma2,
    w_mu,
    w_log_sigma2,
    tau0: float,
) -> float:
    r"""Total KL of a BC-GHS layer with log-normal posteriors on the scale factors.

    ``sa_*`` and ``sb_*`` parameterise :math:`q(s_a)`, :math:`q(s_b)` (scalars);
    ``alpha_*``, ``beta_*`` the per-group :math:`q(\tilde\alpha_i)`, :math:`q(\tilde\beta_i)`;
    ``w_*`` the Gaussian :math:`q(\tilde w_{ij})`.  ``tau0`` is the global half-Cauchy scale.
    """
    tau0 = positive_scalar(tau0, "tau0")
    total = kl_lognormal_gamma(sa_mu, sa_log_sigma2, 0.5, tau0**-2)
    total = total + kl_lognormal_inverse_gamma(sb_mu, sb_log_sigma2, 0.5, 1.0)
    total = np.sum(total)
    total += np.sum(kl_lognormal_gamma(alpha_mu, alpha_log_sigma2, 0.5, 1.0))
    total += np.sum(kl_lognormal_inverse_gamma(beta_mu, beta_log_sigma2, 0.5, 1.0))
    total += np.sum(kl_standard_normal(w_mu, w_log_sigma2))
    return float(total)


def posterior_weight_moments(z_mu, z_var, w_mu, w_var):
    r"""Mean and variance of :math:`w = z\tilde w` for independent Gaussian :math:`z, \tilde w`.

    :math:`\mathbb{E}w = \mu_z\mu_w`,
    :math:`\mathbb{V}w = \mu_z^2\sigma_w^2 + \sigma_z^2\mu_w^2 + \sigma_z^2\sigma_w^2`.
    Shapes broadcast (e.g. ``z`` of shape ``(d_in,)`` against weights ``(d_out, d_in)``).
    """
    z_mu, z_var = as_float_array(z_mu, "z_mu"), as_float_array(z_var, "z_var")
    w_mu, w_var = as_float_array(w_mu, "w_mu"), as_float_array(w_var, "w_var")
    if (z_var < 0).any() or (w_var < 0).any():
        raise InputError("z_var, w_var: variances must be non-negative")
    return z_mu * w_mu, z_mu**2 * w_var + z_var * w_mu**2 + z_var * w_var


def unit_round_off(bits) -> np.ndarray:
    r""":math:`u(t) = \tfrac12\, 2^{1-t}` for :math:`t` significand bits (round to nearest)."""
    return 0.5 * 2.0 ** (1.0 - np.asarray(bits, dtype=np.float64))


def significand_bits(variance, max_bits: int = 23) -> np.ndarray:
    r"""Bits per weight: :math:`t(V) = \#\{t \in 1..\text{max\_bits} : 2V < u(t)\}`."""
    v = as_float_array(variance, "variance")
    if (v < 0).any():
        raise InputError("variance: must be non-negative")
    max_bits = positive_int(max_bits, "max_bits")
    u = unit_round_off(np.arange(1, max_bits + 1))
    return np.sum(2.0 * v[..., None] < u, axis=-1)


def layer_bit_precision(variances, max_abs_weight: float, reduce: str = "mean", max_bits: int = 23):
    r"""Significand and exponent bits for one layer.

    Parameters
    ----------
    variances
        Marginal posterior variances of the layer's (unpruned) weights.
    max_abs_weight
        Largest absolute posterior mean to be represented (values below 1 count as 1).
    reduce
        ``"mean"`` (the reference implementation), ``"max"`` or ``"min"`` of the per-weight
        :func:`significand_bits`, rounded up.

    Returns
    -------
    significand : int
    exponent : int
        :math:`\lceil \log_2(\log_2 \max(|w|_{max}, 1) + 1) + 1\rceil`.
    """
    bits = significand_bits(variances, max_bits)
    if bits.size == 0:
        raise InputError("variances: the layer has no weights")
    funcs = {"mean": np.mean, "max": np.max, "min": np.min}
    if reduce not in funcs:
        raise InputError(f"reduce: expected one of {sorted(funcs)}, got {reduce!r}")
    significand = int(np.ceil(funcs[reduce](bits)))
    overflow = max(float(max_abs_weight), 1.0)
    exponent = int(np.ceil(np.log2(np.log2(overflow) + 1.0) + 1.0))
    return significand, exponent


def round_to_bits(weights, bits: int) -> np.ndarray:
    r"""Round to the grid of spacing :math:`u(t)`: :math:`u\,\lfloor w/u + \tfrac12\rfloor`."""
    w = as_float_array(weights, "weights")
    delta = unit_round_off(positive_int(bits, "bits"))
    return np.floor(w / delta + 0.5) * delta
