"""Alignments, substitution models and compiled likelihood kernels.

``Alignment`` / ``read_alignment``
    FASTA, NEXUS and PHYLIP readers, IUPAC ambiguity codes, site patterns.
``JC69``, ``K80``, ``HKY``, ``GTR``, ``parse_model``
    Reversible nucleotide models with discrete Gamma rates and invariant sites.
``TreeLikelihood``
    Log-likelihood of a fixed topology (``log_likelihood``), the log-likelihood and its
    gradient over every branch in one pass (``gradient``), batches of branch-length
    vectors (``log_likelihood_batch``, ``gradient_batch``), per-pattern and per-site
    log-likelihoods (``pattern_log_likelihoods``, ``site_log_likelihoods``), the model as
    plain arrays (``model_arrays``).  Branch ``i`` is the edge above node ``i`` of the
    tree; ``branch_splits()`` gives the split of each branch.
``TopologyBatchLikelihood``
    Log-likelihoods and gradients of a batch of (topology, branch lengths) rows, each
    row its own topology, in threads (variational inference over topologies).
``random_tree``, ``simulate_alignment``
    Simulation for tests and benchmarks (trees are :class:`phylo.trees.Tree`).

Layout (one role per module):

``alignment.py``, ``models.py``, ``simulate.py``
    Alignments and site patterns; substitution models; simulation.
``tree_likelihood.py``
    ``TreeLikelihood``, the typed wrapper: validates, plans storage and threads, calls
    the kernels.
``_kernels.py``
    The compiled kernels and nothing else: plain functions over arrays, and the layout of
    the arrays they read (model vector, buffer rows).
``_families.py``
    Loads ``_kernels.py`` once per model family and caches each copy, keyed by a digest
    of every file that shapes the compiled code.
``_llvm_options.py``
    The LLVM settings the kernels compile under, in force only while they compile.
``_buffers.py``
    The kernels' work buffers: their size, and zeroed memory on transparent huge pages.
"""

from .alignment import (
    Alignment,
    SitePatterns,
    parse_alignment,
    read_alignment,  # noqa: F401
    read_fasta,
    read_nexus,
    read_phylip,
)
from .models import (  # noqa: F401
    GTR,
    HKY,
    JC69,
    K80,
    Model,
    gamma_rates,
    model_from_spec,
    model_spec,
    parse_model,
)
from .simulate import random_tree, simulate_alignment  # noqa: F401
from .topology_batch import TopologyBatchLikelihood  # noqa: F401
from .tree_likelihood import TreeLikelihood, topology_arrays  # noqa: F401

__all__ = [
    "Alignment",
    "SitePatterns",
    "read_alignment",
    "parse_alignment",
    "read_fasta",
    "read_nexus",
    "read_phylip",
    "Model",
    "JC69",
    "K80",
    "HKY",
    "GTR",
    "parse_model",
    "model_spec",
    "model_from_spec",
    "gamma_rates",
    "TreeLikelihood",
    "TopologyBatchLikelihood",
    "topology_arrays",
    "random_tree",
    "simulate_alignment",
]
