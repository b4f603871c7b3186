"""The Deep Rendering Mixture Model on the digits.

Patel, Nguyen and Baraniuk (2016); needs PyTorch (the ``ml`` extra).

Usage::

    python examples/ml/drmm.py --seed 0 [--labelled 10]
"""

import argparse

import torch

from phylo.ml.models.drmm import train_drmm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labelled", type=int, default=None, help="labelled images per class")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = train_drmm(seed=args.seed, n_labelled=args.labelled)
    print(f"test accuracy {r.accuracy:.3f}")
    print(
        f"squared rendering error per image: own latents {r.recon_error:.3f}, "
        f"another image's latents {r.shuffled_latent_error:.3f}"
    )


if __name__ == "__main__":
    main()
