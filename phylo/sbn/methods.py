"""The estimators' names and default settings: plain constants that import nothing.

They are the one list of names the library and the command line share (the ``--method``
and ``--alpha-form`` choices of ``sbn fit``), kept apart from the estimators themselves so
that the command line can offer them without loading the library and its compiled kernels.
"""

#: The subsplit Bayesian network estimators of :mod:`phylo.sbn.sbn`: simple averaging, EM,
#: and EM with Dirichlet pseudo-counts (Zhang & Matsen, NeurIPS 2018, section 4).
SBN_METHODS = ("sa", "em", "em-alpha")

#: Every estimator :func:`phylo.sbn.fit` knows, in the order of the paper's Table 1: sample
#: relative frequencies, the conditional clade distribution, then the SBN estimators.
METHODS = ("srf", "ccd", *SBN_METHODS)

#: How ``em-alpha`` spreads its pseudo-counts (see :mod:`phylo.sbn.sbn`).
ALPHA_FORMS = ("paper", "bito")

#: The prior strength of ``em-alpha`` (the paper's).
DEFAULT_ALPHA = 1e-4
