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


def _floats(text, n, what):
    if text is None:
        return None
    try:
        vals = [float(x) for x in text.replace(" ", "").split(",")]
    except ValueError:
        vals = []
    if len(vals) != n:
        from phylo.errors import InputError
        raise InputError(f"--{what} needs {n} comma-separated numbers, not {text!r}")
    return vals


@main.command("loglik")
@click.argument("alignment", type=click.Path(dir_okay=False))
@click.argument("tree", type=click.Path(dir_okay=False))
@click.option("--model", "-m", "model_spec", default="JC69", show_default=True,
              help="JC69, K80, HKY or GTR, optionally with +G<k> (Gamma categories), +I "
                   "(invariant sites), +F (empirical frequencies).")
@click.option("--kappa", type=float, default=None, help="K80/HKY transition/transversion "
              "rate ratio (default 2).")
@click.option("--rates", default=None, metavar="AC,AG,AT,CG,CT,GT",
              help="GTR exchangeabilities (default all 1).")
@click.option("--frequencies", "-f", default=None, metavar="A,C,G,T|equal|empirical",
              help="Base frequencies for HKY/GTR (default empirical).")
@click.option("--alpha", "-a", type=float, default=None,
              help="Gamma shape (default 1; implies +G4 when no +G is given).")
@click.option("--median", is_flag=True, help="Median instead of mean Gamma categories.")
@click.option("--pinv", type=float, default=None, help="Proportion of invariant sites "
              "(with +I; default 0.1).")
def loglik(alignment, tree, model_spec, kappa, rates, frequencies, alpha, median, pinv):
    """Log-likelihood of each tree in TREE (with its branch lengths) given ALIGNMENT.

    ALIGNMENT is FASTA, NEXUS or PHYLIP; TREE is a Newick or NEXUS tree file.  One line per
    tree: its index (from 1) and the log-likelihood.

    \b
    Example:
      marglik loglik DS1.fasta DS1.nwk --model GTR+G4 --alpha 0.5 --rates 1,2,1,1,2,1
    """
    import numpy as np

    from phylo.errors import InputError
    from phylo.likelihood import TreeLikelihood, parse_model, read_alignment

    from phylo.trees import Tree, read_trees

    if frequencies is not None and frequencies not in ("equal", "empirical"):
        frequencies = _floats(frequencies, 4, "frequencies")
    model = parse_model(model_spec, kappa=kappa, rates=_floats(rates, 6, "rates"),
                        frequencies=frequencies, alpha=alpha, pinv=pinv, median=median)
    aln = read_alignment(alignment)
    sample = read_trees(tree, burnin=0, lengths=True)
    if sample.lengths is None:
        raise InputError("the trees have no branch lengths", tree)
    i = 0
    for run, trace in enumerate(sample.traces):
        for pos, topo in enumerate(trace):
            i += 1
            lengths = np.asarray(sample.lengths[run][pos], dtype=np.float64)
            if not np.all(np.isfinite(lengths[:-1])):
                raise InputError(f"tree {i} has no branch lengths", tree)
            if lengths[:-1].size and lengths[:-1].min() < 0:
                raise InputError(f"tree {i} has a negative branch length "
                                 f"({lengths[:-1].min():g})", tree)
            t = Tree(sample.taxa, sample.parents[topo], lengths, sample.rooted)
            lik = TreeLikelihood(aln, t, model)
            click.echo(f"{i}\t{lik.log_likelihood(lengths[:-1]):.10f}")
    if i == 0:
        raise InputError("no tree found", tree)


if __name__ == "__main__":  # pragma: no cover
    main()
