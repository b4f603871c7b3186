#!/usr/bin/env python3
"""Simulate the example alignment in this folder.

A random tree on 20 taxa (Kingman coalescent, scaled so that the tree is neither too easy nor
hopeless for 400 sites) and 400 sites under JC69.  Writes ``example.fasta``,
``example.nex`` (a MrBayes-readable data block) and ``example_true.nwk`` (the true tree with
branch lengths).  Deterministic for a given ``--seed``.

Usage::

    python data/simulate.py --seed 2026
    mb data/mrbayes.nex          # from inside data/: runs MrBayes on example.nex
"""

from __future__ import annotations

import argparse
import os

import numpy as np

N_TAXA = 20
N_SITES = 400
TREE_HEIGHT = 0.25


def coalescent_tree(rng, n):
    """Kingman coalescent: returns (children pairs, node ages); leaves 0..n-1 at age 0."""
    ages = [0.0] * n
    alive = list(range(n))
    children = {}
    t = 0.0
    nxt = n
    while len(alive) > 1:
        k = len(alive)
        t += rng.exponential(2.0 / (k * (k - 1)))
        i, j = rng.choice(k, size=2, replace=False)
        a, b = alive[i], alive[j]
        children[nxt] = (a, b)
        ages.append(t)
        alive = [x for x in alive if x not in (a, b)] + [nxt]
        nxt += 1
    return children, np.array(ages), alive[0]


def simulate(seed):
    rng = np.random.default_rng(seed)
    children, ages, root = coalescent_tree(rng, N_TAXA)
    ages *= TREE_HEIGHT / ages[root]
    names = [f"T{i + 1:02d}" for i in range(N_TAXA)]
    seqs = {}

    def evolve(node, parent_seq, length):
        # JC69: with probability 1 - exp(-4/3 t) the site is redrawn uniformly
        p_change = 1.0 - np.exp(-4.0 / 3.0 * length)
        redraw = rng.random(N_SITES) < p_change
        seq = np.where(redraw, rng.integers(0, 4, N_SITES), parent_seq)
        if node < N_TAXA:
            seqs[node] = seq
        else:
            for c in children[node]:
                evolve(c, seq, ages[node] - ages[c])

    root_seq = rng.integers(0, 4, N_SITES)
    for c in children[root]:
        evolve(c, root_seq, ages[root] - ages[c])

    def newick(node):
        if node < N_TAXA:
            return names[node]
        a, b = children[node]
        return f"({newick(a)}:{ages[node] - ages[a]:.6f},{newick(b)}:{ages[node] - ages[b]:.6f})"

    letters = np.array(list("ACGT"))
    rows = ["".join(letters[seqs[i]]) for i in range(N_TAXA)]
    return names, rows, newick(root) + ";"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    names, rows, tree = simulate(args.seed)
    with open(os.path.join(args.out, "example.fasta"), "w") as fh:
        for name, row in zip(names, rows):
            fh.write(f">{name}\n{row}\n")
    with open(os.path.join(args.out, "example.nex"), "w") as fh:
        fh.write("#NEXUS\n\nbegin data;\n")
        fh.write(f"  dimensions ntax={N_TAXA} nchar={N_SITES};\n")
        fh.write("  format datatype=dna missing=? gap=-;\n  matrix\n")
        for name, row in zip(names, rows):
            fh.write(f"    {name}  {row}\n")
        fh.write("  ;\nend;\n")
    with open(os.path.join(args.out, "example_true.nwk"), "w") as fh:
        fh.write(tree + "\n")


if __name__ == "__main__":
    main()
