"""A VAE on the digits trained with GECO for two reconstruction tolerances.

Rezende and Viola (2018); needs PyTorch (the ``ml`` extra).

Usage::

    python examples/ml/vae_geco.py --kappa2 1.5 2.5
"""

import argparse

import torch

from phylo.ml.models.vae_geco import train_vae_geco


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kappa2",
        type=float,
        nargs="+",
        default=[1.5, 2.5],
        help="tolerated squared error per image",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("kappa^2  held-out error  held-out KL  lambda")
    for k2 in args.kappa2:
        r = train_vae_geco(k2, seed=args.seed)
        print(f"{k2:7.2f}  {r.test_sq_error:14.3f}  {r.test_kl:11.2f}  {r.lagrange:6.3f}")


if __name__ == "__main__":
    main()
