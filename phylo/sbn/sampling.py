"""Exact draws from a fitted tree distribution, in blocks of bounded size.

``sbn sample -n 1000000000`` must not hold a billion trees: :func:`draw_newick` draws
``block`` trees at a time from one generator.  For an SBN each draw consumes ``n_taxa - 1``
uniforms in order, so the trees are the same as one call of ``model.sample(n, rng)`` with the
same seed, whatever the block size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK = 1 << 16


def draw_newick(
    model, n: int, seed: int, block: int = BLOCK, lengths=None
) -> Iterator[tuple[float, str]]:
    """``n`` exact draws from ``model`` as ``(log probability, Newick)``, ``block`` at a time.

    Parameters
    ----------
    model
        A fitted model with ``sample(n, rng)`` (SBN or SRF).
    n
        Number of trees.
    seed
        Seed of the one generator all blocks draw from.
    block
        Trees held in memory at once.
    lengths
        A :class:`phylo.trees.splits.SplitLengths` to give the trees branch lengths (the
        mean length of each split in a tree sample), or ``None`` for topologies only.
    """
    from ..trees import write_newick

    rng = np.random.default_rng(seed)
    names = model.taxa.names
    done = 0
    while done < n:
        m = min(block, n - done)
        parents, logp = model.sample(m, rng)
        bl = lengths.lengths(parents) if lengths is not None else [None] * m
        for row, lp, b in zip(parents, logp, bl):
            yield float(lp), write_newick(row, names, b, model.rooted)
        done += m
