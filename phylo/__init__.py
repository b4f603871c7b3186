"""phylo: tree samples, subsplit Bayesian networks and marginal likelihoods of topologies.

The library is organised by concept:

``phylo.trees``
    Reading MrBayes, BEAST and Newick tree samples into columnar arrays
    (:class:`phylo.trees.TreeSample`), clades as bitsets, split frequencies.
``phylo.sbn``
    Subsplit Bayesian networks and their estimators.
``phylo.likelihood``
    Alignments, substitution models and compiled likelihood kernels.
``phylo.marglik``
    Marginal likelihood estimators for fixed topologies.
``phylo.ml``
    Secondary: gradient estimators for discrete variables and related models.
"""

__version__ = "0.1.0"

from .errors import InputError, PhyloError  # noqa: F401
