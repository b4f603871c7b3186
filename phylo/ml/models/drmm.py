"""The Deep Rendering Mixture Model (DRMM).

Patel, A. B., Nguyen, T. and Baraniuk, R. G. (2016). A probabilistic framework for deep
learning. NeurIPS.  Nguyen, T., Liu, W., Perez, E., Baraniuk, R. G. and Patel, A. B. (2016).
Semi-supervised learning with the deep rendering mixture model. arXiv:1612.01942.

*Generative model.*  An image is rendered top-down from a class template :math:`\\mu_c`
through layers :math:`\\ell = L, \\dots, 1`; at each layer latent *switching* variables
:math:`s^\\ell \\in \\{0,1\\}` (is a local feature rendered or not) and *translation* variables
:math:`t^\\ell` (where inside each 2 x 2 pooling window it is placed) select a rendering matrix
:math:`\\Lambda^\\ell_{s,t}`, a transposed convolution:

.. math:: x = \\Lambda^1_{s^1 t^1} \\cdots \\Lambda^L_{s^L t^L} \\mu_c + \\varepsilon,
          \\qquad \\varepsilon \\sim \\mathcal N(0, \\sigma^2 I).

*Inference.*  In the small-noise limit, max-sum message passing for
:math:`\\max_{c, s, t} p(c, s, t \\mid x)` is a convolutional network: the messages are
convolutions with :math:`\\Lambda^\\top`, maximising over a switch is a ReLU and maximising over
a translation is max pooling.  The argmax of those operations *are* the MAP latent variables
:math:`\\hat s` (the ReLU masks) and :math:`\\hat t` (the pooling indices).

*Training* (in the manner of Nguyen et al.): the bottom-up pass classifies; the top-down pass
re-renders the image from the inferred top-layer code through the same weights (transposed),
with the inferred switches and translations.  The loss is the cross-entropy plus the squared
rendering error :math:`\\lVert x - \\hat x \\rVert^2` weighted by ``recon_weight``, the
hard-EM (max-sum) form of the complete-data likelihood.  :meth:`DRMM.render_class` renders the
class template :math:`\\mu_c` itself (the rows of the last layer) down through given latents.

Simplifications: two rendering layers for 8 x 8 digits, no path-normalisation regulariser, and
the top-down pass starts from the inferred top code rather than from the template alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .data import digits_split

__all__ = ["DRMM", "DRMMResult", "train_drmm"]


class DRMM(nn.Module):
    """Two-layer DRMM for 1 x 8 x 8 images and 10 classes."""

    def __init__(self, c1: int = 32, c2: int = 64, n_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.templates = nn.Linear(c2 * 4, n_classes)  # rows are the class templates mu_c

    def infer(self, x):
        """Bottom-up max-sum pass.

        Returns the logits, the top code (c2 x 2 x 2) and the latents ``(s1, t1, s2, t2)``:
        switches as 0/1 masks, translations as pooling indices.
        """
        x = x.view(-1, 1, 8, 8)
        a1 = self.conv1(x)
        s1 = (a1 > 0).to(x.dtype)
        h1, t1 = F.max_pool2d(a1 * s1, 2, return_indices=True)
        a2 = self.conv2(h1)
        s2 = (a2 > 0).to(x.dtype)
        h2, t2 = F.max_pool2d(a2 * s2, 2, return_indices=True)
        logits = self.templates(h2.flatten(1))
        return logits, h2, (s1, t1, s2, t2)

    def render(self, top, latents):
        """Top-down rendering of a top code (c2 x 2 x 2) through switches and translations."""
        s1, t1, s2, t2 = latents
        r2 = F.max_unpool2d(top, t2, 2, output_size=s2.shape[-2:]) * s2
        r1 = F.conv_transpose2d(r2, self.conv2.weight, padding=1)
        r1 = F.max_unpool2d(r1, t1, 2, output_size=s1.shape[-2:]) * s1
        x = F.conv_transpose2d(r1, self.conv1.weight, padding=1)
        return x.flatten(1)

    def render_class(self, classes, latents):
        """Render the class templates :math:`\\mu_c` (rows of the last layer) through the latents."""
        top = self.templates.weight[classes].view(len(classes), -1, 2, 2)
        return self.render(top, latents)

    def forward(self, x):
        logits, top, latents = self.infer(x)
        return logits, self.render(top, latents)


@dataclass
class DRMMResult:
    """Outcome of :func:`train_drmm`."""

    model: DRMM
    accuracy: float
    recon_error: float
    shuffled_latent_error: float


def train_drmm(
    seed: int = 0,
    epochs: int = 25,
    batch_size: int = 64,
    lr: float = 2e-3,
    recon_weight: float = 0.5,
    n_labelled: int | None = None,
) -> DRMMResult:
    """Train the DRMM on the digits.

    ``n_labelled`` (per class) restricts the cross-entropy to that many labelled images per
    class; the rendering term uses every image (semi-supervised learning).

    Returns test accuracy, the mean squared rendering error per image with each image's own
    latents, and the same error when the switches and translations come from another test image
    (a control: latents carry the image's shape).
    """
    torch.manual_seed(seed)
    x, y, xt, yt = digits_split(seed)
    labelled = torch.ones(len(y), dtype=torch.bool)
    if n_labelled is not None:
        labelled[:] = False
        for c in range(10):
            labelled[torch.nonzero(y == c).flatten()[:n_labelled]] = True
    model = DRMM()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(y)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            logits, recon = model(x[idx])
            lab = labelled[idx]
            ce = F.cross_entropy(logits[lab], y[idx][lab]) if lab.any() else logits.sum() * 0
            rec = ((recon - x[idx]) ** 2).sum(dim=1).mean()
            loss = ce + recon_weight * rec
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        logits, top, latents = model.infer(xt)
        acc = float((logits.argmax(1) == yt).float().mean())
        err = float(((model.render(top, latents) - xt) ** 2).sum(1).mean())
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(yt), generator=g)
        shuffled = tuple(v[perm] for v in latents)
        err_shuffled = float(((model.render(top, shuffled) - xt) ** 2).sum(1).mean())
    return DRMMResult(model, acc, err, err_shuffled)
