r"""The Concrete (Gumbel-softmax) relaxation of categorical variables (Maddison, Mnih & Teh
2017, "The Concrete Distribution"; Jang, Gu & Poole 2017, "Categorical Reparameterization with
Gumbel-Softmax").

**Sampling.**  With location parameters :math:`\alpha_k = e^{\phi_k}` (logits :math:`\phi`),
temperature :math:`\lambda > 0` and :math:`G_k \sim \mathrm{Gumbel}(0, 1)` independent,

.. math:: X_k = \frac{\exp((\phi_k + G_k)/\lambda)}{\sum_{i=1}^n \exp((\phi_i + G_i)/\lambda)},

a point of the open simplex.  As :math:`\lambda \to 0` it tends to the one-hot vector of
:math:`\arg\max_k(\phi_k + G_k)`, a categorical sample (Gumbel-max); for every
:math:`\lambda` the argmax of :math:`X` is that same category.

**Density** (Maddison et al. 2017, eq. 2), with respect to Lebesgue measure on
:math:`(x_1, \dots, x_{n-1})`:

.. math:: p_{\alpha,\lambda}(x) = (n-1)!\, \lambda^{n-1} \prod_{k=1}^n
          \frac{\alpha_k x_k^{-\lambda-1}}{\sum_{i=1}^n \alpha_i x_i^{-\lambda}}.

For :math:`n = 2` the first coordinate is the *binary Concrete*
:math:`X = \sigma((\phi_1 - \phi_2 + L)/\lambda)`, :math:`L \sim \mathrm{Logistic}(0,1)`.

**Gradients.**  The relaxed sample is a differentiable function of the logits,

.. math:: \frac{\partial X}{\partial \phi} = \frac{1}{\lambda}\big(\mathrm{diag}(X) - X X^T\big),

so :math:`\nabla_\phi f(X) = \frac{1}{\lambda} X \odot (\nabla f - \langle X, \nabla f\rangle)`
(:func:`concrete_vjp`).  The *straight-through* Gumbel-softmax estimator (Jang et al. 2017)
evaluates :math:`f` at the hard one-hot sample :math:`H = \mathrm{onehot}(\arg\max X)` and
back-propagates through :math:`X` as if :math:`H` were :math:`X`:
:math:`\hat g = (\partial X/\partial\phi)^T \nabla f(H)` (biased).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, log_softmax, logsumexp

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, generator, positive_scalar
from phylo.ml.gumbel import sample_gumbel


def relaxed_one_hot(logits, temperature: float, gumbels) -> np.ndarray:
    r"""The Concrete sample :math:`\mathrm{softmax}((\phi + G)/\lambda)` for given Gumbel noise.

    Parameters
    ----------
    logits
        :math:`\phi`, shape ``(..., n)``.
    temperature
        :math:`\lambda > 0`.
    gumbels
        Standard Gumbel noise :math:`G`, broadcastable to ``logits``.
    """
    logits = as_float_array(logits, "logits")
    lam = positive_scalar(temperature, "temperature")
    g = as_float_array(gumbels, "gumbels")
    return np.exp(log_softmax((logits + g) / lam, axis=-1))


def sample_concrete(
    logits, temperature: float, rng: np.random.Generator, size=None, return_gumbels: bool = False
):
    r"""Draw Concrete (Gumbel-softmax) samples.

    Parameters
    ----------
    logits
        :math:`\phi`, shape ``(n,)``.
    temperature
        :math:`\lambda > 0`.
    rng
        Source of randomness.
    size
        Number of samples (``None`` for one sample of shape ``(n,)``).
    return_gumbels
        Also return the Gumbel noise used (for straight-through or pathwise gradients).

    Returns
    -------
    x : ndarray, shape (n,) or (size, n)
    gumbels : ndarray
        Only if ``return_gumbels``.
    """
    rng = generator(rng)
    logits = as_float_array(logits, "logits", ndim=1)
    shape = logits.shape if size is None else (int(size), logits.size)
    g = sample_gumbel(rng, 0.0, shape)
    x = relaxed_one_hot(logits, temperature, g)
    return (x, g) if return_gumbels else x


def concrete_log_density(x, logits, temperature: float, log_x=None) -> np.ndarray:
    r"""Log-density of the Concrete distribution at points ``x`` of the open simplex.

    .. math:: \log p(x) = \log (n-1)! + (n-1)\log\lambda + \sum_k(\phi_k - (\lambda+1)\log x_k)
              - n \log\sum_i \exp(\phi_i - \lambda \log x_i)

    Parameters
    ----------
    x
        Points, shape ``(..., n)``, positive and summing to one; ``None`` if ``log_x`` is given.
    logits
        :math:`\phi = \log\alpha`, shape ``(n,)``.
    temperature
        :math:`\lambda > 0`.
    log_x
        :math:`\log x` instead of ``x``, for points so close to a vertex that some
        coordinates underflow (as produced by log-softmax).
    """
    logits = as_float_array(logits, "logits", ndim=1)
    lam = positive_scalar(temperature, "temperature")
    n = logits.size
    if log_x is None:
        x = as_float_array(x, "x")
        if x.shape[-1:] != (n,):
            raise InputError(f"x: last axis must have length {n}")
        if (x <= 0).any() or not np.allclose(x.sum(axis=-1), 1.0, rtol=0, atol=1e-9):
            raise InputError("x: expected positive points summing to one")
        log_x = np.log(x)
    else:
        log_x = as_float_array(log_x, "log_x")
        if log_x.shape[-1:] != (n,):
            raise InputError(f"log_x: last axis must have length {n}")
        if not np.allclose(logsumexp(log_x, axis=-1), 0.0, rtol=0, atol=1e-9):
            raise InputError("log_x: expected logarithms of points summing to one")
    return (
        gammaln(n)
        + (n - 1) * np.log(lam)
        + np.sum(logits - (lam + 1.0) * log_x, axis=-1)
        - n * logsumexp(logits - lam * log_x, axis=-1)
    )


def binary_concrete_log_density(x, logit: float, temperature: float) -> np.ndarray:
    r"""Log-density of the binary Concrete :math:`X = \sigma((\phi + L)/\lambda)` on :math:`(0,1)`.

    .. math:: p(x) = \frac{\lambda\, \alpha\, x^{-\lambda-1}(1-x)^{-\lambda-1}}
                         {(\alpha x^{-\lambda} + (1-x)^{-\lambda})^2}, \quad \alpha = e^{\phi}.
    """
    x = as_float_array(x, "x")
    lam = positive_scalar(temperature, "temperature")
    phi = float(logit)
    if ((x <= 0) | (x >= 1)).any():
        raise InputError("x: expected points in (0, 1)")
    lx, l1x = np.log(x), np.log1p(-x)
    return (
        np.log(lam)
        + phi
        - (lam + 1.0) * (lx + l1x)
        - 2.0 * np.logaddexp(phi - lam * lx, -lam * l1x)
    )


def sample_binary_concrete(
    logit: float, temperature: float, rng: np.random.Generator, size=None
) -> np.ndarray:
    r"""Binary Concrete samples :math:`\sigma((\phi + L)/\lambda)`, :math:`L` standard logistic."""
    rng = generator(rng)
    lam = positive_scalar(temperature, "temperature")
    u = rng.random(size)
    logistic = np.log(u) - np.log1p(-u)
    z = (float(logit) + logistic) / lam
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def hard_one_hot(x) -> np.ndarray:
    """One-hot vectors of the argmax along the last axis."""
    x = as_float_array(x, "x")
    out = np.zeros_like(x)
    np.put_along_axis(out, np.argmax(x, axis=-1)[..., None], 1.0, axis=-1)
    return out


def concrete_vjp(x, temperature: float, upstream) -> np.ndarray:
    r"""Vector-Jacobian product :math:`(\partial X / \partial \phi)^T u`.

    .. math:: \frac{1}{\lambda}\, x \odot \big(u - \langle x, u\rangle\big)

    Parameters
    ----------
    x
        Concrete samples, shape ``(..., n)``.
    temperature
        The temperature they were drawn at.
    upstream
        :math:`u = \nabla_x f`, shape ``(..., n)``.
    """
    x = as_float_array(x, "x")
    lam = positive_scalar(temperature, "temperature")
    u = as_float_array(upstream, "upstream")
    return x * (u - np.sum(x * u, axis=-1, keepdims=True)) / lam


def straight_through(logits, temperature: float, rng: np.random.Generator):
    r"""One straight-through Gumbel-softmax draw: the hard one-hot sample and its soft version.

    Evaluate :math:`f` at ``hard``; estimate the gradient with respect to the logits as
    ``straight_through_gradient(soft, temperature, grad_f_at_hard)``.

    Returns
    -------
    hard : ndarray, shape (n,)
        One-hot categorical sample (exactly distributed as :math:`\mathrm{softmax}(\phi)`).
    soft : ndarray, shape (n,)
        The Concrete sample it was rounded from.
    """
    soft = sample_concrete(logits, temperature, rng)
    return hard_one_hot(soft), soft


def straight_through_gradient(soft, temperature: float, grad_at_hard) -> np.ndarray:
    r"""Straight-through estimate :math:`(\partial X/\partial\phi)^T \nabla f(H)`."""
    return concrete_vjp(soft, temperature, grad_at_hard)
