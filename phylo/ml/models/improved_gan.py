"""Improved techniques for training GANs, on the digits.

Salimans, T., Goodfellow, I., Zaremba, W., Cheung, V., Radford, A. and Chen, X. (2016).
Improved techniques for training GANs. NeurIPS.

*Feature matching.*  The generator matches the mean of an intermediate discriminator feature
:math:`f`: :math:`\\lVert \\mathbb E_x f(x) - \\mathbb E_z f(G(z)) \\rVert_2^2`.

*Minibatch discrimination.*  Features :math:`f(x_i) \\in \\mathbb R^A` are multiplied by a
tensor :math:`T \\in \\mathbb R^{A \\times B \\times C}` into :math:`M_i \\in \\mathbb R^{B \\times C}`;
:math:`c_b(x_i, x_j) = \\exp(-\\lVert M_{i,b} - M_{j,b} \\rVert_{L_1})` and
:math:`o(x_i)_b = \\sum_j c_b(x_i, x_j)` (the sum includes :math:`j = i`) are appended to
:math:`f(x_i)`, so the discriminator sees how close a sample is to the rest of its batch.

*Historical averaging.*  Each player adds :math:`\\lVert \\theta - \\frac1t \\sum_{i=1}^t
\\theta[i] \\rVert^2` to its loss.

*One-sided label smoothing.*  Real examples get the target 0.9 instead of 1, fakes keep 0.

*Virtual batch normalisation.*  Each example is normalised with statistics of a fixed reference
batch together with itself: :math:`\\mu = \\frac{N \\mu_{\\text{ref}} + x}{N+1}`,
:math:`\\sigma^2 = \\frac{N \\overline{x^2}_{\\text{ref}} + x^2}{N+1} - \\mu^2`, so an example's
output does not depend on the other examples of its batch.

*Inception score.*  :math:`\\exp\\bigl(\\mathbb E_x \\mathrm{KL}(p(y \\mid x) \\| p(y))\\bigr)`, here
with a digits classifier in place of the Inception network; it lies in :math:`[1, K]`.

*Semi-supervised learning.*  The discriminator outputs :math:`K` class logits :math:`l_k(x)`;
the fake class has logit 0, so :math:`D(x) = Z(x)/(Z(x)+1)` with
:math:`Z = \\sum_k e^{l_k}`.  Its loss is the cross-entropy on the few labelled examples plus
the unsupervised GAN loss :math:`-\\mathbb E \\log D(x) - \\mathbb E \\log(1 - D(G(z)))`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .data import digits_split
from .disentangle import train_digit_classifier

__all__ = [
    "MinibatchDiscrimination",
    "VirtualBatchNorm",
    "HistoricalAverage",
    "one_sided_smoothed_loss",
    "feature_matching_loss",
    "inception_score",
    "Generator",
    "Discriminator",
    "SemiSupervisedResult",
    "train_semi_supervised_gan",
    "train_minibatch_gan",
]


class MinibatchDiscrimination(nn.Module):
    """Appends :math:`o(x_i) \\in \\mathbb R^B` to the input features (see module docstring)."""

    def __init__(self, in_features: int, n_kernels: int = 16, kernel_dim: int = 8):
        super().__init__()
        self.T = nn.Parameter(0.1 * torch.randn(in_features, n_kernels * kernel_dim))
        self.n_kernels, self.kernel_dim = n_kernels, kernel_dim

    def forward(self, f):
        m = (f @ self.T).view(-1, self.n_kernels, self.kernel_dim)
        dist = (m[:, None] - m[None, :]).abs().sum(dim=3)  # (n, n, B)
        o = torch.exp(-dist).sum(dim=1)
        return torch.cat([f, o], dim=1)


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalisation of (n, features) activations.

    ``forward(x, ref)`` normalises the reference batch ``ref`` with its own statistics and each
    row of ``x`` with the statistics of ``ref`` plus that row; returns ``(x_out, ref_out)``.
    """

    def __init__(self, n_features: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n_features))
        self.beta = nn.Parameter(torch.zeros(n_features))
        self.eps = eps

    def _norm(self, x, mean, mean_sq):
        var = mean_sq - mean**2
        return (x - mean) / torch.sqrt(var + self.eps) * self.gamma + self.beta

    def forward(self, x, ref):
        n = ref.shape[0]
        ref_mean = ref.mean(0)
        ref_sq = (ref**2).mean(0)
        ref_out = self._norm(ref, ref_mean, ref_sq)
        w = 1.0 / (n + 1.0)
        mean = (1 - w) * ref_mean + w * x
        mean_sq = (1 - w) * ref_sq + w * x**2
        return self._norm(x, mean, mean_sq), ref_out


class HistoricalAverage:
    """Running mean of a list of parameters and the penalty :math:`\\lVert\\theta - \\bar\\theta\\rVert^2`."""

    def __init__(self, params):
        self.params = list(params)
        self.mean = [p.detach().clone() for p in self.params]
        self.t = 1

    def penalty(self) -> torch.Tensor:
        return sum(((p - m) ** 2).sum() for p, m in zip(self.params, self.mean))

    def update(self) -> None:
        """Fold the current parameters into the average (call after each optimiser step)."""
        self.t += 1
        with torch.no_grad():
            for p, m in zip(self.params, self.mean):
                m += (p.detach() - m) / self.t


def one_sided_smoothed_loss(real_logit, fake_logit, smooth: float = 0.9) -> torch.Tensor:
    """Discriminator cross-entropy with targets ``smooth`` for real and 0 for fake examples."""
    return F.binary_cross_entropy_with_logits(
        real_logit, torch.full_like(real_logit, smooth)
    ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))


def feature_matching_loss(f_real, f_fake) -> torch.Tensor:
    """:math:`\\lVert \\operatorname{mean} f_{\\text{real}} - \\operatorname{mean} f_{\\text{fake}} \\rVert^2`."""
    return ((f_real.mean(0) - f_fake.mean(0)) ** 2).sum()


def inception_score(probs) -> float:
    """:math:`\\exp(\\mathbb E_x \\mathrm{KL}(p(y\\mid x) \\| p(y)))` from an (n, K) array of class probabilities."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    py = p.mean(0, keepdim=True)
    kl = (p * (torch.log(p + 1e-12) - torch.log(py + 1e-12))).sum(1)
    return float(torch.exp(kl.mean()))


class Generator(nn.Module):
    """MLP generator with virtual batch normalisation; ``ref_z`` is the fixed reference noise."""

    def __init__(self, n_noise: int = 32, n_hidden: int = 256, ref_size: int = 64, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed + 12345)
        self.register_buffer("ref_z", torch.rand(ref_size, n_noise, generator=g))
        self.n_noise = n_noise
        self.l1 = nn.Linear(n_noise, n_hidden)
        self.vbn1 = VirtualBatchNorm(n_hidden)
        self.l2 = nn.Linear(n_hidden, n_hidden)
        self.vbn2 = VirtualBatchNorm(n_hidden)
        self.out = nn.Linear(n_hidden, 64)

    def forward(self, z):
        h, r = self.vbn1(self.l1(z), self.l1(self.ref_z))
        h, r = F.softplus(h), F.softplus(r)
        h, r = self.vbn2(self.l2(h), self.l2(r))
        return torch.sigmoid(self.out(F.softplus(h)))

    def sample(self, n: int, generator: torch.Generator | None = None):
        return self(torch.rand(n, self.n_noise, generator=generator))


class Discriminator(nn.Module):
    """MLP discriminator with Gaussian input noise; ``features`` is the layer used for feature
    matching; optional minibatch discrimination before the output layer."""

    def __init__(
        self, n_out: int = 10, n_hidden: int = 256, minibatch: bool = False, noise: float = 0.3
    ):
        super().__init__()
        self.noise = noise
        self.l1 = nn.Linear(64, n_hidden)
        self.l2 = nn.Linear(n_hidden, n_hidden)
        self.mbd = MinibatchDiscrimination(n_hidden) if minibatch else None
        extra = self.mbd.n_kernels if minibatch else 0
        self.out = nn.Linear(n_hidden + extra, n_out)

    def forward(self, x):
        """Returns ``(logits, features)``."""
        if self.training and self.noise > 0:
            x = x + self.noise * torch.randn_like(x)
        h = F.leaky_relu(self.l1(x), 0.2)
        f = F.leaky_relu(self.l2(h), 0.2)
        g = self.mbd(f) if self.mbd is not None else f
        return self.out(g), f


@dataclass
class SemiSupervisedResult:
    """Outcome of :func:`train_semi_supervised_gan`."""

    discriminator: Discriminator
    generator: Generator
    accuracy: float
    supervised_only_accuracy: float


def _labelled_subset(y, n_per_class):
    idx = [torch.nonzero(y == c).flatten()[:n_per_class] for c in range(10)]
    return torch.cat(idx)


def _supervised_baseline(x, y, xt, yt, seed, epochs):
    torch.manual_seed(seed)
    d = Discriminator()
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    for _ in range(epochs):
        logits, _ = d(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    d.eval()
    with torch.no_grad():
        return float((d(xt)[0].argmax(1) == yt).float().mean())


def train_semi_supervised_gan(
    n_per_class: int = 10,
    seed: int = 0,
    epochs: int = 60,
    batch_size: int = 100,
    lr: float = 1e-3,
    hist_weight: float = 1e-3,
    smooth: float = 0.9,
) -> SemiSupervisedResult:
    """Semi-supervised GAN classification of the digits with few labels.

    Feature matching for the generator, one-sided label smoothing and historical averaging
    for the discriminator, virtual batch normalisation in the generator.  Also trains the
    same discriminator on the labelled examples alone (``supervised_only_accuracy``).
    """
    torch.manual_seed(seed)
    x, y, xt, yt = digits_split(seed)
    lab = _labelled_subset(y, n_per_class)
    xl, yl = x[lab], y[lab]
    gen, disc = Generator(seed=seed), Discriminator()
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    hist = HistoricalAverage(disc.parameters())
    n = len(x)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n - batch_size + 1, batch_size):
            xb = x[perm[s : s + batch_size]]
            li = torch.randint(len(yl), (batch_size,))
            # discriminator
            fake = gen.sample(batch_size).detach()
            logit_l, _ = disc(xl[li])
            logit_u, _ = disc(xb)
            logit_f, _ = disc(fake)
            sup = F.cross_entropy(logit_l, yl[li])
            # log Z(x) is the logit of "real" against the fake class (whose logit is 0)
            unsup = one_sided_smoothed_loss(
                torch.logsumexp(logit_u, 1), torch.logsumexp(logit_f, 1), smooth
            )
            loss_d = sup + unsup + hist_weight * hist.penalty()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            hist.update()
            # generator: feature matching
            _, f_real = disc(xb)
            _, f_fake = disc(gen.sample(batch_size))
            loss_g = feature_matching_loss(f_real.detach(), f_fake)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    disc.eval()
    with torch.no_grad():
        acc = float((disc(xt)[0].argmax(1) == yt).float().mean())
    base = _supervised_baseline(xl, yl, xt, yt, seed, epochs=300)
    return SemiSupervisedResult(disc, gen, acc, base)


def train_minibatch_gan(
    seed: int = 0,
    epochs: int = 60,
    batch_size: int = 100,
    lr: float = 1e-3,
    smooth: float = 0.9,
    hist_weight: float = 1e-3,
):
    """GAN for sample quality: minibatch discrimination, label smoothing, historical averaging,
    virtual batch normalisation; the generator maximises :math:`\\log D(G(z))`.

    Returns ``(generator, judge, scores)`` where ``scores`` holds the inception-style scores
    (digits classifier) of test digits, of generated samples and of generated samples with
    their pixels shuffled.
    """
    torch.manual_seed(seed)
    x, y, xt, yt = digits_split(seed)
    gen, disc = Generator(seed=seed), Discriminator(n_out=1, minibatch=True)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    hist_d = HistoricalAverage(disc.parameters())
    hist_g = HistoricalAverage(gen.parameters())
    n = len(x)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n - batch_size + 1, batch_size):
            xb = x[perm[s : s + batch_size]]
            fake = gen.sample(batch_size)
            real_logit = disc(xb)[0].squeeze(1)
            fake_logit = disc(fake.detach())[0].squeeze(1)
            loss_d = (
                one_sided_smoothed_loss(real_logit, fake_logit, smooth)
                + hist_weight * hist_d.penalty()
            )
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            hist_d.update()
            g_logit = disc(fake)[0].squeeze(1)
            loss_g = (
                F.binary_cross_entropy_with_logits(g_logit, torch.ones_like(g_logit))
                + hist_weight * hist_g.penalty()
            )
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            hist_g.update()
    judge = train_digit_classifier(x, y, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        samples = gen.eval().sample(1000, generator=g)
        shuffled = samples[:, torch.randperm(64, generator=g)]
        scores = {
            name: inception_score(F.softmax(judge(v), 1))
            for name, v in (("real", xt), ("generated", samples), ("shuffled", shuffled))
        }
    return gen, judge, scores
