"""Noise elimination with a pointer network against the exact minimum-flip correction.

Sadeqi Azer et al. (2020); needs PyTorch (the ``ml`` extra).

Usage::

    python examples/ml/tumour_noise_elimination.py --seed 0 [--rl-steps 200]
"""

import argparse

import torch

from phylo.ml.models.pointer_network import train_noise_elimination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rl-steps",
        type=int,
        default=0,
        help="policy-gradient fine-tuning steps after supervised training",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = train_noise_elimination(seed=args.seed, rl_steps=args.rl_steps)
    print("held-out 6 x 6 matrices            exact recovery  entry accuracy")
    print(
        f"observed, uncorrected               {r.uncorrected_exact:14.3f}  "
        f"{r.uncorrected_entry:14.4f}"
    )
    print(f"exact minimum-flip correction       {r.baseline_exact:14.3f}  {r.baseline_entry:14.4f}")
    print(f"pointer network                     {r.pointer_exact:14.3f}  {r.pointer_entry:14.4f}")
    print(
        f"conflict-free after pointer network {r.pointer_conflict_free:.3f} "
        f"(uncorrected {r.uncorrected_conflict_free:.3f})"
    )
    print(
        f"mean log-likelihood ratio (penalised if conflicts remain): pointer network "
        f"{r.pointer_reward:.3f}, minimum-flip {r.baseline_reward:.3f}"
    )


if __name__ == "__main__":
    main()
