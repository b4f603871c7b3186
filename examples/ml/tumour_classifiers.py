"""Noise inference and branching inference on simulated single-cell genotype matrices.

Sadeqi Azer et al. (2020).  Trains the two-hidden-layer numpy networks on simulated 10 x 10
matrices and reports their accuracy on freshly simulated held-out matrices, next to the exact
tests applied directly to the observed matrices.

Usage::

    python examples/ml/tumour_classifiers.py --seed 0
"""

import argparse

import numpy as np

from phylo.ml import tumour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fp", type=float, default=0.01, help="false positive rate")
    parser.add_argument("--fn", type=float, default=0.15, help="false negative rate")
    args = parser.parse_args()
    train_rng = np.random.default_rng(args.seed)
    test_rng = np.random.default_rng(args.seed + 1_000_003)

    x, y = tumour.noise_inference_data(20000, 10, 10, args.fp, args.fn, train_rng)
    xt, yt = tumour.noise_inference_data(1000, 10, 10, args.fp, args.fn, test_rng)
    net = tumour.TwoHiddenLayerClassifier(100, 128, 64, 2, np.random.default_rng(args.seed))
    net.fit(tumour.matrix_features(x), y, train_rng, epochs=30, weight_decay=1e-3)
    acc = np.mean(net.predict(tumour.matrix_features(xt)) == yt)
    exact = np.mean((~tumour.batch_is_perfect_phylogeny(xt)).astype(int) == yt)
    print(
        f"noise inference: network {acc:.3f}, three-gametes test on the observed matrix {exact:.3f}"
    )

    x, y, _ = tumour.branching_inference_data(4000, 10, 10, args.fp, args.fn, train_rng)
    xt, yt, _ = tumour.branching_inference_data(1000, 10, 10, args.fp, args.fn, test_rng)
    net = tumour.TwoHiddenLayerClassifier(100, 128, 64, 2, np.random.default_rng(args.seed))
    net.fit(tumour.matrix_features(x), y, train_rng, epochs=30, weight_decay=1e-3)
    acc = np.mean(net.predict(tumour.matrix_features(xt)) == yt)
    naive = np.mean([(not tumour.is_linear(m)) == bool(t) for m, t in zip(xt, yt)])
    print(
        f"branching inference: network {acc:.3f}, "
        f"exact linear test on the observed matrix {naive:.3f}"
    )


if __name__ == "__main__":
    main()
