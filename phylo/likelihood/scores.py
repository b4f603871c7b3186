"""The log-likelihood of every tree of a file, each with its own branch lengths.

What ``marglik loglik`` reports.  Trees come from any file :mod:`phylo.trees` reads (Newick,
NEXUS, MrBayes or BEAST samples) or from a table with a ``newick`` column (``sbn top``,
``sbn sample``; see :mod:`phylo.trees.listing`), in file order; every tree is evaluated,
repeated topologies included.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import InputError
from .alignment import Alignment, read_alignment
from .models import Model
from .tree_likelihood import TreeLikelihood


def _trees_with_lengths(path: str) -> Iterator[tuple[int, object]]:
    from ..trees import Tree, read_trees
    from ..trees.files import read_text
    from ..trees.listing import list_kind, read_tree_list

    if list_kind(read_text(path).splitlines()) is not None:
        trees, _ = read_tree_list(path)
        for i, tree in enumerate(trees, 1):
            if tree.branch_lengths is None:
                raise InputError(f"tree {i} has no branch lengths", path)
            _check_lengths(tree.branch_lengths[:-1], i, path)
            yield i, tree
        return
    sample = read_trees(path, burnin=0, lengths=True)
    i = 0
    for run, trace in enumerate(sample.traces):
        for pos, topo in enumerate(trace):
            i += 1
            lengths = np.asarray(sample.lengths[run][pos], dtype=np.float64)
            _check_lengths(lengths[:-1], i, path)
            yield i, Tree(sample.taxa, sample.parents[topo], lengths, sample.rooted)


def _check_lengths(lengths: np.ndarray, i: int, path: str) -> None:
    if np.any(np.isnan(lengths)):
        raise InputError(f"tree {i} has no branch lengths (or not on every branch)", path)
    if np.any(np.isinf(lengths)):
        raise InputError(f"tree {i} has an infinite branch length", path)
    if lengths.size and lengths.min() < 0:
        raise InputError(f"tree {i} has a negative branch length ({lengths.min():g})", path)


def tree_log_likelihoods(
    alignment: str | Alignment, trees: str, model: Model
) -> list[tuple[int, float]]:
    """``[(tree number, log-likelihood)]`` of every tree in the file ``trees``.

    Parameters
    ----------
    alignment
        An :class:`~phylo.likelihood.Alignment` or the path of one (FASTA, NEXUS, PHYLIP).
    trees
        A tree file or table; every tree must carry branch lengths, none negative.
    model
        The substitution model.
    """
    aln = read_alignment(alignment) if isinstance(alignment, str) else alignment
    out = []
    for i, tree in _trees_with_lengths(trees):
        lengths = tree.branch_lengths[:-1]
        # one evaluation per tree: setting up site repeats would cost more than they save
        lik = TreeLikelihood(aln, tree, model, site_repeats=False)
        out.append((i, float(lik.log_likelihood(lengths))))
    if not out:
        raise InputError("no tree found", trees)
    return out
