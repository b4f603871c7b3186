"""Torch building blocks: GECO, sparse variational dropout, Bayesian compression.

Each formula is written out here so that it can be compared with an independent numpy version.

GECO
----
Rezende, D. J. and Viola, F. (2018). Taming VAEs. arXiv:1810.00597.

Minimise the KL term subject to an expected constraint :math:`\\mathbb E[C(x, \\hat x)] \\le 0`,
here :math:`C = \\lVert x - \\hat x \\rVert^2 - \\kappa^2`, through the Lagrangian
:math:`\\mathcal L_\\lambda = \\mathrm{KL} + \\lambda\\, C`.  With :math:`\\hat C_t` the batch
mean of the constraint,

.. math::
    \\bar C_t = \\alpha \\bar C_{t-1} + (1-\\alpha) \\hat C_t \\quad (\\bar C_1 = \\hat C_1), \\qquad
    C_t = \\hat C_t + \\mathrm{sg}(\\bar C_t - \\hat C_t), \\qquad
    \\lambda_{t} = \\lambda_{t-1} \\exp(\\nu\\, \\bar C_t),

so the loss value uses the moving average while its gradient is the batch gradient, and the
multiplier grows while the constraint is violated and shrinks once it holds.

Sparse variational dropout
--------------------------
Molchanov, D., Ashukha, A. and Vetrov, D. (2017). Variational dropout sparsifies deep neural
networks. ICML 2017.

Each weight has :math:`q(w_{ij}) = \\mathcal N(\\theta_{ij}, \\sigma^2_{ij})` under the log-uniform
prior; :math:`\\log\\alpha_{ij} = \\log\\sigma^2_{ij} - \\log\\theta^2_{ij}`, clipped to
:math:`[-L, L]` (:data:`LOG_ALPHA_CLIP`).  The KL divergence is approximated by

.. math::
    -\\mathrm{KL}(q \\| p) \\approx k_1 \\operatorname{sigmoid}(k_2 + k_3 \\log\\alpha)
        - \\tfrac12 \\log(1 + \\alpha^{-1}) - k_1,
    \\quad k_1 = 0.63576,\\ k_2 = 1.87320,\\ k_3 = 1.48695,

and weights with :math:`\\log\\alpha > 3` are set to zero at test time.  Training uses the local
reparameterisation trick: pre-activations are drawn from
:math:`\\mathcal N(x\\theta^\\top + b,\\ x^2 (\\sigma^2)^\\top)`.

Bayesian compression
--------------------
Louizos, C., Ullrich, K. and Welling, M. (2017). Bayesian compression for deep learning.
NeurIPS 2017.  Group normal-Jeffreys prior over the input units of a layer:

.. math::
    p(z_i) \\propto |z_i|^{-1}, \\quad p(w_{ij} \\mid z_i) = \\mathcal N(0, z_i^2), \\qquad
    q(z_i) = \\mathcal N(\\mu_i, \\mu_i^2 \\alpha_i), \\quad
    q(w_{ij} \\mid z_i) = \\mathcal N(z_i \\mu_{ij}, z_i^2 \\sigma^2_{ij}),

    \\mathrm{KL} \\approx \\sum_i \\mathrm{KL}_{\\text{Molchanov}}(\\log\\alpha_i)
      + \\sum_{ij} \\tfrac12\\bigl(-\\log\\sigma^2_{ij} + \\sigma^2_{ij} + \\mu^2_{ij} - 1\\bigr).

An input unit whose :math:`\\log\\alpha_i` exceeds a threshold is pruned (its whole row of weights
removed).  The posterior variance of the kept weights,
:math:`\\mathrm{Var}(w_{ij}) = \\mu_i^2\\alpha_i(\\mu_{ij}^2 + \\sigma^2_{ij}) + \\mu_i^2 \\sigma^2_{ij}`,
gives the bit precision needed to store them (:meth:`GroupNJLinear.bit_precision`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "K1",
    "K2",
    "K3",
    "LOG_ALPHA_CLIP",
    "SVD_THRESHOLD",
    "GECO",
    "sparse_vd_kl",
    "LinearSVDO",
    "GroupNJLinear",
    "group_nj_kl",
]

K1, K2, K3 = 0.63576, 1.87320, 1.48695
LOG_ALPHA_CLIP = 8.0
SVD_THRESHOLD = 3.0


class GECO:
    """GECO for a torch training loop: the multiplier state is :class:`phylo.ml.geco.Geco`.

    Parameters
    ----------
    alpha
        Moving-average factor of the constraint.
    nu
        Step of the multiplicative update of :math:`\\lambda`.
    lagrange
        Initial multiplier.
    bounds
        The multiplier is clipped to this interval to keep training stable.
    """

    def __init__(
        self,
        alpha: float = 0.99,
        nu: float = 1e-2,
        lagrange: float = 1.0,
        bounds: tuple[float, float] = (1e-6, 1e6),
    ):
        from ..geco import Geco

        self._state = Geco(alpha=alpha, step_size=nu, lambda_init=lagrange, lambda_bounds=bounds)

    @property
    def lagrange(self) -> float:
        """The current multiplier :math:`\\lambda_t`."""
        return float(self._state.multiplier)

    @property
    def c_ma(self) -> float | None:
        ma = self._state.constraint_ma
        return None if ma is None else float(ma)

    def loss(self, objective: torch.Tensor, constraint: torch.Tensor) -> torch.Tensor:
        """Lagrangian ``objective + lambda * C_t`` for the current batch, then update the state.

        ``constraint`` holds per-example values :math:`C(x, \\hat x)`; its mean is
        :math:`\\hat C_t`.  The returned loss uses the multiplier from before the update.
        """
        c_hat = constraint.mean()
        step = self._state.step(float(c_hat.detach()))
        c_t = c_hat + (float(step.constraint_ma) - c_hat.detach())
        return objective + float(step.multiplier) * c_t


def sparse_vd_kl(log_alpha: torch.Tensor) -> torch.Tensor:
    """Elementwise approximate :math:`\\mathrm{KL}(q \\| p)` of Molchanov et al. (2017).

    :math:`k_1 - k_1\\operatorname{sigmoid}(k_2 + k_3\\log\\alpha) + \\tfrac12\\log(1+e^{-\\log\\alpha})`.
    """
    return K1 - K1 * torch.sigmoid(K2 + K3 * log_alpha) + 0.5 * F.softplus(-log_alpha)


class LinearSVDO(nn.Module):
    """Fully connected layer with sparse variational dropout.

    Parameters ``theta`` (means), ``log_sigma2`` and bias; :attr:`log_alpha` is the clipped
    :math:`\\log\\sigma^2 - \\log\\theta^2`.  In training mode the output is sampled with the local
    reparameterisation trick; in evaluation mode the masked means are used.
    """

    def __init__(self, in_features: int, out_features: int, threshold: float = SVD_THRESHOLD):
        super().__init__()
        self.theta = nn.Parameter(torch.empty(out_features, in_features))
        self.log_sigma2 = nn.Parameter(torch.full((out_features, in_features), -10.0))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.threshold = threshold
        nn.init.kaiming_uniform_(self.theta, a=math.sqrt(5))

    @property
    def log_alpha(self) -> torch.Tensor:
        la = self.log_sigma2 - torch.log(self.theta**2 + 1e-8)
        return torch.clamp(la, -LOG_ALPHA_CLIP, LOG_ALPHA_CLIP)

    def mask(self) -> torch.Tensor:
        """1 for kept weights (:math:`\\log\\alpha \\le` threshold), 0 for pruned ones."""
        return (self.log_alpha <= self.threshold).to(self.theta.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = F.linear(x, self.theta, self.bias)
            var = F.linear(x * x, torch.exp(self.log_alpha) * self.theta**2)
            return mean + torch.sqrt(var + 1e-8) * torch.randn_like(mean)
        return F.linear(x, self.theta * self.mask(), self.bias)

    def kl(self) -> torch.Tensor:
        """Sum of the approximate KL over the weights."""
        return sparse_vd_kl(self.log_alpha).sum()

    def sparsity(self) -> float:
        """Fraction of weights pruned."""
        return float(1.0 - self.mask().mean())


def group_nj_kl(
    z_log_alpha: torch.Tensor, weight_mu: torch.Tensor, weight_log_sigma2: torch.Tensor
) -> torch.Tensor:
    """KL of the group normal-Jeffreys posterior (Louizos et al., 2017), summed.

    :math:`\\sum_i \\mathrm{KL}_{\\text{Molchanov}}(\\log\\alpha_i) + \\sum_{ij}\\tfrac12(-\\log\\sigma^2_{ij} +
    \\sigma^2_{ij} + \\mu^2_{ij} - 1)`.
    """
    kl_z = sparse_vd_kl(z_log_alpha).sum()
    kl_w = 0.5 * (-weight_log_sigma2 + torch.exp(weight_log_sigma2) + weight_mu**2 - 1.0).sum()
    return kl_z + kl_w


class GroupNJLinear(nn.Module):
    """Fully connected layer with a group normal-Jeffreys prior over its input units.

    Parameters
    ----------
    in_features, out_features
        Layer sizes.
    threshold
        Input unit :math:`i` is pruned when :math:`\\log\\alpha_i` exceeds it.  The paper picks
        thresholds per layer by hand; the default 0 prunes a unit once the posterior standard
        deviation of its scale :math:`z_i` exceeds the magnitude of its mean.
    """

    def __init__(self, in_features: int, out_features: int, threshold: float = 0.0):
        super().__init__()
        self.z_mu = nn.Parameter(torch.ones(in_features) + 1e-2 * torch.randn(in_features))
        self.z_log_sigma2 = nn.Parameter(torch.full((in_features,), -4.0))
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_log_sigma2 = nn.Parameter(torch.full((out_features, in_features), -9.0))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.threshold = threshold
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))

    @property
    def z_log_alpha(self) -> torch.Tensor:
        la = self.z_log_sigma2 - torch.log(self.z_mu**2 + 1e-8)
        return torch.clamp(la, -LOG_ALPHA_CLIP, LOG_ALPHA_CLIP)

    def unit_mask(self) -> torch.Tensor:
        """1 for kept input units, 0 for pruned ones."""
        return (self.z_log_alpha <= self.threshold).to(self.z_mu.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            z = self.z_mu + torch.exp(0.5 * self.z_log_sigma2) * torch.randn_like(x)
            xz = x * z
            mean = F.linear(xz, self.weight_mu, self.bias)
            var = F.linear(xz * xz, torch.exp(self.weight_log_sigma2))
            return mean + torch.sqrt(var + 1e-8) * torch.randn_like(mean)
        z = self.z_mu * self.unit_mask()
        return F.linear(x * z, self.weight_mu, self.bias)

    def kl(self) -> torch.Tensor:
        return group_nj_kl(self.z_log_alpha, self.weight_mu, self.weight_log_sigma2)

    def unit_sparsity(self) -> float:
        """Fraction of input units pruned."""
        return float(1.0 - self.unit_mask().mean())

    def bit_precision(self) -> float:
        """Bits per kept weight from the smallest posterior variance (Louizos et al., 2017, sec. 5).

        The weights can be stored on a grid of spacing :math:`\\sqrt{\\min \\mathrm{Var}(w)}` over
        their range, i.e. :math:`\\lceil \\log_2(\\text{range} / \\sqrt{\\min\\mathrm{Var}}) \\rceil`
        bits (at least 1).
        """
        with torch.no_grad():
            keep = self.unit_mask().bool()
            if not keep.any():
                return 0.0
            mu_z2 = self.z_mu[keep] ** 2
            alpha = torch.exp(self.z_log_alpha[keep])
            mu = self.weight_mu[:, keep]
            s2 = torch.exp(self.weight_log_sigma2[:, keep])
            var = mu_z2 * alpha * (mu**2 + s2) + mu_z2 * s2
            w = mu * self.z_mu[keep]
            rng = float(w.max() - w.min())
            step = float(torch.sqrt(var.min()))
            return float(max(1, math.ceil(math.log2(max(rng / step, 2.0)))))
