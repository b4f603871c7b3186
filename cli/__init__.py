"""Command-line front ends (``sbn`` and ``marglik``): thin wrappers over :mod:`phylo`."""
