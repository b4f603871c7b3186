"""Conditional clade distributions (Larget, "The estimation of tree posterior probabilities
using conditional clade probability distributions", Systematic Biology 2013).

Rooted trees
    ``p(T) = prod over internal nodes v of p(subsplit at v | clade of v)`` with the clade
    conditional probabilities estimated by counts: ``p(s | C) = m(C -> s) / m(C)``.  This is
    an SBN whose conditional probabilities depend on the clade only, not on its parent
    subsplit: clade conditioning (``conditioning="clade"`` in :mod:`phylo.sbn.support`).

Unrooted trees (the form of Zhang & Matsen, NeurIPS 2018, Table 1)
    The paper's code counts, for every unrooted training tree, each side ``C`` of each edge
    once (weight ``w_t / (2n-3)``) with the subsplit it has on the far side, and scores a tree
    as ``(2n-3)`` times the probability of one of its rootings under the resulting rooted CCD
    (whose root split distribution is the split frequencies divided by ``2n-3``).  That
    rooted CCD is a clade-conditioned SBN fitted by simple averaging over rootings, and its
    probability is the same for every rooting of a tree: moving the root across node ``u``
    from edge ``(u, a)`` to edge ``(u, b)`` multiplies it by ``m(a -> u) / m(b -> u)``, and
    both counts are the frequency of trees with the tripartition at ``u``.  So the paper's
    score equals the sum over all rootings (the unrooted SBN probability computed here), and
    also Larget's unrooted CCD, which roots every tree at a fixed outgroup taxon, whichever
    taxon that is.
"""

from __future__ import annotations

from ..trees import TreeSample
from .model import SBNModel
from .sbn import Training


def fit_ccd(sample: TreeSample) -> SBNModel:
    """Fit the conditional clade distribution to a sample (rooted or unrooted)."""
    tr = Training(sample, "clade")
    lt = tr.normalise(tr.sa_counts())
    info = {
        "n_topologies": int(tr.parents.shape[0]),
        "log_likelihood": float(tr.weights @ tr.log_likelihoods(lt)),
    }
    return SBNModel(sample.taxa, tr.support, lt[:-1], "ccd", info)
