"""Graph convolutional networks for semi-supervised node classification.

Kipf, T. N. and Welling, M. (2017). Semi-supervised classification with graph convolutional
networks. ICLR 2017.

A two-layer GCN computes, for a graph with adjacency matrix :math:`A` (n x n, symmetric,
no self-loops) and node features :math:`X` (n x d),

.. math::

    \\hat A = \\tilde D^{-1/2} (A + I) \\tilde D^{-1/2}, \\qquad
    \\tilde D_{ii} = 1 + \\sum_j A_{ij},

    Z = \\operatorname{softmax}\\bigl(\\hat A \\, \\operatorname{ReLU}(\\hat A X W_1)\\, W_2\\bigr),

the "renormalised" propagation rule of the paper.  :math:`\\hat A` is kept as a
``scipy.sparse`` matrix and every product with it is a sparse-dense product, so one epoch on
Cora (2708 nodes, 5278 edges) costs a few milliseconds.

The loss is the mean cross-entropy over the labelled nodes plus an L2 penalty
:math:`\\tfrac{\\lambda}{2} \\lVert W_1 \\rVert^2` on the first layer.  Gradients are derived by
hand (see :meth:`GCN.loss_and_gradients`) and checked against finite differences in the tests;
optimisation is Adam (Kingma and Ba, 2015).  Dropout is applied to the input features and to the
hidden layer during training (inverted dropout, so evaluation uses the weights as they are).

Everything here needs only numpy and scipy.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import InputError

__all__ = [
    "normalized_adjacency",
    "row_normalize",
    "GCN",
    "Adam",
    "TrainResult",
    "train_gcn",
    "load_planetoid_npz",
    "planted_partition",
]


def normalized_adjacency(adjacency, n_nodes: int | None = None) -> sp.csr_matrix:
    """Renormalised adjacency :math:`\\tilde D^{-1/2}(A+I)\\tilde D^{-1/2}` as a CSR matrix.

    Parameters
    ----------
    adjacency
        Either a square (sparse or dense) symmetric 0/1 matrix without self-loops, or an
        integer array of shape (m, 2) listing undirected edges ``u, v`` (each edge once).
    n_nodes
        Number of nodes, required when ``adjacency`` is an edge list (and only then: a square
        array given together with ``n_nodes`` is read as an edge list).

    Returns
    -------
    scipy.sparse.csr_matrix
        :math:`\\hat A_{ij} = (A+I)_{ij} / \\sqrt{\\tilde d_i \\tilde d_j}` with
        :math:`\\tilde d_i = 1 + \\sum_j A_{ij}`.
    """
    if sp.issparse(adjacency) or (
        np.ndim(adjacency) == 2
        and np.shape(adjacency)[0] == np.shape(adjacency)[1]
        and n_nodes is None
    ):
        a = sp.csr_matrix(adjacency, dtype=np.float64)
        if a.shape[0] != a.shape[1]:
            raise InputError(f"adjacency must be square, got shape {a.shape}")
        if abs(a - a.T).sum() > 0:
            raise InputError("adjacency must be symmetric (an undirected graph)")
        a = a.tolil()
        a.setdiag(0)
        a = a.tocsr()
        a.eliminate_zeros()
        a.data[:] = 1.0
    else:
        edges = np.asarray(adjacency)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise InputError(f"edge list must have shape (m, 2), got {edges.shape}")
        if n_nodes is None:
            raise InputError("n_nodes is required with an edge list")
        if edges.size and (edges.min() < 0 or edges.max() >= n_nodes):
            raise InputError(f"edge endpoints must lie in 0..{n_nodes - 1}")
        keep = edges[:, 0] != edges[:, 1]
        u, v = edges[keep, 0], edges[keep, 1]
        a = sp.coo_matrix(
            (np.ones(2 * len(u)), (np.concatenate([u, v]), np.concatenate([v, u]))),
            shape=(n_nodes, n_nodes),
        ).tocsr()
        a.data[:] = 1.0  # duplicate edges count once
    n = a.shape[0]
    a_tilde = a + sp.identity(n, format="csr")
    d = np.asarray(a_tilde.sum(axis=1)).ravel()
    d_inv_sqrt = sp.diags(1.0 / np.sqrt(d))
    return (d_inv_sqrt @ a_tilde @ d_inv_sqrt).tocsr()


def row_normalize(features):
    """Divide each row by its sum (rows summing to zero are left at zero)."""
    if sp.issparse(features):
        f = sp.csr_matrix(features, dtype=np.float64)
        s = np.asarray(f.sum(axis=1)).ravel()
        inv = np.divide(1.0, s, out=np.zeros_like(s), where=s != 0)
        return (sp.diags(inv) @ f).tocsr()
    f = np.asarray(features, dtype=np.float64)
    s = f.sum(axis=1, keepdims=True)
    return np.divide(f, s, out=np.zeros_like(f), where=s != 0)


@contextmanager
def _single_thread_blas():
    """Run small dense products on one BLAS thread (when ``threadpoolctl`` is installed).

    The matrices of these networks are tiny; a multi-threaded BLAS only adds synchronisation
    and, on a busy machine, slows training by an order of magnitude.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=(fan_in, fan_out))


def _dropout_sparse(x: sp.csr_matrix, rate: float, rng: np.random.Generator) -> sp.csr_matrix:
    keep = rng.random(x.nnz) >= rate
    out = x.copy()
    out.data = out.data * keep / (1.0 - rate)
    return out


class Adam:
    """Adam (Kingma and Ba, 2015) over a dict of numpy arrays, updated in place.

    .. math::
        m \\leftarrow \\beta_1 m + (1-\\beta_1) g, \\quad v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2,
        \\quad \\theta \\leftarrow \\theta - \\eta \\frac{m / (1-\\beta_1^t)}{\\sqrt{v/(1-\\beta_2^t)} + \\epsilon}
    """

    def __init__(
        self,
        params: dict,
        lr: float = 0.01,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict) -> None:
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for k, g in grads.items():
            self.m[k] *= self.beta1
            self.m[k] += (1.0 - self.beta1) * g
            self.v[k] *= self.beta2
            self.v[k] += (1.0 - self.beta2) * g * g
            self.params[k] -= self.lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)


class GCN:
    """Two-layer graph convolutional network (no biases, as in the paper's reference setting).

    Parameters
    ----------
    n_features, n_hidden, n_classes
        Layer sizes.
    rng
        Generator for the Glorot-uniform initialisation.
    """

    def __init__(self, n_features: int, n_hidden: int, n_classes: int, rng: np.random.Generator):
        self.params = {
            "W1": _glorot(rng, n_features, n_hidden),
            "W2": _glorot(rng, n_hidden, n_classes),
        }

    def logits(self, a_hat, x) -> np.ndarray:
        """:math:`\\hat A\\,\\mathrm{ReLU}(\\hat A X W_1) W_2` without dropout."""
        h = np.maximum(a_hat @ (x @ self.params["W1"]), 0.0)
        return a_hat @ (h @ self.params["W2"])

    def predict(self, a_hat, x) -> np.ndarray:
        """Most probable class of every node."""
        return np.argmax(self.logits(a_hat, x), axis=1)

    def loss_and_gradients(
        self,
        a_hat,
        x,
        labels,
        idx,
        weight_decay: float = 5e-4,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ):
        """Loss and its gradients with respect to ``W1`` and ``W2``.

        With :math:`\\tilde X` the (dropped-out) features, :math:`P_1 = \\tilde X W_1`,
        :math:`H = \\mathrm{ReLU}(\\hat A P_1)`, :math:`\\tilde H` its dropped-out copy
        (mask :math:`M/(1-p)`), :math:`Z = \\hat A \\tilde H W_2`, :math:`S=\\mathrm{softmax}(Z)`,
        and :math:`Y` the one-hot labels on the labelled set :math:`L`,

        .. math::
            \\mathcal L = -\\frac{1}{|L|}\\sum_{i\\in L}\\sum_c Y_{ic}\\log S_{ic}
                        + \\frac{\\lambda}{2}\\lVert W_1\\rVert^2,

            G_Z = (S - Y)\\,\\mathbb 1_L / |L|, \\quad
            \\nabla_{W_2} = \\tilde H^\\top \\hat A^\\top G_Z, \\quad
            G_H = \\hat A^\\top G_Z W_2^\\top \\odot M/(1-p), \\quad
            \\nabla_{W_1} = \\tilde X^\\top \\hat A^\\top (G_H \\odot [\\hat A P_1 > 0]) + \\lambda W_1.

        ``dropout`` > 0 requires ``rng``.
        """
        w1, w2 = self.params["W1"], self.params["W2"]
        a_t = a_hat.T
        if dropout > 0.0:
            if sp.issparse(x):
                x_d = _dropout_sparse(sp.csr_matrix(x), dropout, rng)
            else:
                x_d = x * (rng.random(x.shape) >= dropout) / (1.0 - dropout)
        else:
            x_d = x
        pre = a_hat @ (x_d @ w1)
        h = np.maximum(pre, 0.0)
        if dropout > 0.0:
            mask = (rng.random(h.shape) >= dropout) / (1.0 - dropout)
        else:
            mask = 1.0
        h_d = h * mask
        z = a_hat @ (h_d @ w2)
        zl = z[idx]
        zl = zl - zl.max(axis=1, keepdims=True)
        logp = zl - np.log(np.exp(zl).sum(axis=1, keepdims=True))
        y = labels[idx]
        n_l = len(idx)
        loss = -logp[np.arange(n_l), y].mean() + 0.5 * weight_decay * np.sum(w1 * w1)
        g_z = np.zeros_like(z)
        s = np.exp(logp)
        s[np.arange(n_l), y] -= 1.0
        g_z[idx] = s / n_l
        g_p2 = a_t @ g_z
        g_w2 = h_d.T @ g_p2
        g_h = (g_p2 @ w2.T) * mask
        g_pre = g_h * (pre > 0)
        g_p1 = a_t @ g_pre
        g_w1 = np.asarray(x_d.T @ g_p1) + weight_decay * w1
        return float(loss), {"W1": g_w1, "W2": g_w2}


@dataclass
class TrainResult:
    """Outcome of :func:`train_gcn`."""

    model: GCN
    epochs: int
    test_accuracy: float
    val_accuracy: float
    train_losses: list = field(default_factory=list)
    val_losses: list = field(default_factory=list)


def _accuracy(pred, labels, idx) -> float:
    return float(np.mean(pred[idx] == labels[idx]))


def _ce(logits, labels, idx) -> float:
    z = logits[idx]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(idx)), labels[idx]].mean())


def train_gcn(
    a_hat,
    features,
    labels,
    idx_train,
    idx_val,
    idx_test,
    rng: np.random.Generator,
    n_hidden: int = 16,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    dropout: float = 0.5,
    epochs: int = 200,
    early_stopping: int = 10,
) -> TrainResult:
    """Train a two-layer GCN with the paper's recipe and report test accuracy.

    Early stopping follows the reference implementation: training stops once the validation
    loss exceeds the mean of the previous ``early_stopping`` validation losses.

    Parameters
    ----------
    a_hat
        Normalised adjacency from :func:`normalized_adjacency`.
    features
        (n, d) features, dense or sparse (row-normalise them first, see :func:`row_normalize`).
    labels
        (n,) integer classes 0..C-1.
    idx_train, idx_val, idx_test
        Node indices of the labelled, validation and test sets.
    rng
        Generator for initialisation and dropout.
    """
    with _single_thread_blas():
        return _train_gcn(
            a_hat,
            features,
            labels,
            idx_train,
            idx_val,
            idx_test,
            rng,
            n_hidden,
            lr,
            weight_decay,
            dropout,
            epochs,
            early_stopping,
        )


def _train_gcn(
    a_hat,
    features,
    labels,
    idx_train,
    idx_val,
    idx_test,
    rng,
    n_hidden,
    lr,
    weight_decay,
    dropout,
    epochs,
    early_stopping,
):
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = int(labels.max()) + 1
    model = GCN(features.shape[1], n_hidden, n_classes, rng)
    opt = Adam(model.params, lr=lr)
    train_losses, val_losses = [], []
    epoch = 0
    for epoch in range(1, epochs + 1):
        loss, grads = model.loss_and_gradients(
            a_hat, features, labels, idx_train, weight_decay, dropout, rng
        )
        opt.step(grads)
        train_losses.append(loss)
        val_losses.append(_ce(model.logits(a_hat, features), labels, idx_val))
        if (
            early_stopping
            and epoch > early_stopping
            and val_losses[-1] > np.mean(val_losses[-(early_stopping + 1) : -1])
        ):
            break
    pred = model.predict(a_hat, features)
    return TrainResult(
        model,
        epoch,
        _accuracy(pred, labels, idx_test),
        _accuracy(pred, labels, idx_val),
        train_losses,
        val_losses,
    )


def load_planetoid_npz(path) -> dict:
    """Read a Planetoid split stored as ``.npz`` (CSR features, labels, edges, index sets).

    Returns a dict with ``a_hat`` (normalised adjacency), ``features`` (row-normalised CSR),
    ``labels``, ``idx_train``, ``idx_val``, ``idx_test``.
    """
    path = Path(path)
    try:
        d = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a .npz archive: {exc}", str(path)) from None
    need = [
        "features_data",
        "features_indices",
        "features_indptr",
        "features_shape",
        "labels",
        "edges",
        "idx_train",
        "idx_val",
        "idx_test",
    ]
    missing = [k for k in need if k not in d.files]
    if missing:
        raise InputError(f"missing arrays {missing}", str(path))
    shape = tuple(int(s) for s in d["features_shape"])
    x = sp.csr_matrix(
        (d["features_data"].astype(np.float64), d["features_indices"], d["features_indptr"]),
        shape=shape,
    )
    n = shape[0]
    return {
        "a_hat": normalized_adjacency(d["edges"], n),
        "features": row_normalize(x),
        "labels": d["labels"].astype(np.int64),
        "idx_train": d["idx_train"].astype(np.int64),
        "idx_val": d["idx_val"].astype(np.int64),
        "idx_test": d["idx_test"].astype(np.int64),
    }


def planted_partition(
    n_blocks: int,
    block_size: int,
    p_in: float,
    p_out: float,
    n_features: int,
    feature_signal: float,
    rng: np.random.Generator,
):
    """A planted-partition (stochastic block model) graph with weakly informative features.

    Nodes of block ``b`` link to each other with probability ``p_in`` and to other blocks with
    ``p_out``.  Features are standard normal plus ``feature_signal`` times a random unit-variance
    class mean, so a classifier ignoring the graph does only a little better than chance.

    Returns
    -------
    edges : (m, 2) int array, features : (n, n_features) array, labels : (n,) int array
    """
    n = n_blocks * block_size
    labels = np.repeat(np.arange(n_blocks), block_size)
    iu, ju = np.triu_indices(n, k=1)
    p = np.where(labels[iu] == labels[ju], p_in, p_out)
    keep = rng.random(len(iu)) < p
    edges = np.stack([iu[keep], ju[keep]], axis=1)
    means = rng.standard_normal((n_blocks, n_features))
    features = rng.standard_normal((n, n_features)) + feature_signal * means[labels]
    return edges, features, labels
