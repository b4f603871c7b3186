"""The ``marglik`` command: marginal likelihoods of fixed tree topologies."""

from __future__ import annotations

import math

import click

from phylo.progress import Progress

from .common import (
    Group,
    burnin_option,
    executor_options,
    expand_patterns,
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
    for i, t in enumerate(trees):  # the taxa must match before any task runs
        from phylo.likelihood.alignment import check_same_taxa

        check_same_taxa(
            aln.taxa, tuple(t.taxa), alignment, "the alignment", f"tree {i + 1} of {trees_path}"
        )
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


# -- marglik total ---------------------------------------------------------------------------


def _results_path(output, results):
    """The per-topology results table: --results, else beside --output (``total.tsv`` ->
    ``total.topologies.tsv``); ``None`` (in memory) when neither is a file."""
    if results:
        return results
    if output and output != "-":
        base = output[:-4] if output.endswith(".tsv") else output
        return base + ".topologies.tsv"
    return None


def _fmt_share(x):
    return "NA" if x is None or x != x else f"{100 * x:.2f}%"


def _total_summary(est, joint, method, n_taxa):
    """Lines for people: the estimate, its parts and its cost."""
    from phylo.marglik.total import log_topology_count

    lines = []
    st = est.stage
    count = math.exp(log_topology_count(n_taxa))
    lines.append(
        f"log Z = {est.log_z:.4f} +- {est.se:.4f}  (p(D) over all {count:.3g} unrooted "
        f"topologies, uniform topology prior)"
    )
    if st is not None:
        lines.append(
            f"exact part: K = {st.k} topologies holding {_fmt_share(st.exact_share)} of Z "
            f"(their q mass {st.top_mass:.4g})"
        )
        lines.append(
            f"remainder: {st.draws} draws of {st.remainder_topologies} topologies, "
            f"{st.remainder_nats:.4g} nats of Z; ESS {st.ess:.1f}, Pareto k-hat {st.khat:.2f}"
        )
        lines.append(
            f"standard error parts: exact estimates {st.se_exact:.3g}, topology sampling "
            f"{st.se_sampling:.3g}, remainder estimates {st.se_remainder_estimates:.3g}"
        )
    lines.append(
        f"{est.topologies} topologies estimated with {method} in {len(est.stages)} stage(s): "
        f"{est.seconds:.1f} s of estimator time, {est.evaluations} likelihood evaluations; "
        f"{est.wall_seconds:.1f} s in all"
    )
    if joint is not None:
        lines.append(
            f"joint importance sampling: log Z = {joint.log_z:.4f} +- {joint.se:.4f} "
            f"({joint.draws} draws of {joint.topologies} topologies; ESS {joint.ess:.1f}, "
            f"Pareto k-hat {joint.khat:.2f}; {joint.seconds:.1f} s)"
        )
    return lines


@main.command("total")
@click.argument("alignment", type=click.Path(dir_okay=False))
@click.argument("more_trees", nargs=-1, type=click.Path(dir_okay=False), metavar="[TREES]...")
@click.option(
    "--trees",
    "trees",
    multiple=True,
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
    type=click.FloatRange(0, min_open=False),
    default=0.0,
    show_default=True,
    metavar="EPS",
    help="Widen q's support to the NNI neighbours of the sampled topologies, which get "
    "total weight EPS (e.g. 0.01) in the fit.",
)
@click.option(
    "--method",
    default="glis",
    show_default=True,
    help="The estimator of each topology's marginal likelihood (see `marglik methods`).",
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
@click.option(
    "--output",
    "-o",
    default=None,
    help="The estimate (TSV, one row per estimator); '-' for stdout.",
)
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
@executor_options
def total(
    alignment,
    more_trees,
    trees,
    burnin,
    thin,
    sbn_path,
    sbn_method,
    widen,
    method,
    tolerance,
    k,
    top_mass,
    k_start,
    draws,
    max_topologies,
    joint_draws,
    output,
    json_path,
    results,
    merge_patterns,
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
    """log p(ALIGNMENT): the marginal likelihood over all topologies and branch lengths.

    Z = sum over topologies of p(tau) Z_tau with a uniform prior on unrooted topologies and
    each Z_tau estimated by --method.  An SBN q fitted to the tree sample (or --sbn) splits
    the sum: the K sampled topologies most probable under q are estimated one by one, the
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
    import time

    from phylo.errors import InputError
    from phylo.execution import choose_seed, parse_shard
    from phylo.likelihood import read_alignment
    from phylo.marglik import compare as C
    from phylo.marglik import total as T
    from phylo.marglik.posterior import parse_prior
    from phylo.provenance import record
    from phylo.sbn.topologies import topology_arrays
    from phylo.tables import write_table

    t_start = time.perf_counter()
    tree_files = list(trees) + list(more_trees)
    if not tree_files:
        raise InputError("give the tree sample: --trees FILE [FILE...]")
    if sbn_path and widen:
        raise InputError("--widen applies to an SBN fitted here, not to --sbn")
    if k is not None and top_mass is not None:
        raise InputError("give --k or --top-mass, not both")
    name = C.check_methods(method)
    if len(name) != 1:
        raise InputError("--method takes one estimator")
    name = name[0]
    opts = C.parse_settings(settings, [name])[name]
    mkw = _model_kwargs(model_spec, kappa, rates, frequencies, alpha, median, pinv)
    _model(mkw)
    parse_prior(prior)
    shard_spec = parse_shard(shard)
    aln = read_alignment(alignment)
    ctx_taxa = T.TaskContext(aln, mkw, prior, name, opts, 0).taxa
    sample = T.read_sample(tree_files, ctx_taxa, burnin, thin)
    if sbn_path:
        from phylo.sbn import load_model

        q = load_model(sbn_path)
        if getattr(q, "kind", "") != "sbn" or q.rooted:
            raise InputError("--sbn must be an unrooted SBN model (`sbn fit`)", sbn_path)
    else:
        q = T.fit_proposal(sample, sbn_method, widen)
    orders = T.TaxonOrders(q.taxa, ctx_taxa)
    cands = T.candidates(q, topology_arrays(sample, ctx_taxa, False), orders)
    results_path = _results_path(output, results)
    seed = choose_seed(seed, results_path)
    identity = T.results_identity(alignment, mkw, prior, name, opts, seed)
    merged = {}
    if merge_patterns:
        # shards of a first round find no table yet: a pattern may match nothing
        import glob

        paths = sorted({p for pat in merge_patterns for p in (glob.glob(pat) or [])})
        missing = [p for p in merge_patterns if not any(c in p for c in "*?[") and p not in paths]
        if missing:
            raise InputError("no such file", missing[0])
        merged = T.read_results(paths, identity)
    prov = record(
        inputs=[alignment, *tree_files] + ([sbn_path] if sbn_path else []),
        seed=seed,
        parameters={
            "method": name,
            "settings": _settings_text(opts),
            "model": _settings_text(mkw),
            "prior": prior,
            "tolerance": tolerance,
            "k": k,
            "top_mass": top_mass,
            "k_start": k_start,
            "draws": draws,
            "max_topologies": max_topologies,
            "widen": widen,
            "sbn_method": None if sbn_path else sbn_method,
            "shard": shard,
        },
    )
    from phylo.provenance import tsv_header

    if threads is None:
        threads = C.default_batch_threads(jobs) if executor == "local" else 1

    def bar(description):
        return Progress(f"estimating topologies ({description})", unit="topologies", quiet=quiet)

    evaluator = T.TableEvaluator(
        results_path,
        identity,
        tsv_header(prov).splitlines(),
        (alignment, mkw, prior, name, opts, seed, threads),
        shard=shard_spec,
        merged=merged,
        progress=bar,
        jobs=jobs,
        executor=executor,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
    )

    def on_stage(st):
        if not quiet:
            click.echo(
                f"stage: K={st.k} (q mass {st.top_mass:.4g}), {st.draws} remainder draws: "
                f"log Z {st.log_z:.4f} +- {st.se:.4f}, remainder {st.remainder_nats:.4g} nats, "
                f"{st.topologies} topologies",
                err=True,
            )

    n = len(ctx_taxa)
    est = T.stratified_estimate(
        q, cands, evaluator, seed, n, k=k, top_mass=top_mass, tolerance=tolerance,
        k_start=k_start, draws=draws, max_topologies=max_topologies, orders=orders,
        on_stage=on_stage,
    )  # fmt: skip
    est.method = name
    if evaluator.dropped and not quiet:
        click.echo(
            f"note: {evaluator.dropped} damaged line(s) in {results_path}; their tasks ran again",
            err=True,
        )
    joint = None
    if est.status == "complete" and joint_draws:
        joint = T.joint_estimate(q, evaluator.joint, seed, n, joint_draws, orders)
    if est.status != "complete" or (joint is not None and joint.status != "complete"):
        left = est.missing if est.status != "complete" else joint.missing
        click.echo(
            f"shard {shard}: ran {evaluator.ran} topologies; {left} topologies of the next "
            f"stage are left to the other shards.  When they finish, run the shards again "
            f"with --merge over every shard's table, until one reports the estimate.",
        )
        return
    est.wall_seconds = time.perf_counter() - t_start
    rows = [est.record()] + ([joint.record()] if joint is not None else [])
    notes = list(est.warnings) + (list(joint.warnings) if joint is not None else [])
    if output:
        write_table(output, T.SUMMARY_COLUMNS, rows, provenance=prov, notes=notes)
    if json_path:
        from dataclasses import asdict

        from phylo.outputs import atomic_open

        data = {
            "format": "phylo-marglik-total",
            "estimate": rows[0],
            "joint": rows[1] if joint is not None else None,
            "stages": [asdict(s) for s in est.stages],
            "provenance": prov,
        }
        with atomic_open(json_path) as fh:
            fh.write(json.dumps(_finite(data), indent=1) + "\n")
    for line in _total_summary(est, joint, name, n):
        click.echo(line, err=output == "-")
    for w in notes:
        click.echo(f"warning: {w}", err=True)


def _finite(obj):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


if __name__ == "__main__":  # pragma: no cover
    main()
