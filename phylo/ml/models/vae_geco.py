"""Variational autoencoder trained with GECO against a reconstruction constraint.

Rezende, D. J. and Viola, F. (2018). Taming VAEs. arXiv:1810.00597.  Kingma, D. P. and
Welling, M. (2014). Auto-encoding variational Bayes. ICLR.

Encoder :math:`q(z \\mid x) = \\mathcal N(\\mu(x), \\operatorname{diag}\\sigma^2(x))`, prior
:math:`\\mathcal N(0, I)`, decoder mean :math:`\\hat x(z)` in [0, 1].  Instead of the ELBO, GECO
solves

.. math:: \\min\\ \\mathbb E_x \\mathrm{KL}(q(z\\mid x) \\| p(z)) \\quad \\text{s.t.}\\quad
          \\mathbb E_{x, z\\sim q}\\lVert x - \\hat x(z) \\rVert^2 \\le \\kappa^2,

with the Lagrange multiplier updated as in :class:`phylo.ml.models.layers.GECO`.  A tighter
:math:`\\kappa` buys better reconstructions with more information in the code, i.e. a larger KL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .data import digits_split
from .layers import GECO

__all__ = ["VAE", "GecoResult", "train_vae_geco"]


class VAE(nn.Module):
    """MLP encoder and decoder with a Gaussian latent code."""

    def __init__(self, n_inputs: int = 64, n_hidden: int = 128, n_latent: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_inputs, n_hidden), nn.ReLU(), nn.Linear(n_hidden, 2 * n_latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_latent, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_inputs), nn.Sigmoid()
        )

    def forward(self, x):
        """Reconstruction from one sampled code, and the per-example KL."""
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        kl = 0.5 * (mu**2 + torch.exp(log_var) - log_var - 1.0).sum(dim=1)
        return self.decoder(z), kl


@dataclass
class GecoResult:
    """Outcome of :func:`train_vae_geco` (test-set values are means per example)."""

    model: VAE
    kappa2: float
    test_sq_error: float
    test_kl: float
    lagrange: float
    lagrange_history: list


def train_vae_geco(
    kappa2: float,
    seed: int = 0,
    epochs: int = 200,
    batch_size: int = 64,
    lr: float = 1e-3,
    nu: float = 5e-3,
    alpha: float = 0.99,
) -> GecoResult:
    """Train a VAE on the digits with GECO and the constraint :math:`\\lVert x-\\hat x\\rVert^2 \\le \\kappa^2`.

    Parameters
    ----------
    kappa2
        Tolerated squared reconstruction error per image (64 pixels in [0, 1]).
    """
    torch.manual_seed(seed)
    x, _, xt, _ = digits_split(seed)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    geco = GECO(alpha=alpha, nu=nu, lagrange=1.0)
    history = []
    n = len(x)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n, batch_size):
            xb = x[perm[s : s + batch_size]]
            recon, kl = model(xb)
            constraint = ((xb - recon) ** 2).sum(dim=1) - kappa2
            loss = geco.loss(kl.mean(), constraint)
            opt.zero_grad()
            loss.backward()
            opt.step()
        history.append(geco.lagrange)
    with torch.no_grad():
        recon, kl = model(xt)
        err = float(((xt - recon) ** 2).sum(dim=1).mean())
    return GecoResult(model, kappa2, err, float(kl.mean()), geco.lagrange, history)
