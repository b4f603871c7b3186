"""Disentangling factors of variation with adversarial training.

Mathieu, M. F., Zhao, J. J., Ramesh, A., Sprechmann, P. and LeCun, Y. (2016). Disentangling
factors of variation in deep representations using adversarial training. NeurIPS.

An encoder splits an image into a *specified* code :math:`s` (the factor named by the labels,
here the digit class) and an *unspecified* code :math:`z` (everything else: style); a decoder
:math:`\\mathrm{Dec}(s, z)` renders an image.  With :math:`x_1, x_1'` of the same class and
:math:`x_3` of any class, training alternates

* reconstruction and swapping: :math:`\\lVert \\mathrm{Dec}(s(x_1), z(x_1)) - x_1\\rVert^2 +
  \\lVert \\mathrm{Dec}(s(x_1'), z(x_1)) - x_1\\rVert^2` -- the class code of another image of the
  same class must do, so :math:`s` keeps nothing image-specific;
* adversarial: a discriminator sees pairs of images and tells real same-class pairs
  :math:`(x_1, x_1')` from pairs :math:`(\\mathrm{Dec}(s(x_1), z(x_3)), x_1')`; the encoder and
  decoder are trained to fool it, so an image rendered with the class code of :math:`x_1` and
  the style of :math:`x_3` must look like a real member of :math:`x_1`'s class.  This stops
  :math:`z` from carrying the class.

:func:`swap_accuracy` measures disentanglement with an independent digits classifier: images
rendered from :math:`(s(x_a), z(x_b))` with :math:`x_a, x_b` of different classes should be
recognised as :math:`x_a`'s class, not :math:`x_b`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .data import digits_split

__all__ = [
    "Disentangler",
    "train_disentangler",
    "train_digit_classifier",
    "swap_accuracy",
    "DisentangleResult",
]


def _mlp(sizes, last=None):
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


class Disentangler(nn.Module):
    """Encoder to ``(s, z)``, decoder from ``(s, z)``, pair discriminator."""

    def __init__(self, n_s: int = 16, n_z: int = 8, n_hidden: int = 256):
        super().__init__()
        self.n_s = n_s
        self.encoder = _mlp([64, n_hidden, n_hidden, n_s + n_z])
        self.decoder = _mlp([n_s + n_z, n_hidden, n_hidden, 64], nn.Sigmoid())
        self.discriminator = _mlp([128, n_hidden, n_hidden, 1])

    def encode(self, x):
        h = self.encoder(x)
        return h[:, : self.n_s], h[:, self.n_s :]

    def decode(self, s, z):
        return self.decoder(torch.cat([s, z], dim=1))

    def discriminate(self, a, b):
        """Logit that ``(a, b)`` is a real pair of images of the same class."""
        return self.discriminator(torch.cat([a, b], dim=1)).squeeze(1)


def train_digit_classifier(x, y, seed: int = 0, epochs: int = 60):
    """A small MLP classifier of the digits, used as an independent judge of generated images."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for s in range(0, len(y), 64):
            idx = perm[s : s + 64]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def _same_class_partner(y, generator):
    """For each index, a random other index with the same label."""
    out = torch.empty_like(y)
    for c in y.unique():
        idx = torch.nonzero(y == c).flatten()
        out[idx] = idx[torch.randint(len(idx), (len(idx),), generator=generator)]
    return out


@dataclass
class DisentangleResult:
    """Outcome of :func:`train_disentangler` (swap accuracies on the test images)."""

    model: Disentangler
    specified_class_rate: float
    unspecified_class_rate: float
    classifier_accuracy: float


def train_disentangler(
    seed: int = 0,
    epochs: int = 40,
    batch_size: int = 64,
    lr: float = 1e-3,
    adv_weight: float = 0.05,
) -> DisentangleResult:
    """Train on the digits (the specified factor is the class) and measure swaps."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y, xt, yt = digits_split(seed)
    model = Disentangler()
    ae_params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(ae_params, lr=lr)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=lr)
    n = len(y)
    for _ in range(epochs):
        partner = _same_class_partner(y, g)
        perm = torch.randperm(n, generator=g)
        other = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            i1 = perm[s : s + batch_size]
            i1p, i3 = partner[i1], other[s : s + batch_size][: len(i1)]
            x1, x1p, x3 = x[i1], x[i1p], x[i3]
            s1, z1 = model.encode(x1)
            s1p, _ = model.encode(x1p)
            _, z3 = model.encode(x3)
            fake = model.decode(s1, z3)
            # discriminator step
            d_real = model.discriminate(x1, x1p)
            d_fake = model.discriminate(fake.detach(), x1p)
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            # encoder/decoder step
            rec = ((model.decode(s1, z1) - x1) ** 2).sum(1).mean() + (
                (model.decode(s1p, z1) - x1) ** 2
            ).sum(1).mean()
            d_gen = model.discriminate(fake, x1p)
            adv = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
            loss = rec + adv_weight * adv * 64
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    judge = train_digit_classifier(x, y, seed)
    with torch.no_grad():
        judge_acc = float((judge(xt).argmax(1) == yt).float().mean())
    spec, unspec = swap_accuracy(model, judge, xt, yt, seed)
    return DisentangleResult(model, spec, unspec, judge_acc)


def swap_accuracy(model: Disentangler, judge, x, y, seed: int = 0) -> tuple[float, float]:
    """Render :math:`\\mathrm{Dec}(s(x_a), z(x_b))` for pairs of different classes.

    Returns the fraction of renderings the judge assigns to :math:`x_a`'s class and the
    fraction it assigns to :math:`x_b`'s class.
    """
    g = torch.Generator().manual_seed(seed + 1)
    b = torch.randperm(len(y), generator=g)
    keep = y != y[b]
    a_idx, b_idx = torch.nonzero(keep).flatten(), b[keep]
    with torch.no_grad():
        s_a, _ = model.encode(x[a_idx])
        _, z_b = model.encode(x[b_idx])
        pred = judge(model.decode(s_a, z_b)).argmax(1)
    return float((pred == y[a_idx]).float().mean()), float((pred == y[b_idx]).float().mean())
