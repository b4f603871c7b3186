"""phylo: tree samples, subsplit Bayesian networks and marginal likelihoods of topologies.

Everything is a library first; the commands ``sbn`` and ``marglik`` (:mod:`phylo.cli`, the
folder ``cli/`` of the source tree) parse options, call one function here and print.

The library is organised by concept, each module owning one thing:

``phylo.errors``
    One exception hierarchy: :class:`InputError` (file, line, column) for what a user can
    get wrong; the commands print its one line and exit with status 2.
``phylo.provenance``, ``phylo.tables``, ``phylo.outputs``
    What every output records (command, versions, CPU, inputs' digests, seed); the one TSV
    format every table is written in; safe output files (atomic, links, full disks).
``phylo.execution``, ``phylo.progress``
    Tasks on local processes, Dask or array-job shards, with random streams keyed by task,
    resumable locked result tables and :func:`~phylo.execution.run_comparison`; the
    progress line.
``phylo.trees``
    Tree samples as columnar arrays (:class:`phylo.trees.TreeSample`), the one topology core
    (canonical parent arrays, clades as bitsets), readers and writers, split tables,
    summary trees and credible sets.
``phylo.sbn``
    Subsplit Bayesian networks and their estimators; fitted distributions (exact
    probabilities, sampling, top k, entropy), model files.
``phylo.likelihood``
    Alignments, substitution models and the compiled likelihood kernels with gradients.
``phylo.marglik``
    Marginal likelihoods of fixed topologies: the posterior, samplers, the 19 estimators and
    the comparison of many trees x estimators.
``phylo.ml``
    Secondary: gradient estimators for discrete variables and related models.
"""

__version__ = "0.1.0"

from .errors import InputError, PhyloError  # noqa: F401
