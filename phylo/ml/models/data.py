"""scikit-learn's 8 x 8 handwritten digits as torch tensors.

The data set (1797 images, 10 classes, pixel values 0..16; Alpaydin, E. and Kaynak, C. (1998),
Optical recognition of handwritten digits, UCI Machine Learning Repository) ships with
scikit-learn, so it is available offline.  Pixels are scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["digits_split"]


def digits_split(seed: int = 0, test_fraction: float = 0.25):
    """Stratified random split of the digits into training and test tensors.

    Returns
    -------
    x_train, y_train, x_test, y_test
        Float32 images flattened to 64 values in [0, 1], int64 labels.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    train = rng.permutation(np.concatenate(train))
    test = np.concatenate(test)
    t = torch.from_numpy
    return t(x[train]), t(y[train]), t(x[test]), t(y[test])
