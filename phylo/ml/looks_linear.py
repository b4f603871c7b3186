r"""Looks-linear initialisation of CReLU networks (Balduzzi, Frean, Leary, Lewis, Ma &
McWilliams 2017, "The Shattered Gradients Problem: If resnets are the answer, then what is the
question?", ICML).

The concatenated rectifier (CReLU, Shang et al. 2016) doubles the width,

.. math:: \mathrm{CReLU}(x) = \begin{pmatrix} \max(x, 0) \\ \max(-x, 0) \end{pmatrix},

and a layer that follows it with weights of the mirrored block form
:math:`W = [\widetilde W, -\widetilde W]` computes

.. math:: W\,\mathrm{CReLU}(x) = \widetilde W \max(x,0) - \widetilde W \max(-x, 0)
          = \widetilde W x,

because :math:`\max(x,0) - \max(-x,0) = x`.  A deep CReLU network initialised this way is
exactly the linear map :math:`\widetilde W_L \cdots \widetilde W_1` at initialisation ("looks
linear"), so its gradients do not shatter with depth; training then moves the two halves
apart.  The blocks :math:`\widetilde W` are drawn orthogonal (scaled by ``gain``), as in the
paper, or Gaussian with variance ``gain**2 / fan_in``.
"""

from __future__ import annotations

import numpy as np

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, generator, positive_int, positive_scalar


def crelu(x, axis: int = -1) -> np.ndarray:
    r"""Concatenated ReLU :math:`[\max(x,0), \max(-x,0)]` along ``axis``."""
    x = as_float_array(x, "x")
    return np.concatenate([np.maximum(x, 0.0), np.maximum(-x, 0.0)], axis=axis)


def _block(n_out, n_in, rng, kind, gain):
    if kind == "orthogonal":
        a = rng.standard_normal((max(n_out, n_in), min(n_out, n_in)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # Haar-distributed (Mezzadri 2007)
        w = q if n_out >= n_in else q.T
        return gain * w
    if kind == "gaussian":
        return rng.standard_normal((n_out, n_in)) * gain / np.sqrt(n_in)
    raise InputError(f"kind: expected 'orthogonal' or 'gaussian', got {kind!r}")


def looks_linear_weights(
    n_out: int, n_in: int, rng: np.random.Generator, kind: str = "orthogonal", gain: float = 1.0
):
    r"""Mirrored weights :math:`[\widetilde W, -\widetilde W]` for a layer after a CReLU.

    Parameters
    ----------
    n_out
        Output width.
    n_in
        Width *before* the CReLU (the layer's input width is ``2 * n_in``).
    rng
        Source of randomness.
    kind
        ``"orthogonal"`` or ``"gaussian"``.
    gain
        Scale of :math:`\widetilde W`.

    Returns
    -------
    weights : ndarray, shape (n_out, 2 * n_in)
    block : ndarray, shape (n_out, n_in)
        :math:`\widetilde W`, the linear map the layer computes at initialisation.
    """
    rng = generator(rng)
    n_out, n_in = positive_int(n_out, "n_out"), positive_int(n_in, "n_in")
    w = _block(n_out, n_in, rng, kind, positive_scalar(gain, "gain"))
    return np.concatenate([w, -w], axis=1), w


class LooksLinearNetwork:
    r"""A fully connected CReLU network with looks-linear initialisation.

    ``sizes = [d_0, d_1, ..., d_L]``: the first layer maps :math:`\mathbb{R}^{d_0}` to
    :math:`\mathbb{R}^{d_1}` with an ordinary (orthogonal or Gaussian) matrix; each further
    layer applies CReLU and then mirrored weights of shape ``(d_l, 2 d_{l-1})``.  Biases start at
    zero.  The output layer is linear.

    Parameters
    ----------
    sizes
        Layer widths, at least two.
    rng
        Source of randomness.
    kind, gain
        As for :func:`looks_linear_weights`.
    """

    def __init__(
        self, sizes, rng: np.random.Generator, kind: str = "orthogonal", gain: float = 1.0
    ):
        rng = generator(rng)
        sizes = [positive_int(s, "sizes[i]") for s in sizes]
        if len(sizes) < 2:
            raise InputError("sizes: need an input and an output width")
        gain = positive_scalar(gain, "gain")
        self.sizes = sizes
        self.weights = [_block(sizes[1], sizes[0], rng, kind, gain)]
        self.blocks = [self.weights[0].copy()]
        for d_in, d_out in zip(sizes[1:-1], sizes[2:]):
            w, block = looks_linear_weights(d_out, d_in, rng, kind, gain)
            self.weights.append(w)
            self.blocks.append(block)
        self.biases = [np.zeros(d) for d in sizes[1:]]

    def forward(self, x) -> np.ndarray:
        """Apply the network to inputs of shape ``(..., d_0)``."""
        h = as_float_array(x, "x")
        if h.shape[-1] != self.sizes[0]:
            raise InputError(f"x: last axis must have length {self.sizes[0]}")
        h = h @ self.weights[0].T + self.biases[0]
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = crelu(h) @ w.T + b
        return h

    def linear_map(self) -> np.ndarray:
        r"""The product :math:`\widetilde W_L \cdots \widetilde W_1` of the initial blocks."""
        out = self.blocks[0]
        for block in self.blocks[1:]:
            out = block @ out
        return out
