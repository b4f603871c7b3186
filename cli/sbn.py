"""The ``sbn`` command: summarise tree samples and fit subsplit Bayesian networks."""

from __future__ import annotations

import click

from .common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phylo")
def main():
    """Tree samples from MrBayes, BEAST or Newick files, and subsplit Bayesian networks.

    \b
    Example:
      sbn summary run1.t run2.t
    """


if __name__ == "__main__":  # pragma: no cover
    main()
