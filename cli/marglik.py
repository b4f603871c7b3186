"""The ``marglik`` command: marginal likelihoods of fixed tree topologies."""

from __future__ import annotations

import functools

import click

from phylo.progress import Progress

from .common import (
    Group,
    burnin_option,
    expand_callback,
    expand_patterns,
    output_option,
    run_options,
    seed_option,
    thin_option,
)


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
    from phylo.warmup import ensure, likelihood_group

    model_ = model_from_spec(model)
    ensure(["trees", "trees-lengths", likelihood_group(model_)])
    rows = tree_log_likelihoods(alignment, trees, model_)
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
    from phylo.likelihood import model_from_spec
    from phylo.marglik import compare as C
    from phylo.provenance import record
    from phylo.tables import write_table
    from phylo.warmup import ensure, likelihood_group

    ensure(["trees", "trees-lengths", likelihood_group(model_from_spec(model))])
    seed, rows = C.estimate(alignment, trees, method, settings, model, prior, seed)
    prov = record(inputs=[alignment, trees], seed=seed, parameters={"method": method})
    notes = C.start_notes(trees, rows)
    write_table(output, [c for c in C.COLUMNS if c != "replicate"], rows, prov, notes=notes)
    for note in notes:
        click.echo(f"note: {note}", err=True)


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
    from phylo.likelihood import model_from_spec
    from phylo.marglik import compare as C
    from phylo.warmup import ensure, likelihood_group

    if plot and output is None and run["shard"] is not None:
        raise InputError("--plot of a shard: plot the merged table with `marglik merge`")
    ensure(["trees", "trees-lengths", likelihood_group(model_from_spec(model))], quiet=quiet)
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
    for note in C.start_notes(trees_path, result.rows):
        click.echo(f"note: {note}", err=True)
    _print_summary(result.rows, ref, "stdout", plot, per_tree)


@main.command("compare-models")
@click.argument("alignment")
@click.argument("trees", nargs=-1, required=True, callback=expand_callback)
@click.option(
    "--over-topologies",
    is_flag=True,
    help="Integrate over topologies too: TREES is a tree sample of the posterior (one file "
    "per run), and each model's log Z is that of `marglik total` (its defaults; --method, "
    "--set and --seed apply).",
)
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
    alignment, trees, over_topologies, models, method, replicates, max_trees, output, threads,
    settings, prior, seed, run, quiet,
):  # fmt: skip
    """Bayes factors between substitution models, on fixed topologies or over all of them.

    For every tree in TREES and every --model, estimates log p(ALIGNMENT | tree, model) with
    the model's parameters integrated out, then prints log Z per model with its standard
    error and the log Bayes factor log Z_a - log Z_b of every pair with its standard error
    (positive: the first model is favoured).  Priors: MrBayes's defaults, or --prior.  With
    --over-topologies, TREES is a posterior tree sample and log Z = log p(ALIGNMENT | model)
    integrates over topologies as `marglik total` does.

    \b
    Examples:
      marglik compare-models DS1.nex tree.nwk --model JC69 --model HKY+G4 \\
          --model GTR+G4 --method gss --seed 1 -o models.tsv
      marglik compare-models DS1.nex run1.t run2.t --over-topologies \\
          --model JC69 --model K80 --seed 1 -o models.tsv
    """
    from phylo.errors import InputError
    from phylo.execution import run_comparison
    from phylo.marglik import bayes_factors as BF
    from phylo.marglik.compare import default_batch_threads

    if over_topologies:
        if replicates != 1 or max_trees is not None:
            raise InputError("--replicates and --max-trees are for fixed topologies")

        def bar(description):
            return Progress(f"estimating topologies ({description})", unit="topologies",
                            quiet=quiet)  # fmt: skip

        res = BF.compare_models_total(
            alignment, list(trees), models, prior=prior, seed=seed, output=output,
            progress=bar, method=method, settings=settings, threads=threads, run=run,
        )  # fmt: skip
        if output:
            from phylo.provenance import record
            from phylo.tables import write_table

            prov = record(inputs=[alignment, *trees], seed=res["seed"],
                          parameters={"method": method, "over_topologies": True})  # fmt: skip
            write_table(output, BF.COLUMNS, res["rows"], prov)
        for row, r in zip(res["rows"], res["runs"]):
            for w in r.warnings():
                click.echo(f"warning: {row['model']}: {w}", err=True)
        click.echo(BF.format_summary(res), nl=False, err=output == "-")
        return
    if len(trees) != 1:
        raise InputError("give one TREES file (or --over-topologies for a tree sample)")
    trees = trees[0]
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


@main.command("total")
@click.argument("alignment", type=click.Path(dir_okay=False))
@click.argument(
    "more_trees",
    nargs=-1,
    type=click.Path(dir_okay=False),
    metavar="[TREES]...",
    callback=expand_callback,
)
@click.option(
    "--trees",
    "trees",
    multiple=True,
    callback=expand_callback,
    type=click.Path(dir_okay=False),
    help="A tree sample of the posterior (MrBayes .t or .trprobs, BEAST, Newick; each file a "
    "run): the SBN is fitted to it and its topologies are the candidates of the exact part.  "
    "More files may follow as arguments.",
)
@burnin_option
@thin_option
@click.option(
    "--sbn",
    "sbn_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Use this fitted SBN (`sbn fit` JSON) as q instead of fitting one to the trees.",
)
@click.option(
    "--sbn-method",
    type=click.Choice(["em-alpha", "em", "sa"]),
    default="em-alpha",
    show_default=True,
    help="How q is fitted to the trees.",
)
@click.option(
    "--widen",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    metavar="EPS",
    help="Widen q's support to the NNI neighbours of the sampled topologies, which get "
    "total weight EPS (e.g. 0.01) in the fit.",
)
@click.option(
    "--method",
    "-m",
    default="glis",
    show_default=True,
    help="The estimator of each topology's marginal likelihood (see `marglik methods`), or "
    "vi-is: importance sampling from the branch-length distribution of an `sbn vi` model "
    "given with --sbn.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0, min_open=True),
    default=0.05,
    show_default=True,
    help="Nats: K grows until the remainder's share of Z and the standard error of log Z "
    "are both at most this.",
)
@click.option("--k", "k", type=click.IntRange(0), default=None, help="Fix K (one stage).")
@click.option(
    "--top-mass",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Fix K as the fewest sampled topologies holding this q mass (one stage).",
)
@click.option(
    "--k-start", type=click.IntRange(0), default=16, show_default=True, help="K of stage 1."
)
@click.option(
    "--draws",
    type=click.IntRange(0),
    default=128,
    show_default=True,
    help="Remainder draws of stage 1 (doubling with K).",
)
@click.option(
    "--max-topologies",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="Budget: distinct topologies estimated over all stages.",
)
@click.option(
    "--joint",
    "joint_draws",
    type=click.IntRange(2),
    default=None,
    metavar="N",
    help="Also the plain joint importance sampler over (topology, branch lengths) with N "
    "draws, for comparison.",
)
@output_option("The estimate (TSV, one row per estimator); '-' for stdout.", default=None)
@click.option("--json", "json_path", default=None, help="The estimate and its stages as JSON.")
@click.option(
    "--results",
    default=None,
    type=click.Path(dir_okay=False),
    help="The per-topology results table, written as tasks finish (rerun the same command "
    "to resume).  Default: beside --output, e.g. total.topologies.tsv.",
)
@click.option(
    "--merge",
    "merge_patterns",
    multiple=True,
    metavar="TABLES",
    help="Results tables of the same run (e.g. 'total-*.topologies.tsv' of --shard runs) "
    "whose estimates are used here; repeat or quote a pattern.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Threads per task for batched likelihoods (default: the CPUs divided by --jobs "
    "locally, 1 on Dask).  Results do not depend on it.",
)
@settings_option
@prior_option
@model_options
@seed_option
@run_options
def total(alignment, more_trees, trees, output, json_path, quiet, run, **options):
    """log p(ALIGNMENT): the marginal likelihood over all topologies and branch lengths.

    Z = sum over topologies of p(tau) Z_tau with a uniform prior on unrooted topologies and
    each Z_tau estimated by --method.  An SBN q fitted to the tree sample (or --sbn) splits
    the sum: the K sampled topologies most probable under q (with --sbn and no trees, q's
    own K most probable topologies) are estimated one by one, the
    rest by importance sampling of topologies drawn from q outside them.  K grows in stages
    until the remainder's share of Z and the standard error of log Z are below --tolerance,
    or, the standard error met, until the share falls too slowly to reach it within
    --max-topologies (--k / --top-mass fix K).  The standard error combines the topology
    sampling and every Z_tau's own error.

    Each topology is one task with its own random stream (from --seed and the topology), so
    the result is the same for any --jobs, on Dask, or in shards: run every --shard i/n
    with --merge over all shards' tables until a shard reports the estimate, then once
    without --shard to write it.  A killed run resumes with the same command.

    \b
    Example:
      marglik total aln.nex --trees run1.t run2.t --seed 1 -o total.tsv --jobs 2
    """
    import json

    from phylo.marglik import total as T
    from phylo.outputs import atomic_open
    from phylo.tables import write_table

    def bar(description):
        return Progress(f"estimating topologies ({description})", unit="topologies", quiet=quiet)

    def on_stage(st):
        if not quiet:
            click.echo(
                f"stage: K={st.k} (q mass {st.top_mass:.4g}), {st.draws} remainder draws: "
                f"log Z {st.log_z:.4f} +- {st.se:.4f}, remainder {st.remainder_nats:.4g} nats, "
                f"{st.topologies} topologies",
                err=True,
            )

    options["merge"] = options.pop("merge_patterns")
    result = T.run_total(
        alignment, list(trees) + list(more_trees), output=output, run=run, progress=bar,
        on_stage=on_stage, **options,
    )  # fmt: skip
    if result.dropped and not quiet:
        click.echo(
            f"note: {result.dropped} damaged line(s) in {result.results_path}; their tasks "
            "ran again",
            err=True,
        )
    if not result.complete:
        shard = result.provenance["parameters"]["shard"]
        click.echo(
            f"shard {shard}: ran {result.ran} topologies; {result.missing} topologies of the "
            "next stage are left to the other shards.  When they finish, run the shards again "
            "with --merge over every shard's table, until one reports the estimate."
        )
        return
    notes = result.warnings()
    if output:
        write_table(
            output, T.SUMMARY_COLUMNS, result.rows(), provenance=result.provenance, notes=notes
        )
    if json_path:
        with atomic_open(json_path) as fh:
            fh.write(json.dumps(result.json(), indent=1) + "\n")
    for line in result.summary_lines():
        click.echo(line, err=output == "-")
    for w in notes:
        click.echo(f"warning: {w}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
