"""The ``marglik`` command: marginal likelihoods of fixed tree topologies."""

from __future__ import annotations

import click

from .common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phylo")
def main():
    """Marginal likelihoods p(alignment | topology) of fixed topologies.

    \b
    Example:
      marglik loglik aln.fasta tree.nwk
    """


if __name__ == "__main__":  # pragma: no cover
    main()
