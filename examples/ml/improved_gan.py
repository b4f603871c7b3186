"""Improved GAN techniques on the digits: semi-supervised classification and sample scores.

Salimans et al. (2016); needs PyTorch (the ``ml`` extra).

Usage::

    python examples/ml/improved_gan.py --labelled 5
"""

import argparse

import torch

from phylo.ml.models.improved_gan import train_minibatch_gan, train_semi_supervised_gan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labelled", type=int, default=5, help="labelled images per class")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = train_semi_supervised_gan(n_per_class=args.labelled, seed=args.seed, epochs=40)
    print(
        f"semi-supervised GAN with {10 * args.labelled} labels: test accuracy {r.accuracy:.3f} "
        f"(labels alone {r.supervised_only_accuracy:.3f})"
    )
    _, _, scores = train_minibatch_gan(seed=args.seed, epochs=20)
    print(
        "inception-style scores (digits classifier): "
        + ", ".join(f"{k} {v:.2f}" for k, v in scores.items())
    )


if __name__ == "__main__":
    main()
