"""The ``sbn`` command: summarise tree samples and fit subsplit Bayesian networks."""

from __future__ import annotations

import json

import click

from phylo.outputs import atomic_open
from phylo.progress import Progress

from .common import Group, burnin_option, rooted_option, thin_option


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phylo")
def main():
    """Tree samples from MrBayes, BEAST or Newick files, and subsplit Bayesian networks.

    \b
    Examples:
      sbn summary run1.t run2.t
      sbn summary --burnin 0.1 --format json run*.t.gz > summary.json
    """


def _read(files, burnin, thin, rooted, quiet=False):
    from phylo.trees import read_trees

    with Progress("reading trees", unit="trees", quiet=quiet) as bar:
        return read_trees(list(files), burnin=burnin, thin=thin, rooted=rooted,
                          progress=bar.update)


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILES...")
@burnin_option
@thin_option
@rooted_option
@click.option("--top", "-k", default=10, show_default=True, type=click.IntRange(0),
              help="How many of the most frequent topologies to list.")
@click.option("--min-freq", default=0.1, show_default=True, type=click.FloatRange(0, 1),
              help="Splits below this frequency in every run are left out of the ASDSF.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text",
              show_default=True, help="Output for people (text) or pipelines (tsv, json).")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Draw split frequencies of run 1 against run 2 to this PNG (needs the "
                   "'plot' extra).")
@click.option("--output", "-o", default="-", show_default=True,
              help="Write the summary here ('-' is standard output).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def summary(files, burnin, thin, rooted, top, min_freq, fmt, plot, output, quiet):
    """Summarise tree samples: taxa, runs, unique topologies, ASDSF.

    Each FILE is one run (MrBayes .t/.trprobs, BEAST .trees, Newick; gzip is fine; '-'
    reads standard input).

    \b
    Example:
      sbn summary data/example.run1.t data/example.run2.t
    """
    from phylo.provenance import record
    from phylo.trees.summary import format_text, format_tsv, plot_split_frequencies, summarise

    sample = _read(files, burnin, thin, rooted, quiet)
    s = summarise(sample, top=top, min_freq=min_freq)
    if plot:
        plot_split_frequencies(sample, plot)
    if fmt == "json":
        s["provenance"] = record(inputs=files, parameters={"burnin": burnin, "thin": thin,
                                                           "rooted": rooted})
        text = json.dumps(s, indent=2) + "\n"
    elif fmt == "tsv":
        text = format_tsv(s)
    else:
        text = format_text(s)
    with atomic_open(output) as fh:
        fh.write(text)


if __name__ == "__main__":  # pragma: no cover
    main()
