"""Sparse variational dropout and Bayesian compression of an MLP on the digits.

Molchanov et al. (2017); Louizos et al. (2017); needs PyTorch (the ``ml`` extra).

Usage::

    python examples/ml/sparse_mlp.py --seed 0
"""

import argparse

import torch

from phylo.ml.models.sparse_mlp import train_sparse_mlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for kind, name in (("svd", "sparse variational dropout"), ("bc", "Bayesian compression")):
        r = train_sparse_mlp(kind, seed=args.seed)
        units = ", ".join(f"{u:.2f}" for u in r.unit_sparsity)
        print(
            f"{name}: test accuracy {r.accuracy:.3f} (unpruned {r.dense_accuracy:.3f}), "
            f"weights removed {r.weight_sparsity:.3f}, input units removed per layer [{units}]"
        )
        if kind == "bc":
            bits = [layer.bit_precision() for layer in r.model.layers]
            print(f"  bits per kept weight, per layer: {bits}")


if __name__ == "__main__":
    main()
