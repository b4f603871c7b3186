"""The ``marglik`` command: marginal likelihoods of fixed tree topologies."""

from __future__ import annotations

import click

from phylo.progress import Progress

from .common import Group, executor_options, expand_patterns, seed_option


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


def model_options(f):
    """--model, --kappa, --rates, --frequencies, --alpha, --median, --pinv."""
    options = [
        click.option(
            "--model",
            "-m",
            "model_spec",
            default="JC69",
            show_default=True,
            help="JC69, K80, HKY or GTR, optionally with +G<k> (Gamma categories), "
            "+I (invariant sites), +F (empirical frequencies).",
        ),
        click.option(
            "--kappa",
            type=float,
            default=None,
            help="K80/HKY transition/transversion rate ratio (default 2).",
        ),
        click.option(
            "--rates",
            default=None,
            metavar="AC,AG,AT,CG,CT,GT",
            help="GTR exchangeabilities (default all 1).",
        ),
        click.option(
            "--frequencies",
            "-f",
            default=None,
            metavar="A,C,G,T|equal|empirical",
            help="Base frequencies for HKY/GTR (default empirical).",
        ),
        click.option(
            "--alpha",
            "-a",
            type=float,
            default=None,
            help="Gamma shape (default 1; implies +G4 when no +G is given).",
        ),
        click.option("--median", is_flag=True, help="Median instead of mean Gamma categories."),
        click.option(
            "--pinv",
            type=float,
            default=None,
            help="Proportion of invariant sites (with +I; default 0.1).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _model_kwargs(model_spec, kappa, rates, frequencies, alpha, median, pinv) -> dict:
    if frequencies is not None and frequencies not in ("equal", "empirical"):
        frequencies = _floats(frequencies, 4, "frequencies")
    return {
        "model": model_spec,
        "kappa": kappa,
        "rates": _floats(rates, 6, "rates"),
        "frequencies": frequencies,
        "alpha": alpha,
        "pinv": pinv,
        "median": median,
    }


def _model(kwargs: dict):
    from phylo.likelihood import parse_model

    spec = dict(kwargs)
    return parse_model(spec.pop("model"), **spec)


def prior_option(f):
    return click.option(
        "--prior",
        default="exp:10",
        show_default=True,
        metavar="exp:RATE|gamma:SHAPE,RATE",
        help="I.i.d. prior on branch lengths.",
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
@click.argument("alignment", type=click.Path(dir_okay=False))
@click.argument("tree", type=click.Path(dir_okay=False))
@model_options
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
    from phylo.likelihood import TreeLikelihood, read_alignment
    from phylo.trees import Tree, read_trees

    model = _model(_model_kwargs(model_spec, kappa, rates, frequencies, alpha, median, pinv))
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
                raise InputError(
                    f"tree {i} has a negative branch length ({lengths[:-1].min():g})", tree
                )
            t = Tree(sample.taxa, sample.parents[topo], lengths, sample.rooted)
            # one evaluation per tree: setting up site repeats would cost more than they save
            lik = TreeLikelihood(aln, t, model, site_repeats=False)
            click.echo(f"{i}\t{lik.log_likelihood(lengths[:-1]):.10f}")
    if i == 0:
        raise InputError("no tree found", tree)


@main.command("methods")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "tsv"]), default="text", show_default=True
)
def methods(fmt):
    """List the estimators: name, family, cost, whether consistent, default settings."""
    from phylo.marglik.estimators import get, names

    rows = []
    for name in names():
        s = get(name)
        settings = ",".join(f"{k}={v}" for k, v in s.defaults.items()) or "-"
        rows.append(
            [s.name, s.family, "yes" if s.consistent else "no", s.cost, settings, s.description]
        )
    header = ["method", "family", "consistent", "cost", "settings", "description"]
    if fmt == "tsv":
        click.echo("\t".join(header))
        for r in rows:
            click.echo("\t".join(r))
        return
    fam = None
    for r in rows:
        if r[1] != fam:
            fam = r[1]
            click.echo(f"\n{fam}:")
        click.echo(f"  {r[0]:<6} {r[5]}")
        click.echo(f"         cost: {r[3]}; consistent: {r[2]}")
        click.echo(f"         settings: {r[4]}")


@main.command("estimate")
@click.argument("alignment", type=click.Path(dir_okay=False))
@click.argument("tree", type=click.Path(dir_okay=False))
@click.option("--method", "method", required=True, help="An estimator (see `marglik methods`).")
@settings_option
@prior_option
@model_options
@seed_option
def estimate(
    alignment,
    tree,
    method,
    settings,
    prior,
    model_spec,
    kappa,
    rates,
    frequencies,
    alpha,
    median,
    pinv,
    seed,
):
    """Log marginal likelihood of each topology in TREE given ALIGNMENT.

    TREE is a Newick or NEXUS tree file (its branch lengths, if any, are starting values)
    or a credible set ('frequency<TAB>newick' lines).  One line per topology: tree, method,
    log marginal likelihood, standard error (NA when the method has none), seconds,
    likelihood evaluations and diagnostics.

    \b
    Example:
      marglik estimate DS1.nex tree.nwk --method ss --set temperatures=50 --seed 1
    """
    from phylo.execution import fresh_seed
    from phylo.likelihood import read_alignment
    from phylo.marglik import compare as C

    method_list = C.check_methods(method)
    if len(method_list) != 1:
        from phylo.errors import InputError

        raise InputError("--method takes one estimator (use `marglik compare` for several)")
    name = method_list[0]
    opts = C.parse_settings(settings, [name])[name]
    mkw = _model_kwargs(model_spec, kappa, rates, frequencies, alpha, median, pinv)
    _model(mkw)  # check the model before any work
    from phylo.marglik.posterior import parse_prior

    parse_prior(prior)
    aln = read_alignment(alignment)
    trees, _ = C.read_topologies(tree)
    seed = fresh_seed() if seed is None else seed
    ctx = C.CompareContext(aln, trees, mkw, prior, {name: opts}, seed, None)
    click.echo(f"# seed: {seed}")
    cols = ["tree", "method", "log_ml", "se", "seconds", "evaluations", "ess", "diagnostics"]
    click.echo("\t".join(cols))
    for i in range(len(trees)):
        row = C.run_task(ctx, (i + 1, name, 1))
        click.echo("\t".join(_cell(row[c], c) for c in cols))


def _cell(v, column=""):
    if v is None or v == "":
        return "NA"
    if column == "log_ml":
        return f"{v:.6f}"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _print_summary(rows, reference, output, plot, per_tree):
    """The summary of ``rows`` (with KL when ``reference`` frequencies of the run's trees are
    given), to stdout, or to stderr when the table went to stdout; the plot if asked."""
    from phylo.marglik import compare as C

    summary = C.summarise(rows, reference)
    click.echo(C.format_summary(summary, per_tree=per_tree), nl=False, err=output == "-")
    if plot:
        C.plot(rows, plot, reference)


@main.command("compare")
@click.argument("alignment", type=click.Path(dir_okay=False))
@click.option(
    "--trees",
    "trees_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The topologies: a credible set ('frequency<TAB>newick'), or a Newick or NEXUS tree file.",
)
@click.option(
    "--methods",
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
    "-r",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Independent runs of each method on each tree.",
)
@click.option(
    "--reference",
    default=None,
    type=click.Path(dir_okay=False),
    help="Topology frequencies: a credible set ('frequency<TAB>newick') or a tree "
    "sample such as a MrBayes .trprobs from long runs; the summary adds "
    "KL(reference || estimate) over the trees it holds.",
)
@click.option(
    "--output",
    "-o",
    default=None,
    help="Results table (TSV), written as tasks finish; rerun the same command "
    "to resume.  Default: the table goes nowhere, the summary to stdout.",
)
@click.option(
    "--plot",
    default=None,
    type=click.Path(dir_okay=False),
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
@executor_options
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
    model_spec,
    kappa,
    rates,
    frequencies,
    alpha,
    median,
    pinv,
    seed,
    jobs,
    executor,
    scheduler,
    scheduler_file,
    shard,
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
    import hashlib
    import os

    from phylo.errors import InputError
    from phylo.execution import (
        ResultStore,
        fresh_seed,
        parse_shard,
        read_table,
        run_into,
        select_shard,
    )
    from phylo.marglik import compare as C
    from phylo.marglik.posterior import parse_prior
    from phylo.provenance import file_digest, record, tsv_header

    method_list = C.check_methods(methods)
    opts = C.parse_settings(settings, method_list)
    mkw = _model_kwargs(model_spec, kappa, rates, frequencies, alpha, median, pinv)
    _model(mkw)
    parse_prior(prior)
    shard_spec = parse_shard(shard)
    if plot and output is None and shard_spec is not None:
        raise InputError("--plot of a shard: plot the merged table with `marglik merge`")
    from phylo.likelihood import read_alignment

    aln = read_alignment(alignment)
    trees, _ = C.read_topologies(trees_path, None, max_trees)
    from phylo.trees.taxa import check_same_taxa

    check_same_taxa(trees[0].taxa, aln.taxa, trees_path, alignment)  # before any task runs
    ref = C.reference_frequencies(reference, trees) if reference else None
    if ref is not None and not ref.any():
        raise InputError("none of the trees is in the reference", reference)
    if seed is None and output is not None and os.path.exists(output):
        seed = _seed_of_table(output)
    seed = fresh_seed() if seed is None else seed
    identity = [
        f"alignment={file_digest(alignment)[:16]}",
        f"trees={file_digest(trees_path)[:16]}",
        f"max_trees={max_trees}",
        f"methods={','.join(method_list)}",
        f"replicates={replicates}",
        f"settings={_settings_text(opts)}",
        f"model={_settings_text(mkw)}",
        f"prior={prior}",
        f"seed={seed}",
    ]
    token = hashlib.sha256("|".join(identity).encode()).hexdigest()
    prov = record(
        inputs=[alignment, trees_path],
        seed=seed,
        parameters={"methods": ",".join(method_list), "replicates": replicates, "shard": shard},
    )
    store = ResultStore(
        output, C.COLUMNS, C.N_KEY, header=tsv_header(prov).splitlines(), identity=identity
    )
    if store.dropped and not quiet:
        click.echo(
            f"note: {store.dropped} damaged line(s) in {output}; their tasks run again", err=True
        )
    keys = select_shard(C.task_keys(len(trees), method_list, replicates), shard_spec)
    if threads is None:
        threads = C.default_batch_threads(jobs) if executor == "local" else 1
    args = (alignment, trees_path, mkw, prior, opts, seed, threads, max_trees)
    with Progress("estimating", unit="tasks", quiet=quiet) as bar:
        run_into(
            store,
            keys,
            C.run_task,
            C.setup,
            args,
            progress=bar,
            jobs=jobs,
            executor=executor,
            scheduler=scheduler,
            scheduler_file=scheduler_file,
            token=token,
        )
    rows = store.records() if output is None else read_table(output)[2]
    _print_summary(rows, ref, "stdout", plot, per_tree)


def _settings_text(d: dict) -> str:
    import json

    return json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)


def _seed_of_table(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                if line.startswith("# identity: seed="):
                    return int(line.split("=", 1)[1])
    except (OSError, ValueError):
        return None
    return None


@main.command()
@click.argument("tables", nargs=-1, required=True, metavar="TABLES...")
@click.option("--output", "-o", default="-", show_default=True, help="The merged table.")
@click.option(
    "--reference",
    default=None,
    type=click.Path(dir_okay=False),
    help="Topology frequencies for the KL column of the summary.",
)
@click.option(
    "--trees",
    "trees_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="The --trees file of the run (needed with --reference).",
)
@click.option(
    "--plot",
    default=None,
    type=click.Path(dir_okay=False),
    help="Draw the estimates (PNG; needs the plot extra).",
)
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
        ref = None
        if reference:
            n = max(int(r["tree"]) for r in rows)
            ref = C.reference_frequencies(reference, C.read_topologies(trees_path, None, n)[0])
        _print_summary(rows, ref, output, plot, per_tree)


if __name__ == "__main__":  # pragma: no cover
    main()
