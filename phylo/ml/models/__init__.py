"""PyTorch models of the papers behind :mod:`phylo.ml` (needs the ``ml`` extra).

Importing this package does not import torch; importing one of its modules does.

``layers``
    GECO constrained optimisation (Rezende and Viola, 2018), sparse variational dropout
    (Molchanov et al., 2017) and Bayesian compression (Louizos et al., 2017) as torch code.
``data``
    scikit-learn's 8 x 8 digits as tensors.
``vae_geco``
    A variational autoencoder trained with GECO against a reconstruction constraint.
``sparse_mlp``
    Multilayer perceptrons with sparse variational dropout or group normal-Jeffreys
    (Bayesian compression) layers.
``drmm``
    The Deep Rendering Mixture Model (Patel, Nguyen and Baraniuk, 2016).
``disentangle``
    Disentangling factors of variation with adversarial training (Mathieu et al., 2016).
``improved_gan``
    Improved techniques for training GANs (Salimans et al., 2016).
``pointer_network``
    Noise elimination in genotype matrices with a pointer network (Sadeqi Azer et al., 2020;
    Vinyals et al., 2015).
"""
