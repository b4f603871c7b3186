"""The ``marglik`` command: marginal likelihoods of fixed tree topologies."""

from __future__ import annotations

import functools

import click

from phylo.progress import Progress

from .common import Group, expand_patterns, output_option, run_options, seed_option


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phylo")
def main():
    """Marginal likelihoods p(alignment | topology) of fixed topologies.

    \b
    Examples:
      marglik loglik aln.fasta tree.nwk
      marglik methods
      marglik estimate aln.nex tree.nwk --method glis --seed 1
      marglik compare aln.nex --trees credible_set.tsv --methods gl,glis \\
          --replicates 3 --reference credible_set.tsv -o results.tsv --jobs 2
      marglik merge 'results-*.tsv' -o results.tsv
      marglik compare-models aln.nex tree.nwk --model JC69 --model GTR+G4 --seed 1
    """


def _old_alpha(ctx, param, value):
    if value is not None:
        from phylo.errors import InputError

        raise InputError("--alpha is now --gamma-shape (the Gamma shape of the site rates)")


def model_options(f):
    """--model, --kappa, --rates, --frequencies, --gamma-shape, --median, --pinv: the command
    receives one checked dict ``model`` (:func:`phylo.likelihood.model_spec`)."""
    options = [
        click.option(
            "--model",
            "model_name",
            default="JC69",
            show_default=True,
            help="JC69, K80, HKY or GTR, optionally with +G<k> (Gamma categories), "
            "+I (invariant sites), +F (empirical frequencies).",
        ),
        click.option(
            "--kappa",
            type=float,
            default=None,
            help="Fix K80/HKY's transition/transversion rate ratio (loglik: default 2; "
            "estimates integrate it out when it is not fixed).",
        ),
        click.option(
            "--rates",
            default=None,
            metavar="AC,AG,AT,CG,CT,GT",
            help="Fix the GTR exchangeabilities (loglik: default all 1).",
        ),
        click.option(
            "--frequencies",
            "-f",
            default=None,
            metavar="A,C,G,T|equal|empirical",
            help="Fix the base frequencies of HKY/GTR (loglik: default empirical).",
        ),
        click.option(
            "--gamma-shape",
            type=float,
            default=None,
            help="Fix the shape of the Gamma site rates (loglik: default 1; implies +G4 when "
            "no +G is given).",
        ),
        click.option(
            "--alpha", hidden=True, expose_value=False, callback=_old_alpha, is_eager=False
        ),
        click.option("--median", is_flag=True, help="Median instead of mean Gamma categories."),
        click.option(
            "--pinv",
            type=float,
            default=None,
            help="Fix the proportion of invariant sites (with +I; loglik: default 0.1).",
        ),
    ]

    @functools.wraps(f)
    def wrapper(*args, model_name, kappa, rates, frequencies, gamma_shape, median, pinv, **kw):
        from phylo.likelihood import model_spec

        kw["model"] = model_spec(
            model_name,
            kappa=kappa,
            rates=rates,
            frequencies=frequencies,
            gamma_shape=gamma_shape,
            pinv=pinv,
            median=median,
        )
        return f(*args, **kw)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def prior_option(f):
    return click.option(
        "--prior",
        "prior",
        multiple=True,
        metavar="[NAME=]DIST:ARGS",
        help="A prior, or a fixed value, for one parameter; repeat for several.  NAME is "
        "brlens (the default NAME: i.i.d. branch lengths, exp:10), kappa, rates, freqs, "
        "shape or pinv; DIST:ARGS is exp:RATE, gamma:SHAPE,RATE, lognormal:MU,SIGMA, "
        "uniform:LOW,HIGH, beta:A,B (for kappa: on kappa/(1+kappa), as MrBayes's tratiopr), "
        "dirichlet:A1,... or fixed:VALUE.  The model's parameters not fixed by its options "
        "(--kappa, --rates, --frequencies or +F, --gamma-shape, --pinv) are integrated out; "
        "without a --prior they take MrBayes's defaults: rates=dirichlet:1,1,1,1,1,1, "
        "freqs=dirichlet:1,1,1,1, kappa=beta:1,1, shape=exp:1, pinv=uniform:0,1.",
    )(f)


def settings_option(f):
    return click.option(
        "--set",
        "settings",
        multiple=True,
        metavar="[METHOD.]KEY=VALUE",
        help="Override an estimator setting (see `marglik methods`); repeat for several.",
    )(f)


@main.command("loglik")
@click.argument("alignment")
@click.argument("trees")
@model_options
@output_option("The table: tree number and log-likelihood ('-' is standard output).")
def loglik(alignment, trees, model, output):
    """Log-likelihood of each tree in TREES (with its branch lengths) given ALIGNMENT.

    ALIGNMENT is FASTA, NEXUS or PHYLIP; TREES is a Newick or NEXUS tree file, or a table
    with a newick column (sbn top, sbn sample --log-prob).  One row per tree: its number
    (from 1) and the log-likelihood.

    \b
    Example:
      marglik loglik DS1.fasta DS1.nwk --model GTR+G4 --gamma-shape 0.5 --rates 1,2,1,1,2,1
    """
    from phylo.likelihood import model_from_spec
    from phylo.likelihood.scores import tree_log_likelihoods
    from phylo.provenance import record
    from phylo.tables import write_table

    rows = tree_log_likelihoods(alignment, trees, model_from_spec(model))
    prov = record(inputs=[alignment, trees], parameters={"model": model["model"]})
    write_table(output, ["tree", "log_likelihood"], rows, prov)


@main.command("methods")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "tsv"]), default="text", show_default=True
)
def methods(fmt):
    """List the estimators: name, family, cost, whether consistent, default settings."""
    from phylo.marglik.estimators import catalogue

    rows = catalogue()
    if fmt == "tsv":
        from phylo.provenance import record
        from phylo.tables import write_table

        write_table("-", list(rows[0]), rows, record())
        return
    fam = None
    for r in rows:
        if r["family"] != fam:
            fam = r["family"]
            click.echo(f"\n{fam}:")
        click.echo(f"  {r['method']:<6} {r['description']}")
        click.echo(f"         cost: {r['cost']}; consistent: {r['consistent']}")
        click.echo(f"         settings: {r['settings']}")


@main.command("estimate")
@click.argument("alignment")
@click.argument("trees")
@click.option("--method", "-m", required=True, help="An estimator (see `marglik methods`).")
@settings_option
@prior_option
@model_options
@seed_option
@output_option("The table of estimates ('-' is standard output).")
def estimate(alignment, trees, method, settings, prior, model, seed, output):
    """Log marginal likelihood of each topology in TREES given ALIGNMENT.

    TREES is a Newick or NEXUS tree file (its branch lengths, if any, are starting values),
    a credible set ('frequency<TAB>newick' lines) or a table with a newick column (sbn top).
    One row per topology: tree, method, log marginal likelihood, standard error (NA when the
    method has none), seconds, likelihood evaluations and diagnostics.

    \b
    Example:
      marglik estimate DS1.nex tree.nwk --method ss --set temperatures=50 --seed 1
    """
    from phylo.marglik import compare as C
    from phylo.provenance import record
    from phylo.tables import write_table

    seed, rows = C.estimate(alignment, trees, method, settings, model, prior, seed)
    prov = record(inputs=[alignment, trees], seed=seed, parameters={"method": method})
    write_table(output, [c for c in C.COLUMNS if c != "replicate"], rows, prov)


def _print_summary(rows, reference, output, plot, per_tree):
    """The summary of ``rows`` (with KL when ``reference`` frequencies of the run's trees are
    given), to stdout, or to stderr when the table went to stdout; the plot if asked."""
    from phylo.marglik import compare as C

    summary = C.summarise(rows, reference)
    click.echo(C.format_summary(summary, per_tree=per_tree), nl=False, err=output == "-")
    if plot:
        C.plot(rows, plot, reference)


@main.command("compare")
@click.argument("alignment")
@click.option(
    "--trees",
    "trees_path",
    required=True,
    help="The topologies: a credible set ('frequency<TAB>newick'), a table with a newick "
    "column (sbn top), or a Newick or NEXUS tree file.",
)
@click.option(
    "--methods",
    "-m",
    default="gl,glis",
    show_default=True,
    help="Comma-separated estimators, or 'all' (see `marglik methods`).",
)
@click.option(
    "--max-trees",
    type=click.IntRange(1),
    default=None,
    help="Only the first N topologies of --trees (e.g. the most probable of a "
    "MrBayes .trprobs file).",
)
@click.option(
    "--replicates",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Independent runs of each method on each tree.",
)
@click.option(
    "--reference",
    "-r",
    default=None,
    help="Topology frequencies: a credible set, a table with frequencies (sbn top, sbn "
    "summary --format tsv), or a tree sample such as a MrBayes .trprobs from long runs; the "
    "summary adds KL(reference || estimate) over the trees it holds.",
)
@output_option(
    "Results table (TSV), written as tasks finish; rerun the same command to resume.  "
    "Default: the table goes nowhere, the summary to stdout.",
    default=None,
)
@click.option(
    "--plot",
    default=None,
    help="Draw the estimates per tree and method with their spread (PNG; needs the plot extra).",
)
@click.option(
    "--per-tree/--no-per-tree",
    default=True,
    show_default=True,
    help="Print the per-tree part of the summary.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Threads per task for batched likelihoods (default: the CPUs divided by "
    "--jobs locally, 1 on Dask).  Results do not depend on it.",
)
@settings_option
@prior_option
@model_options
@seed_option
@run_options
def compare(
    alignment,
    trees_path,
    max_trees,
    methods,
    replicates,
    reference,
    output,
    plot,
    per_tree,
    threads,
    settings,
    prior,
    model,
    seed,
    run,
    quiet,
):
    """Estimate log p(ALIGNMENT | tree) for every tree x method x replicate.

    Each (tree, method, replicate) is one task with its own random stream derived from
    --seed and the task, so the table is the same for any --jobs, on a Dask cluster
    (--executor dask), or run in shards (--shard i/n, joined with `marglik merge`).  The
    table gets one line per finished task; after a crash, the same command does only the
    missing tasks.  The summary gives per method the mean log ML, the mean standard deviation
    over replicates, seconds per tree and, with --reference, KL(reference || estimate) under
    a uniform topology prior; then per tree the implied topology posterior.

    \b
    Example (Fourment et al. 2020, DS1):
      marglik compare DS1.nex --trees JC_no_gamma_credible_set_ds1.tsv \\
          --reference JC_no_gamma_credible_set_ds1.tsv --methods gl,glis,vbis \\
          --replicates 10 --seed 1 --jobs 2 -o ds1.tsv --plot ds1.png
    """
    from phylo.errors import InputError
    from phylo.execution import run_comparison
    from phylo.marglik import compare as C

    if plot and output is None and run["shard"] is not None:
        raise InputError("--plot of a shard: plot the merged table with `marglik merge`")
    if threads is None:
        threads = C.default_batch_threads(run["jobs"]) if run["executor"] == "local" else 1
    comp = C.comparison(
        alignment, trees_path, methods, replicates, settings, model, prior, seed, max_trees,
        threads, output,
    )  # fmt: skip
    ref = C.reference_for(reference, trees_path, max_trees)
    with Progress("estimating", unit="tasks", quiet=quiet) as bar:
        result = run_comparison(comp, output, progress=bar, **run)
    if result.dropped and not quiet:
        click.echo(f"note: {result.dropped} damaged line(s) in {output} were run again", err=True)
    _print_summary(result.rows, ref, "stdout", plot, per_tree)


@main.command("compare-models")
@click.argument("alignment")
@click.argument("trees")
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    metavar="MODEL",
    help="A model to compare: JC69, K80, HKY or GTR with +G<k>, +I, +F; repeat (two at "
    "least).  Its parameters are integrated out under their priors unless fixed with "
    "--prior NAME=fixed:VALUE.",
)
@click.option(
    "--method",
    "-m",
    default="glis",
    show_default=True,
    help="The estimator (see `marglik methods`; gss is the most accurate, glis the fastest).",
)
@click.option(
    "--replicates",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Independent runs per tree and model; with several, a model's standard error is "
    "that of the replicates' mean.",
)
@click.option("--max-trees", type=click.IntRange(1), default=None, help="Only the first N trees.")
@output_option(
    "Results table (TSV), one line per finished task; rerun the same command to resume.  "
    "Default: the table goes nowhere, the summary to stdout.",
    default=None,
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Threads per task for batched likelihoods (default: the CPUs divided by --jobs).",
)
@settings_option
@prior_option
@seed_option
@run_options
def compare_models(
    alignment, trees, models, method, replicates, max_trees, output, threads, settings, prior,
    seed, run, quiet,
):  # fmt: skip
    """Bayes factors between substitution models on fixed topologies.

    For every tree in TREES and every --model, estimates log p(ALIGNMENT | tree, model) with
    the model's parameters integrated out, then prints log Z per model with its standard
    error and the log Bayes factor log Z_a - log Z_b of every pair with its standard error
    (positive: the first model is favoured).  Priors: MrBayes's defaults, or --prior.

    \b
    Example:
      marglik compare-models DS1.nex tree.nwk --model JC69 --model HKY+G4 \\
          --model GTR+G4 --method gss --seed 1 -o models.tsv
    """
    from phylo.execution import run_comparison
    from phylo.marglik import bayes_factors as BF
    from phylo.marglik.compare import default_batch_threads

    if threads is None:
        threads = default_batch_threads(run["jobs"]) if run["executor"] == "local" else 1
    comp = BF.comparison(
        alignment, trees, models, method, replicates, settings, prior, seed, max_trees,
        threads, output,
    )  # fmt: skip
    with Progress("estimating", unit="tasks", quiet=quiet) as bar:
        result = run_comparison(comp, output, progress=bar, **run)
    if result.dropped and not quiet:
        click.echo(f"note: {result.dropped} damaged line(s) in {output} were run again", err=True)
    order = [spec["model"] for spec in BF.model_specs(models)]
    click.echo(BF.format_summary(BF.summarise(result.rows, order)), nl=False)


@main.command()
@click.argument("tables", nargs=-1, required=True, metavar="TABLES...")
@output_option("The merged table.")
@click.option(
    "--reference",
    "-r",
    default=None,
    help="Topology frequencies for the KL column of the summary.",
)
@click.option(
    "--trees", "trees_path", default=None, help="The --trees file of the run (with --reference)."
)
@click.option("--plot", default=None, help="Draw the estimates (PNG; needs the plot extra).")
@click.option("--per-tree/--no-per-tree", default=True, show_default=True)
def merge(tables, output, reference, trees_path, plot, per_tree):
    """Join the tables of the shards of one `marglik compare` run (--shard i/n).

    The merged table has the rows one unsharded run writes (only the seconds differ); tables
    of different runs (other inputs, methods, settings or seed) are refused.  The summary goes
    to stdout, or to stderr when the table does.
    """
    from phylo.errors import InputError
    from phylo.execution import merge_tables, write_table
    from phylo.marglik import compare as C

    if reference and not trees_path:
        raise InputError("--reference needs --trees (the run's --trees file)")
    header, columns, rows = merge_tables(
        expand_patterns(tables), C.N_KEY, ignore=list(C.TIMING_COLUMNS)
    )
    write_table(output, header, columns, rows)
    if rows:
        n = max(int(r["tree"]) for r in rows)
        ref = C.reference_for(reference, trees_path, n)
        _print_summary(rows, ref, output, plot, per_tree)


if __name__ == "__main__":  # pragma: no cover
    main()
