"""Tree probability estimation: subsplit Bayesian networks and their baselines.

Zhang & Matsen, "Generalizing tree probability estimation via Bayesian networks", NeurIPS
2018; Larget, Systematic Biology 2013 (CCD).

>>> from phylo.trees import read_trees
>>> from phylo.sbn import fit
>>> sample = read_trees(["run1.t", "run2.t"])                 # doctest: +SKIP
>>> model = fit(sample, "em-alpha")                             # doctest: +SKIP
>>> model.log_prob(sample)[:3], model.top(5).log_prob           # doctest: +SKIP

Modules: :mod:`~phylo.sbn.support` (integer ids for root splits, subsplits and PCSPs),
:mod:`~phylo.sbn.sbn` (SBN-SA, SBN-EM, SBN-EM-alpha), :mod:`~phylo.sbn.ccd`,
:mod:`~phylo.sbn.srf`, :mod:`~phylo.sbn.model` (the fitted distribution),
:mod:`~phylo.sbn.rootings` (all rootings of a tree in O(n): probabilities, E-step),
:mod:`~phylo.sbn.derivations` (DP over the subsplit graph: k best trees, entropy),
:mod:`~phylo.sbn.reference` (ground truth and KL divergence),
:mod:`~phylo.sbn.topologies` (trees in any form, on a model's taxa),
:mod:`~phylo.sbn.widen` (the support widened to the NNI neighbours of the sample).
"""

from .ccd import fit_ccd
from .model import Entropy, SBNModel, TopTrees, group_log_softmax, load_model, save_model
from .reference import KL_FLOOR, compare_estimators, kl_divergence, kl_to_model, pooled_frequencies
from .sbn import (
    ALPHA_FORMS,
    DEFAULT_ALPHA,
    METHODS,
    Training,
    expectation_maximization,
    fit,
    fit_sbn,
)
from .srf import SRFModel, fit_srf
from .support import Indexer, Support, index_sample
from .topologies import read_for_model, topology_arrays
from .widen import fit_widened, nni_neighbours

__all__ = [
    "fit",
    "fit_sbn",
    "fit_ccd",
    "fit_srf",
    "SBNModel",
    "SRFModel",
    "Support",
    "Indexer",
    "index_sample",
    "Training",
    "expectation_maximization",
    "load_model",
    "save_model",
    "kl_divergence",
    "kl_to_model",
    "pooled_frequencies",
    "KL_FLOOR",
    "compare_estimators",
    "METHODS",
    "ALPHA_FORMS",
    "DEFAULT_ALPHA",
    "Entropy",
    "TopTrees",
    "group_log_softmax",
    "read_for_model",
    "topology_arrays",
    "fit_widened",
    "nni_neighbours",
]
