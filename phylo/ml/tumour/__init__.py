"""Tumour phylogeny from noisy single-cell genotype matrices.

Sadeqi Azer, E., Haghir Ebrahimabadi, M., Malikić, S., Khardon, R. and Sahinalp, S. C. (2020).
Tumor phylogeny topology inference via deep learning. iScience 23(11), 101655.

``simulate``
    Coalescent genealogies, infinite-sites genotype matrices, false positive/negative noise.
``phylogeny``
    Exact three-gametes (perfect phylogeny) and linear/branching tests; an exact minimum-flip
    correction for small matrices.
``classifier``
    Two-hidden-layer networks in numpy for noise inference and branching inference.

The pointer network for noise elimination needs PyTorch and lives in
:mod:`phylo.ml.models.pointer_network`.
"""

from .classifier import (
    TwoHiddenLayerClassifier,
    branching_inference_data,
    canonical_form,
    matrix_features,
    noise_inference_data,
)
from .phylogeny import (
    batch_is_perfect_phylogeny,
    conflict_pairs,
    is_branching,
    is_linear,
    is_perfect_phylogeny,
    min_flip_correction,
)
from .simulate import CoalescentTree, add_noise, coalescent_tree, genotype_matrix

__all__ = [
    "CoalescentTree",
    "coalescent_tree",
    "genotype_matrix",
    "add_noise",
    "conflict_pairs",
    "is_perfect_phylogeny",
    "batch_is_perfect_phylogeny",
    "is_linear",
    "is_branching",
    "min_flip_correction",
    "canonical_form",
    "matrix_features",
    "TwoHiddenLayerClassifier",
    "noise_inference_data",
    "branching_inference_data",
]
