"""Tree probability estimation: subsplit Bayesian networks and their baselines.

Zhang & Matsen, "Generalizing tree probability estimation via Bayesian networks", NeurIPS
2018; Larget, Systematic Biology 2013 (CCD).

>>> from phylo.trees import read_trees
>>> from phylo.sbn import fit
>>> sample = read_trees(["run1.t", "run2.t"])                 # doctest: +SKIP
>>> model = fit(sample, "em-alpha")                             # doctest: +SKIP
>>> model.log_prob(sample)[:3], model.top(5).log_prob           # doctest: +SKIP

Modules, each importing only those above it (``tests/test_import_graph.py`` checks that the
package has no import loop):

- :mod:`~phylo.sbn.methods`: the estimators' names (:data:`METHODS`, the one list) and
  default settings, importing nothing;
- :mod:`~phylo.sbn._kernels`: the numba kernels (indexing, rootings, sampling);
- :mod:`~phylo.sbn.support`: integer ids for root splits, subsplits and PCSPs;
- :mod:`~phylo.sbn.rootings`: all rootings of a tree in O(n): probabilities, E-step;
- :mod:`~phylo.sbn.topologies`: trees in any form, as parent arrays on a model's taxa;
- :mod:`~phylo.sbn.derivations`: dynamic programming over the subsplit graph (k best
  trees, entropy);
- :mod:`~phylo.sbn.distribution`: the interface of every fitted distribution, its result
  types (:class:`TopTrees`, :class:`Entropy`) and the model file's common fields;
- :mod:`~phylo.sbn.model`: :class:`SBNModel`, the fitted SBN (probabilities, gradients,
  exact sampling, top k, entropy, its JSON fields);
- :mod:`~phylo.sbn.srf`: :class:`SRFModel`, sample relative frequencies;
- :mod:`~phylo.sbn.sbn`: the SBN estimators SBN-SA, SBN-EM, SBN-EM-alpha;
- :mod:`~phylo.sbn.ccd`: the conditional clade distribution;
- :mod:`~phylo.sbn.estimators`: :func:`fit`, the estimator chosen by name (a module named
  ``fit`` would be hidden by the function ``phylo.sbn.fit``);
- :mod:`~phylo.sbn.io`: :func:`load_model` and :func:`save_model` for both kinds;
- :mod:`~phylo.sbn.reference`: reference distributions (pooled golden runs) and
  ``KL(reference || model)`` (:func:`kl_to_reference`, used by ``sbn kl``);
- :mod:`~phylo.sbn.compare`: estimators x training replicates (``sbn compare``);
- :mod:`~phylo.sbn.sampling`: exact draws in blocks of bounded size (``sbn sample``);
- :mod:`~phylo.sbn.credible`: credible sets of topologies and each topology's credible
  level (exact for SBNs by top-k enumeration; from sample frequencies otherwise).

The names below are loaded when first used (PEP 562), so that importing
:mod:`phylo.sbn.methods` alone, as the command line does to offer its choices, does not load
the compiled kernels.
"""

from __future__ import annotations

import importlib

#: Each public name and the module that defines it.
_HOMES = {
    "fit": "estimators",
    "fit_sbn": "sbn",
    "fit_ccd": "ccd",
    "fit_srf": "srf",
    "SBNModel": "model",
    "SRFModel": "srf",
    "TreeDistribution": "distribution",
    "Support": "support",
    "Indexer": "support",
    "index_sample": "support",
    "Training": "sbn",
    "expectation_maximization": "sbn",
    "load_model": "io",
    "save_model": "io",
    "kl_divergence": "reference",
    "kl_to_reference": "reference",
    "KLResult": "reference",
    "pooled_frequencies": "reference",
    "KL_FLOOR": "reference",
    "compare_estimators": "compare",
    "METHODS": "methods",
    "SBN_METHODS": "methods",
    "ALPHA_FORMS": "methods",
    "DEFAULT_ALPHA": "methods",
    "Entropy": "distribution",
    "TopTrees": "distribution",
    "group_log_softmax": "model",
    "read_for_model": "topologies",
    "topology_arrays": "topologies",
}

__all__ = list(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
