"""Fitting a tree distribution by the estimator's name: :func:`fit`.

The names are :data:`phylo.sbn.methods.METHODS`, in the order of Zhang & Matsen's Table 1
(NeurIPS 2018):

- ``srf``: sample relative frequencies (:func:`phylo.sbn.srf.fit_srf`);
- ``ccd``: conditional clade distribution (:func:`phylo.sbn.ccd.fit_ccd`);
- ``sa``, ``em``, ``em-alpha``: subsplit Bayesian networks by simple averaging, EM and
  regularised EM (:func:`phylo.sbn.sbn.fit_sbn`; :data:`~phylo.sbn.methods.SBN_METHODS`).
"""

from __future__ import annotations

import inspect

from ..errors import InputError
from ..trees import TreeSample
from .ccd import fit_ccd
from .distribution import TreeDistribution
from .methods import METHODS, SBN_METHODS
from .sbn import fit_sbn
from .srf import fit_srf

_OTHERS = {"srf": fit_srf, "ccd": fit_ccd}
_SBN_OPTIONS = frozenset(inspect.signature(fit_sbn).parameters) - {"sample", "method"}


def fit(sample: TreeSample, method: str = "em-alpha", **options) -> TreeDistribution:
    """Fit the tree distribution ``method`` (one of :data:`~phylo.sbn.methods.METHODS`) to
    a sample.

    Parameters
    ----------
    sample
        Topologies with counts or weights (:func:`phylo.trees.read_trees`).
    method
        ``srf``, ``ccd``, ``sa``, ``em`` or ``em-alpha`` (see the module docstring).
    options
        Settings of the SBN estimators (``alpha``, ``alpha_form``, ``max_iter``,
        ``min_iter``, ``tol``, ``conditioning``, ``progress``, ``training``; see
        :func:`~phylo.sbn.sbn.fit_sbn`).  ``srf`` and ``ccd`` have no settings and ignore
        these, so that one set of options serves every method; any other name is a
        ``TypeError``.

    Returns
    -------
    An :class:`~phylo.sbn.SRFModel` for ``srf``, an :class:`~phylo.sbn.SBNModel` otherwise.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if method in SBN_METHODS:
        return fit_sbn(sample, method, **options)
    unknown = sorted(set(options) - _SBN_OPTIONS)
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}")
    return _OTHERS[method](sample)
