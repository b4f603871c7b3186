r"""Sparse variational dropout (Molchanov, Ashukha & Vetrov 2017, "Variational Dropout
Sparsifies Deep Neural Networks", ICML).

Each weight has the posterior :math:`q(w_{ij}) = \mathcal{N}(\theta_{ij}, \alpha_{ij}\theta_{ij}^2)`
and the log-uniform prior :math:`p(|w_{ij}|) \propto 1/|w_{ij}|`.

**Parameterisation.**  Training the dropout rate :math:`\alpha` directly gives gradients of
enormous variance when :math:`\alpha` is large.  The *additive noise reparameterisation* trains
:math:`\theta` and :math:`\log\sigma^2` instead, with :math:`w = \theta + \sigma\varepsilon`, and

.. math:: \log\alpha = \mathrm{clip}\big(\log\sigma^2 - \log\theta^2,\ -8,\ 8\big).

With the local reparameterisation trick a dense layer samples its pre-activations directly,
:math:`b = x\theta + \sqrt{x^2 (\alpha\theta^2)}\,\varepsilon`.  A weight with
:math:`\log\alpha \ge 3` (:math:`\alpha > e^3 \approx 20`, dropout rate above 95%) is set to zero
at test time.

**KL divergence.**  Up to a constant, :math:`-\mathrm{KL}(q \,\|\, p)` depends on
:math:`\alpha` only:

.. math:: -\mathrm{KL}(\alpha) = \tfrac12\log\alpha
          - \mathbb{E}_{\varepsilon\sim\mathcal{N}(1,\alpha)}\log|\varepsilon| + C.

The paper approximates it by

.. math:: -\mathrm{KL} \approx k_1\,\sigma(k_2 + k_3\log\alpha)
          - \tfrac12\log(1 + \alpha^{-1}) - k_1,
          \quad k_1 = 0.63576,\ k_2 = 1.87320,\ k_3 = 1.48695,

where :math:`C = -k_1` makes the approximation vanish as :math:`\alpha\to\infty`.  The exact
integral has the same limit when :math:`C = -(\gamma + \log 2)/2` (since
:math:`\mathbb{E}\log|\xi| = -(\gamma+\log 2)/2` for standard normal :math:`\xi`);
:func:`kl_numerical` evaluates it by adaptive quadrature with the logarithmic singularity at
:math:`\varepsilon = 0` integrated by a weighted rule.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate
from scipy.special import expit

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, generator, positive_scalar

K1 = 0.63576
K2 = 1.87320
K3 = 1.48695
#: Weights with log alpha at or above this are pruned.
THRESHOLD = 3.0
#: log alpha is clipped to [-LOG_ALPHA_CLIP, LOG_ALPHA_CLIP].
LOG_ALPHA_CLIP = 8.0
_EULER_GAMMA = 0.5772156649015329


def log_alpha(theta, log_sigma2, clip: float = LOG_ALPHA_CLIP, eps: float = 1e-8) -> np.ndarray:
    r""":math:`\mathrm{clip}(\log\sigma^2 - \log(\theta^2 + \epsilon), -c, c)`.

    ``eps`` guards against :math:`\theta = 0` (as the reference implementation's convolutional
    layer does); ``clip=None`` disables clipping.
    """
    theta = as_float_array(theta, "theta")
    log_sigma2 = as_float_array(log_sigma2, "log_sigma2")
    out = log_sigma2 - np.log(theta**2 + eps)
    if clip is not None:
        c = positive_scalar(clip, "clip")
        out = np.clip(out, -c, c)
    return out


def keep_mask(log_alpha_values, threshold: float = THRESHOLD) -> np.ndarray:
    r"""Weights kept at test time: :math:`\log\alpha < \text{threshold}`."""
    return as_float_array(log_alpha_values, "log_alpha") < float(threshold)


def kl_approximation(log_alpha_values) -> np.ndarray:
    r"""Molchanov et al.'s approximation of :math:`\mathrm{KL}(q\,\|\,p)` per weight.

    .. math:: \mathrm{KL} \approx k_1 - k_1\sigma(k_2 + k_3\log\alpha)
              + \tfrac12\log(1 + e^{-\log\alpha})
    """
    la = as_float_array(log_alpha_values, "log_alpha")
    return K1 - K1 * expit(K2 + K3 * la) + 0.5 * np.logaddexp(0.0, -la)


def _expected_log_abs(alpha: float) -> float:
    """E log|1 + sqrt(alpha) xi| for standard normal xi, by quadrature."""
    s = np.sqrt(alpha)
    x0 = -1.0 / s
    phi = lambda x: np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)  # noqa: E731
    smooth = lambda x: phi(x) * np.log(abs(1.0 + s * x))  # noqa: E731
    opts = dict(epsabs=1e-13, epsrel=1e-12, limit=200)
    total = integrate.quad(smooth, -np.inf, x0 - 1.0, **opts)[0]
    total += integrate.quad(smooth, x0 + 1.0, np.inf, **opts)[0]
    # near the singularity: log|1 + s x| = log s + log|x - x0|
    for a, b, w in ((x0 - 1.0, x0, "alg-logb"), (x0, x0 + 1.0, "alg-loga")):
        total += np.log(s) * integrate.quad(phi, a, b, **opts)[0]
        total += integrate.quad(phi, a, b, weight=w, wvar=(0.0, 0.0), **opts)[0]
    return total


def kl_numerical(log_alpha_values) -> np.ndarray:
    r"""The KL term by numerical integration, with the constant that makes it vanish at infinity.

    .. math:: \mathrm{KL}(\alpha) = -\tfrac12\log\alpha
              + \mathbb{E}_{\xi\sim\mathcal{N}(0,1)}\log|1 + \sqrt\alpha\,\xi|
              + \tfrac12(\gamma + \log 2)
    """
    la = as_float_array(log_alpha_values, "log_alpha")
    flat = [
        (-0.5 * a + _expected_log_abs(np.exp(a)) + 0.5 * (_EULER_GAMMA + np.log(2.0)))
        for a in la.ravel()
    ]
    return np.array(flat).reshape(la.shape)


def dense_forward(
    x,
    theta,
    log_sigma2,
    rng: np.random.Generator | None = None,
    threshold: float = THRESHOLD,
    clip: float = LOG_ALPHA_CLIP,
) -> np.ndarray:
    r"""A dense sparse-VD layer, ``x @ W`` with ``W`` of shape ``(d_in, d_out)``.

    With ``rng`` (training): the local reparameterisation
    :math:`x\theta + \sqrt{x^2(\alpha\theta^2)}\,\varepsilon`, :math:`\varepsilon` standard
    normal per output.  Without ``rng`` (test time): :math:`x\,(\theta \odot
    \mathbb{1}[\log\alpha < \text{threshold}])`.
    """
    x = as_float_array(x, "x")
    theta = as_float_array(theta, "theta", ndim=2)
    la = log_alpha(theta, log_sigma2, clip)
    if x.shape[-1] != theta.shape[0]:
        raise InputError(f"x: last axis must have length {theta.shape[0]}")
    if rng is None:
        return x @ np.where(keep_mask(la, threshold), theta, 0.0)
    rng = generator(rng)
    mean = x @ theta
    var = (x * x) @ (np.exp(la) * theta**2)
    return mean + np.sqrt(var) * rng.standard_normal(mean.shape)
