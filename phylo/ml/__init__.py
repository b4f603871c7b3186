"""Secondary subpackage: machine-learning methods from the papers the project grew from.

Gradient estimators for discrete variables, continuous relaxations, permutations, graph
networks, compression, tumour phylogeny from noisy genotype matrices.  The numpy parts need no
extra packages; the models marked as such need the ``ml`` extra (PyTorch).
"""
