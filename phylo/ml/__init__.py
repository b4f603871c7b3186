"""Secondary subpackage: machine-learning methods from the papers the project grew from.

numpy (no extra packages):

- :mod:`~phylo.ml.concrete`, :mod:`~phylo.ml.gumbel`: Concrete / Gumbel-softmax relaxations,
  Gumbel-max and Gumbel-top-k, straight-through.
- :mod:`~phylo.ml.score_function`: REINFORCE with baselines, VIMCO.
- :mod:`~phylo.ml.unordered_set`: the unordered set estimator, stochastic beam search.
- :mod:`~phylo.ml.rao_blackwell`: sum-and-sample (Rao-Blackwellised) estimators.
- :mod:`~phylo.ml.sbn_gradients`: those estimators for expectations over tree topologies
  under a subsplit Bayesian network (:mod:`phylo.sbn`).
- :mod:`~phylo.ml.geco`, :mod:`~phylo.ml.birkhoff`, :mod:`~phylo.ml.looks_linear`,
  :mod:`~phylo.ml.sparse_vd`, :mod:`~phylo.ml.bayesian_compression`.
- :mod:`~phylo.ml.gcn`: graph convolutional networks; :mod:`~phylo.ml.tumour`: tumour
  phylogeny from noisy single-cell genotype matrices.

With the ``ml`` extra (PyTorch): :mod:`phylo.ml.models` (VAE with GECO, sparse variational
dropout and Bayesian compression layers, Deep Rendering Mixture Model, adversarial
disentangling, improved GAN techniques, the pointer network for noise elimination).
"""
