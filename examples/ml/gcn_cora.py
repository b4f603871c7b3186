"""Train the two-layer GCN of Kipf and Welling (2017) on the Cora Planetoid split.

Usage::

    python examples/ml/gcn_cora.py path/to/cora_planetoid.npz --seeds 3

Without a Cora archive, ``--planted`` trains on a built-in planted-partition graph instead.
"""

import argparse

import numpy as np

from phylo.ml import gcn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz", nargs="?", help="Planetoid split as .npz")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--planted", action="store_true", help="use a planted-partition graph")
    args = parser.parse_args()
    if args.planted or args.npz is None:
        rng = np.random.default_rng(0)
        edges, x, labels = gcn.planted_partition(4, 60, 0.12, 0.008, 20, 0.25, rng)
        n = len(labels)
        perm = rng.permutation(n)
        idx_train = np.concatenate([perm[labels[perm] == c][:5] for c in range(4)])
        rest = np.setdiff1d(perm, idx_train)
        data = {
            "a_hat": gcn.normalized_adjacency(edges, n),
            "features": x,
            "labels": labels,
            "idx_train": idx_train,
            "idx_val": rest[:40],
            "idx_test": rest[40:],
        }
    else:
        data = gcn.load_planetoid_npz(args.npz)
    accs = []
    for seed in range(args.seeds):
        r = gcn.train_gcn(
            data["a_hat"],
            data["features"],
            data["labels"],
            data["idx_train"],
            data["idx_val"],
            data["idx_test"],
            np.random.default_rng(seed),
        )
        accs.append(r.test_accuracy)
        print(
            f"seed {seed}: {r.epochs} epochs, validation {r.val_accuracy:.3f}, "
            f"test {r.test_accuracy:.3f}"
        )
    print(f"mean test accuracy {np.mean(accs):.3f} over {len(accs)} seeds")


if __name__ == "__main__":
    main()
