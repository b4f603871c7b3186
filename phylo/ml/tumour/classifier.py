"""Fully connected classifiers for noise inference and branching inference.

Sadeqi Azer et al. (2020), Tumor phylogeny topology inference via deep learning, iScience 23,
101655: fully connected networks with two hidden layers read a (noisy) genotype matrix and
answer a yes/no question about it.

*Noise inference*: was the observed matrix corrupted by sequencing errors (label 1) or is it
the noise-free matrix of the simulator (label 0)?  Noisy examples carry at least one flipped
entry.

*Branching inference*: does the noise-free matrix behind the observed noisy one describe
branching evolution (label 1) or a chain of clones (label 0)?  Labels come from the exact test
:func:`phylo.ml.tumour.phylogeny.is_branching` on the simulator's noise-free matrix.

*Input.*  Rows and columns of a genotype matrix are in arbitrary order, so each matrix is first
put in a canonical order (:func:`canonical_form`: columns by decreasing number of carriers,
rows lexicographically) and flattened to :math:`2A-1 \\in \\{-1, 1\\}^{nm}`.

*Network.*  :math:`h_1 = \\mathrm{ReLU}(x W_1 + b_1)`, :math:`h_2 = \\mathrm{ReLU}(h_1 W_2 + b_2)`,
:math:`p = \\mathrm{softmax}(h_2 W_3 + b_3)`, trained on the mean cross-entropy plus
:math:`\\tfrac{\\lambda}{2}\\sum_k \\lVert W_k\\rVert^2` with hand-written backpropagation and Adam.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ..gcn import Adam, _single_thread_blas
from .phylogeny import is_branching
from .simulate import add_noise, coalescent_tree, genotype_matrix

__all__ = [
    "canonical_form",
    "matrix_features",
    "TwoHiddenLayerClassifier",
    "noise_inference_data",
    "branching_inference_data",
]


def canonical_form(matrix) -> np.ndarray:
    """Rows and columns of a genotype matrix in a canonical order.

    Columns are sorted by decreasing column sum, ties broken by the column's pattern; rows are
    then sorted lexicographically, largest first.  When the column sums are distinct, permuting
    the rows and columns of the input does not change the output; with tied sums the order of
    the tied columns depends on the input's row order (a full canonical form would be a graph
    canonisation problem), which the networks learn to tolerate.
    """
    a = np.asarray(matrix)
    n, _ = a.shape
    col_keys = [a[i] for i in reversed(range(n))] + [-a.sum(axis=0)]
    a = a[:, np.lexsort(col_keys)]
    row_keys = [-a[:, j] for j in reversed(range(a.shape[1]))]
    return a[np.lexsort(row_keys)]


def matrix_features(matrices) -> np.ndarray:
    """(B, n*m) network inputs :math:`2A-1` of the canonical forms of a stack of matrices."""
    m = np.asarray(matrices)
    if m.ndim != 3:
        raise InputError(f"expected a stack of matrices (B, n, m), got shape {m.shape}")
    return np.stack([2.0 * canonical_form(x).ravel() - 1.0 for x in m])


class TwoHiddenLayerClassifier:
    """Softmax classifier with two ReLU hidden layers, trained with backpropagation and Adam.

    Parameters
    ----------
    n_inputs, n_hidden1, n_hidden2, n_classes
        Layer sizes.
    rng
        Generator for He-normal initialisation.
    """

    def __init__(
        self,
        n_inputs: int,
        n_hidden1: int,
        n_hidden2: int,
        n_classes: int,
        rng: np.random.Generator,
    ):
        sizes = [n_inputs, n_hidden1, n_hidden2, n_classes]
        self.params = {}
        for k in range(3):
            self.params[f"W{k + 1}"] = rng.standard_normal((sizes[k], sizes[k + 1])) * np.sqrt(
                2.0 / sizes[k]
            )
            self.params[f"b{k + 1}"] = np.zeros(sizes[k + 1])

    def _forward(self, x):
        p = self.params
        z1 = x @ p["W1"] + p["b1"]
        h1 = np.maximum(z1, 0.0)
        z2 = h1 @ p["W2"] + p["b2"]
        h2 = np.maximum(z2, 0.0)
        z3 = h2 @ p["W3"] + p["b3"]
        z3 = z3 - z3.max(axis=1, keepdims=True)
        logp = z3 - np.log(np.exp(z3).sum(axis=1, keepdims=True))
        return z1, h1, z2, h2, logp

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities, shape (B, n_classes)."""
        return np.exp(self._forward(np.asarray(x, dtype=np.float64))[-1])

    def predict(self, x) -> np.ndarray:
        """Most probable class of each row."""
        return np.argmax(self.predict_proba(x), axis=1)

    def loss_and_gradients(self, x, y, weight_decay: float = 0.0):
        """Mean cross-entropy plus L2 penalty, and its gradients.

        With :math:`G_3 = (p - Y)/B`: :math:`\\nabla W_3 = h_2^\\top G_3`,
        :math:`G_2 = G_3 W_3^\\top \\odot [z_2>0]`, :math:`\\nabla W_2 = h_1^\\top G_2`,
        :math:`G_1 = G_2 W_2^\\top \\odot [z_1>0]`, :math:`\\nabla W_1 = x^\\top G_1`, biases the
        column sums of :math:`G_k`, plus :math:`\\lambda W_k` on the weights.
        """
        p = self.params
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        b = len(y)
        z1, h1, z2, h2, logp = self._forward(x)
        loss = -logp[np.arange(b), y].mean()
        loss += 0.5 * weight_decay * sum(np.sum(p[f"W{k}"] ** 2) for k in (1, 2, 3))
        g3 = np.exp(logp)
        g3[np.arange(b), y] -= 1.0
        g3 /= b
        g = {"W3": h2.T @ g3, "b3": g3.sum(axis=0)}
        g2 = (g3 @ p["W3"].T) * (z2 > 0)
        g["W2"], g["b2"] = h1.T @ g2, g2.sum(axis=0)
        g1 = (g2 @ p["W2"].T) * (z1 > 0)
        g["W1"], g["b1"] = x.T @ g1, g1.sum(axis=0)
        for k in (1, 2, 3):
            g[f"W{k}"] += weight_decay * p[f"W{k}"]
        return float(loss), g

    def fit(
        self,
        x,
        y,
        rng: np.random.Generator,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
    ) -> list:
        """Minibatch Adam; returns the mean training loss of each epoch."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        opt = Adam(self.params, lr=lr)
        history = []
        with _single_thread_blas():
            for _ in range(epochs):
                perm = rng.permutation(len(y))
                losses = []
                for s in range(0, len(y), batch_size):
                    idx = perm[s : s + batch_size]
                    loss, grads = self.loss_and_gradients(x[idx], y[idx], weight_decay)
                    opt.step(grads)
                    losses.append(loss)
                history.append(float(np.mean(losses)))
        return history


def noise_inference_data(
    n_samples: int,
    n_cells: int,
    n_mutations: int,
    fp_rate: float,
    fn_rate: float,
    rng: np.random.Generator,
):
    """Matrices for noise inference: half noise-free (label 0), half noisy (label 1).

    Noisy matrices are redrawn until at least one entry is flipped.  Half of the genealogies are
    linear (see :func:`genotype_matrix`) so both kinds of topology appear.

    Returns
    -------
    observed : (n_samples, n_cells, n_mutations) int8, labels : (n_samples,) int
    """
    obs = np.empty((n_samples, n_cells, n_mutations), dtype=np.int8)
    labels = np.arange(n_samples) % 2
    for s in range(n_samples):
        a = genotype_matrix(n_cells, n_mutations, rng, linear=bool(rng.random() < 0.5))
        if labels[s]:
            while True:
                noisy = add_noise(a, fp_rate, fn_rate, rng)
                if (noisy != a).any():
                    break
            a = noisy
        obs[s] = a
    return obs, labels


def branching_inference_data(
    n_samples: int,
    n_cells: int,
    n_mutations: int,
    fp_rate: float,
    fn_rate: float,
    rng: np.random.Generator,
):
    """Noisy matrices labelled by whether their noise-free matrix is branching (1) or linear (0).

    Half the genealogies carry mutations on every edge, half only along one cell's lineage; the
    label is the exact test on the noise-free matrix.

    Returns
    -------
    observed : (n_samples, n_cells, n_mutations) int8, labels : (n_samples,) int,
    truth : the noise-free matrices
    """
    obs = np.empty((n_samples, n_cells, n_mutations), dtype=np.int8)
    truth = np.empty_like(obs)
    labels = np.empty(n_samples, dtype=np.int64)
    for s in range(n_samples):
        tree = coalescent_tree(n_cells, rng)
        a = genotype_matrix(n_cells, n_mutations, rng, linear=bool(s % 2), tree=tree)
        truth[s] = a
        labels[s] = int(is_branching(a))
        obs[s] = add_noise(a, fp_rate, fn_rate, rng)
    return obs, labels, truth
