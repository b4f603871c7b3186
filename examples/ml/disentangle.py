"""Disentangling the digit class from style with adversarial training.

Mathieu et al. (2016); needs PyTorch (the ``ml`` extra).

Usage::

    python examples/ml/disentangle.py --seed 0
"""

import argparse

import torch

from phylo.ml.models.disentangle import train_disentangler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for w, name in ((0.05, "with adversarial term"), (0.0, "without adversarial term")):
        r = train_disentangler(seed=args.seed, adv_weight=w)
        print(
            f"{name}: Dec(s(a), z(b)) read as a's class {r.specified_class_rate:.3f}, "
            f"as b's class {r.unspecified_class_rate:.3f} "
            f"(judge accuracy {r.classifier_accuracy:.3f})"
        )


if __name__ == "__main__":
    main()
