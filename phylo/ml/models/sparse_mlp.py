"""Sparse multilayer perceptrons: sparse variational dropout and Bayesian compression.

Molchanov, D., Ashukha, A. and Vetrov, D. (2017). Variational dropout sparsifies deep neural
networks. ICML.  Louizos, C., Ullrich, K. and Welling, M. (2017). Bayesian compression for
deep learning. NeurIPS.

Both are trained by maximising the evidence lower bound per training example,

.. math:: \\frac{1}{N}\\sum_{n} \\mathbb E_q \\log p(y_n \\mid x_n, W) - \\frac{\\beta_t}{N} \\mathrm{KL}(q \\| p),

with the KL weight :math:`\\beta_t` warmed up linearly from 0 to 1 over the first epochs.  At test
time pruned weights (sparse VD, :math:`\\log\\alpha_{ij} > 3`) or pruned input units (Bayesian
compression) are removed and the posterior means are used.  The layer formulas are in
:mod:`phylo.ml.models.layers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import InputError
from .data import digits_split
from .layers import GroupNJLinear, LinearSVDO

__all__ = ["SparseMLP", "SparseResult", "train_sparse_mlp"]


class SparseMLP(nn.Module):
    """MLP whose layers are all :class:`LinearSVDO` (``kind="svd"``) or :class:`GroupNJLinear`
    (``kind="bc"``), with ReLU between them."""

    def __init__(self, sizes: list[int], kind: str = "svd", bc_threshold: float = 0.0):
        super().__init__()
        if kind not in ("svd", "bc"):
            raise InputError(f"kind must be 'svd' or 'bc', got {kind!r}")
        self.kind = kind
        if kind == "svd":
            layers = [LinearSVDO(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        else:
            layers = [
                GroupNJLinear(a, b, threshold=bc_threshold) for a, b in zip(sizes[:-1], sizes[1:])
            ]
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = F.relu(x)
        return x

    def kl(self):
        return sum(layer.kl() for layer in self.layers)

    def weight_sparsity(self) -> float:
        """Fraction of all weights that are removed at test time."""
        total = kept = 0.0
        for layer in self.layers:
            if self.kind == "svd":
                m = layer.mask()
            else:
                m = layer.unit_mask()[None, :].expand_as(layer.weight_mu)
            total += m.numel()
            kept += float(m.sum())
        return 1.0 - kept / total

    def unit_sparsity(self) -> list[float]:
        """Per layer, the fraction of input units all of whose outgoing weights are removed."""
        out = []
        for layer in self.layers:
            if self.kind == "svd":
                out.append(float((layer.mask().sum(dim=0) == 0).float().mean()))
            else:
                out.append(layer.unit_sparsity())
        return out


@dataclass
class SparseResult:
    """Outcome of :func:`train_sparse_mlp`."""

    model: SparseMLP
    accuracy: float
    weight_sparsity: float
    unit_sparsity: list
    dense_accuracy: float


def train_sparse_mlp(
    kind: str = "svd",
    seed: int = 0,
    hidden: tuple = (100, 100),
    epochs: int = 60,
    warmup: int = 15,
    lr: float | None = None,
    batch_size: int = 64,
    bc_threshold: float = 0.0,
) -> SparseResult:
    """Train a sparse MLP on the digits and report test accuracy and sparsity.

    ``lr`` defaults to 3e-3 for sparse VD and 1e-2 for Bayesian compression.
    ``dense_accuracy`` is the test accuracy with every weight kept (no pruning), for comparison.
    """
    if lr is None:
        lr = 3e-3 if kind == "svd" else 1e-2
    torch.manual_seed(seed)
    x, y, xt, yt = digits_split(seed)
    model = SparseMLP([64, *hidden, 10], kind, bc_threshold)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(y)
    for epoch in range(epochs):
        beta = min(1.0, epoch / max(warmup, 1))
        model.train()
        perm = torch.randperm(n)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx]) + beta * model.kl() / n
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
        # the same means with nothing pruned
        saved = [layer.threshold for layer in model.layers]
        for layer in model.layers:
            layer.threshold = float("inf")
        dense = float((model(xt).argmax(1) == yt).float().mean())
        for layer, t in zip(model.layers, saved):
            layer.threshold = t
    return SparseResult(model, acc, model.weight_sparsity(), model.unit_sparsity(), dense)
