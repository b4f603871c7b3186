"""The ``sbn`` command: summarise tree samples and fit subsplit Bayesian networks."""

from __future__ import annotations

import json

import click

from phylo.outputs import atomic_open
from phylo.progress import Progress
from phylo.sbn.methods import ALPHA_FORMS, DEFAULT_ALPHA, METHODS, SBN_METHODS

from .common import (
    Group,
    burnin_option,
    expand_callback,
    extant_option,
    rooted_option,
    run_options,
    seed_option,
    thin_option,
)
from .marglik import model_options, prior_option


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phylo")
def main():
    """Tree samples from MrBayes, BEAST or Newick files, and subsplit Bayesian networks.

    \b
    Examples:
      sbn summary run1.t run2.t
      sbn summary --burnin 0.1 --format json run*.t.gz > summary.json
      sbn fit run1.t run2.t -o model.json
      sbn prob model.json trees.nwk
      sbn kl model.json --reference golden/rep_*/ds1.trprobs
      sbn sample model.json -n 1000 --seed 1 > draws.nwk
      sbn top model.json -k 10
      sbn diagnose run1.t run2.t --p run1.p --p run2.p --plot diag
    """


def _read(files, burnin, thin, rooted, quiet=False, extant_only=False, notes=True):
    from phylo.trees import read_trees

    with Progress("reading trees", unit="trees", quiet=quiet) as bar:
        sample = read_trees(
            list(files),
            burnin=burnin,
            thin=thin,
            rooted=rooted,
            progress=bar.update,
            extant_only=extant_only,
        )
    if notes:
        _echo_notes(sample, quiet)
    return sample


def _echo_notes(sample, quiet):
    """How the files were read (no burn-in without MCMC state numbers, roots ignored, ...),
    on standard error."""
    if not quiet:
        for note in sample.notes:
            click.echo(f"note: {note}", err=True)


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILES...", callback=expand_callback)
@burnin_option
@thin_option
@rooted_option
@click.option(
    "--top",
    "-k",
    default=10,
    show_default=True,
    type=click.IntRange(0),
    help="How many of the most frequent topologies to list.",
)
@click.option(
    "--min-freq",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Splits below this frequency in every run are left out of the ASDSF.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "tsv", "json"]),
    default="text",
    show_default=True,
    help="Output for people (text) or pipelines (tsv, json).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Draw split frequencies of run 1 against run 2 to this PNG (needs the 'plot' extra).",
)
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    help="Write the summary here ('-' is standard output).",
)
@extant_option
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def summary(files, burnin, thin, rooted, top, min_freq, fmt, plot, output, quiet, extant_only):
    """Summarise tree samples: taxa, runs, unique topologies, ASDSF.

    Each FILE is one run (MrBayes .t/.trprobs, BEAST .trees, Newick; gzip is fine; '-'
    reads standard input).

    \b
    Example:
      sbn summary data/example.run1.t data/example.run2.t
    """
    from phylo.provenance import record
    from phylo.trees.summary import format_text, format_tsv, plot_split_frequencies, summarise
    from phylo.warmup import ensure

    ensure(["trees"], quiet=quiet)
    sample = _read(files, burnin, thin, rooted, quiet, extant_only, notes=False)
    _warn_if_runs_disagree(sample)
    s = summarise(sample, top=top, min_freq=min_freq)
    if plot:
        plot_split_frequencies(sample, plot)
    params = {"burnin": burnin, "thin": thin, "rooted": rooted}
    if extant_only:
        params["extant_only"] = True
    prov = record(inputs=files, parameters=params)
    if fmt == "json":
        s["provenance"] = prov
        text = json.dumps(s, indent=2) + "\n"
    elif fmt == "tsv":
        text = format_tsv(s, prov)
    else:
        text = format_text(s)
    with atomic_open(output) as fh:
        fh.write(text)


class _LearntLengths:
    """Branch lengths from an ``sbn vi`` model's lognormals, in the interface of
    :class:`phylo.trees.splits.SplitLengths`: their medians, or one draw per tree."""

    def __init__(self, family, rng=None):
        self.family, self.rng = family, rng

    def lengths(self, parents):
        return self.family.branch_lengths(parents, self.rng)


def _lengths_for(model, model_path, files, rng=None):
    """--lengths-from's per-split means; else, for an ``sbn vi`` model, its learnt branch
    lengths (medians, or draws with ``rng``); else None."""
    if files or getattr(model, "method", None) != "vi":
        return _split_lengths(model, files)
    from phylo.vi import load_family

    return _LearntLengths(load_family(model_path), rng)


def _split_lengths(model, files):
    """Per-split mean lengths from tree files, for --lengths-from (None without files)."""
    if not files:
        return None
    from phylo.trees import read_trees
    from phylo.trees.splits import SplitLengths

    if model.rooted:
        from phylo.errors import InputError

        raise InputError("--lengths-from gives lengths to unrooted topologies only")
    return SplitLengths(read_trees(list(files), taxa=model.taxa, lengths="stream"))


def _warn_if_runs_disagree(sample):
    """The pooling warning on standard error (also with --quiet; the exit status stays 0)."""
    from phylo.trees.diagnostics import pooling_warning

    message = pooling_warning(sample)
    if message:
        click.echo(message, err=True)


def _load_model(path):
    from phylo.sbn import load_model

    return load_model(path)


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILES...", callback=expand_callback)
@click.option(
    "--method",
    "-m",
    type=click.Choice(METHODS),
    default="em-alpha",
    show_default=True,
    help="srf: sample relative frequencies; ccd: conditional clade distribution; "
    "sa/em/em-alpha: subsplit Bayesian network by simple averaging, EM, or EM "
    "with a Dirichlet prior of strength --alpha.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0),
    default=DEFAULT_ALPHA,
    show_default=True,
    help="Prior strength of em-alpha.",
)
@click.option(
    "--alpha-form",
    type=click.Choice(ALPHA_FORMS),
    default="paper",
    show_default=True,
    help="paper: simple-average counts of each parent spread evenly over the "
    "children seen under it (Zhang & Matsen's code); bito: each subsplit's own "
    "count under uniform rootings (the bito library).",
)
@burnin_option
@thin_option
@rooted_option
@click.option(
    "--max-iter",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Most EM iterations.",
)
@click.option(
    "--min-iter",
    default=50,
    show_default=True,
    type=click.IntRange(0),
    help="EM runs at least this many iterations before it may stop.",
)
@click.option(
    "--tol",
    default=1e-5,
    show_default=True,
    type=click.FloatRange(0),
    help="EM stops when the objective changes by less than this.",
)
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    help="Write the model (JSON) here ('-' is standard output).",
)
@extant_option
@click.option("--quiet", "-q", is_flag=True, help="No progress line or summary.")
def fit(
    files,
    method,
    alpha,
    alpha_form,
    burnin,
    thin,
    rooted,
    max_iter,
    min_iter,
    tol,
    output,
    quiet,
    extant_only,
):
    """Fit a tree distribution (default: SBN-EM-alpha) to tree samples.

    Each FILE is one run (MrBayes .t/.trprobs, BEAST .trees, Newick; '-' reads standard
    input); runs are pooled.  The model is written as JSON with its provenance.

    \b
    Example:
      sbn fit data/example.run1.t data/example.run2.t -o model.json
    """
    from phylo.provenance import record
    from phylo.sbn import fit as fit_model
    from phylo.warmup import ensure

    ensure(["trees", "sbn-fit"], quiet=quiet)
    sample = _read(files, burnin, thin, rooted, quiet, extant_only)
    _warn_if_runs_disagree(sample)
    with Progress(f"fitting {method}", unit="EM iterations", quiet=quiet) as bar:
        kwargs = {}
        if method in SBN_METHODS:
            kwargs = dict(
                alpha=alpha,
                alpha_form=alpha_form,
                max_iter=max_iter,
                min_iter=min_iter,
                tol=tol,
                progress=lambda k, obj: bar.update(1),
            )
        model = fit_model(sample, method, **kwargs)
    params = {"method": method, "burnin": burnin, "thin": thin, "rooted": rooted}
    if extant_only:
        params["extant_only"] = True
    if method in ("em", "em-alpha"):
        params.update(max_iter=max_iter, min_iter=min_iter, tol=tol)
    if method == "em-alpha":
        params.update(alpha=alpha, alpha_form=alpha_form)
    model.provenance = record(inputs=files, parameters=params)
    model.save(output)
    if not quiet:
        click.echo(_fit_summary(model, sample), err=True)


def _fit_summary(model, sample) -> str:
    kind = "rooted" if sample.rooted else "unrooted"
    head = (
        f"{model.method}: {sample.n_topologies} {kind} topologies of {sample.n_taxa} taxa "
        f"from {sample.n_trees} trees in {sample.n_runs} run(s)"
    )
    if model.kind == "srf":
        return head
    s = model.support
    info = model.fit_info
    out = [
        head,
        f"support: {s.n_rootsplits} root splits, {s.n_params - s.n_rootsplits} "
        f"conditional subsplit probabilities under {s.n_keys - 1} parents",
    ]
    if "iterations" in info:
        obj = info["objective"][-1] if info.get("objective") else float("nan")
        out.append(f"EM: {info['iterations']} iterations, objective {obj:.6f}")
    return "\n".join(out)


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("files", nargs=-1, required=True, metavar="FILES...", callback=expand_callback)
@click.option(
    "--burnin",
    "-b",
    default="0",
    show_default=True,
    metavar="B",
    help="Trees to discard from the start of each file (fraction or count).",
)
@thin_option
@click.option(
    "--unique",
    is_flag=True,
    help="One line per unique topology (with its frequency and Newick) instead of one per tree.",
)
@click.option(
    "--credible-level",
    "with_level",
    is_flag=True,
    help="Also the mass of the topologies at least as probable as each tree (exact by "
    "top-k enumeration; else a lower bound, marked in credible_exact).",
)
@click.option("--output", "-o", default="-", show_default=True, help="TSV output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def prob(model_path, files, burnin, thin, unique, with_level, output, quiet):
    """Log probabilities of trees under a fitted model (TSV).

    One line per tree: its file, its number in the file (1-based, counting every tree) and
    its natural log probability (-inf when the model cannot produce it).

    \b
    Example:
      sbn prob model.json data/example.run1.t --burnin 0.25
    """
    from phylo.provenance import record
    from phylo.sbn import read_for_model
    from phylo.tables import write_table

    model = _load_model(model_path)
    with Progress("reading trees", unit="trees", quiet=quiet) as bar:
        sample = read_for_model(
            list(files), model.taxa, model.rooted, burnin=burnin, thin=thin, progress=bar.update
        )
    logp = model.log_prob(sample)
    header = record(
        inputs=[model_path, *files], parameters={"burnin": burnin, "thin": thin, "unique": unique}
    )
    extra, cols = _credible_columns(model, sample) if with_level else (None, [])
    if unique:
        freq = sample.frequencies()
        rows = (
            [i + 1, freq[i], logp[i], *(extra[i] if extra else []), sample.newick(i)]
            for i in range(sample.n_topologies)
        )
        write_table(output, ["topology", "frequency", "log_prob", *cols, "newick"], rows, header)
        return

    def rows():
        for run, trace in zip(sample.runs, sample.traces):
            for j, t in enumerate(trace):
                more = extra[t] if extra else []
                yield [run.path, run.burnin + j * run.thin + 1, logp[t], *more]

    write_table(output, ["file", "tree", "log_prob", *cols], rows(), header)


def _credible_columns(model, sample):
    """Per unique topology: its credible level and whether it is exact."""
    from phylo.sbn.credible import credible_levels

    cl = credible_levels(model, sample)
    return [[v, bool(e)] for v, e in zip(cl.level, cl.exact)], ["credible_level", "credible_exact"]


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.option(
    "--reference",
    "-r",
    "references",
    multiple=True,
    callback=expand_callback,
    required=True,
    metavar="FILE",
    help="A reference run (repeat, or give a glob's files); runs are pooled.",
)
@click.argument("more", nargs=-1, metavar="[FILES...]", callback=expand_callback)
@burnin_option
@thin_option
@click.option(
    "--trees-per-run",
    type=click.IntRange(1),
    default=None,
    help="For weighted .trprobs references: pool the runs as counts "
    "round(w * N) per run, as Zhang & Matsen did with N = 750001.  Default: "
    "average the runs' frequencies.",
)
@click.option(
    "--floor",
    default=2.22e-16,
    show_default=True,
    type=click.FloatRange(0),
    help="Probability used for reference trees the model cannot produce.",
)
@click.option("--output", "-o", default="-", show_default=True, help="TSV output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def kl(model_path, references, more, burnin, thin, trees_per_run, floor, output, quiet):
    """KL divergence KL(reference || model) in nats.

    The reference (e.g. long "golden" MrBayes runs) is pooled over its files; trees the
    model gives probability zero count with the --floor probability, as in Zhang & Matsen
    (NeurIPS 2018).  Files after the options are more reference runs.

    \b
    Example:
      sbn kl model.json --reference rep_1/DS1.trprobs rep_2/DS1.trprobs --trees-per-run 750001
    """
    from phylo.provenance import record
    from phylo.sbn import kl_to_reference, read_for_model

    model = _load_model(model_path)
    files = list(references) + list(more)
    with Progress("reading reference trees", unit="trees", quiet=quiet) as bar:
        ref = read_for_model(
            files, model.taxa, model.rooted, burnin=burnin, thin=thin, progress=bar.update
        )
    from phylo.tables import write_table

    kl = kl_to_reference(model, ref, trees_per_run, floor)
    header = record(
        inputs=[model_path, *files],
        parameters={"burnin": burnin, "thin": thin, "trees_per_run": trees_per_run, "floor": floor},
    )
    write_table(
        output,
        [
            "kl",
            "reference_topologies",
            "reference_mass_in_model_support",
            "model_mass_on_reference",
        ],
        [
            [
                kl.value,
                kl.reference_topologies,
                kl.reference_mass_in_support,
                kl.model_mass_on_reference,
            ]
        ],
        header,
    )


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.option("-n", "count", type=click.IntRange(1), required=True, help="Number of trees.")
@seed_option
@click.option(
    "--log-prob",
    "with_logp",
    is_flag=True,
    help="Write TSV lines 'log_prob<TAB>newick' instead of plain Newick.",
)
@click.option(
    "--lengths-from",
    "lengths_from",
    multiple=True,
    callback=expand_callback,
    metavar="FILE",
    help="Give the trees branch lengths: each split's mean length in these tree files "
    "(repeat for several runs; the default burn-in applies).",
)
@click.option("--output", "-o", default="-", show_default=True, help="Output file.")
def sample(model_path, count, seed, with_logp, lengths_from, output):
    """Draw trees exactly from a fitted model, as Newick (one per line).

    The same --seed gives the same trees; without one a seed is drawn and printed on
    standard error.  With --lengths-from each branch gets the mean length of its split in
    those tree files (splits they never show: their mean branch length).  A model written by
    `sbn vi` gives each tree branch lengths drawn from its learnt lognormals: exact draws from
    the variational posterior over topologies and branch lengths.  With --log-prob
    the output is a table (columns log_prob and newick, with provenance) that `marglik
    compare --trees` and `marglik loglik` read.  Trees are drawn and written in blocks, so
    any number of them fits in memory.

    \b
    Example:
      sbn sample model.json -n 1000 --seed 42 > draws.nwk
    """
    import numpy as np

    from phylo.execution import fresh_seed
    from phylo.provenance import record
    from phylo.sbn.sampling import draw_newick
    from phylo.tables import render

    model = _load_model(model_path)
    if seed is None:
        seed = fresh_seed()
        click.echo(f"seed: {seed}", err=True)
    # an sbn vi model's branch lengths are drawn from their own stream, so that the topologies
    # are those drawn with the same seed from the SBN alone
    lengths = _lengths_for(model, model_path, lengths_from, np.random.default_rng((seed, 1)))
    draws = draw_newick(model, count, seed, lengths=lengths)
    with atomic_open(output) as fh:
        if with_logp:
            prov = record(inputs=[model_path], seed=seed, parameters={"n": count})
            for line in render(["log_prob", "newick"], draws, prov):
                fh.write(line)
        else:
            for _, newick in draws:
                fh.write(newick + "\n")


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.option(
    "-k", "k", type=click.IntRange(1), default=10, show_default=True, help="How many topologies."
)
@click.option(
    "--entropy",
    "with_entropy",
    is_flag=True,
    help="Also report the model's entropy (exact when the model has few enough "
    "topologies, otherwise a Monte Carlo estimate drawn with --seed).",
)
@seed_option
@click.option(
    "--max-derivations",
    type=click.IntRange(1),
    default=2_000_000,
    show_default=True,
    help="Give up proving the top k of an unrooted SBN after this many rooted trees.",
)
@click.option(
    "--lengths-from",
    "lengths_from",
    multiple=True,
    callback=expand_callback,
    metavar="FILE",
    help="Give the trees branch lengths: each split's mean length in these tree files "
    "(repeat for several runs; the default burn-in applies).",
)
@click.option("--output", "-o", default="-", show_default=True, help="TSV output file.")
def top(model_path, k, with_entropy, seed, max_derivations, lengths_from, output):
    """The K most probable topologies of a fitted model, with their probabilities.

    Found exactly by dynamic programming over the subsplit graph (for an unrooted SBN:
    rooted trees in order of probability, added up per unrooted topology until a bound
    proves the answer), not by sampling.  The trees of a model written by `sbn vi` carry
    the medians of its learnt branch lengths (--lengths-from overrides them).

    \b
    Example:
      sbn top model.json -k 5
    """
    import itertools
    import math

    import numpy as np

    from phylo.provenance import record
    from phylo.tables import write_table

    model = _load_model(model_path)
    best = model.top(k, max_derivations=max_derivations) if model.kind == "sbn" else model.top(k)
    params = {"k": k}
    if with_entropy:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        ent = model.entropy(rng=np.random.default_rng(seed))
        params["entropy"] = str(ent)
        if ent.exact:
            seed = None
    header = record(inputs=[model_path], seed=seed, parameters=params)
    probs = [math.exp(x) for x in best.log_prob]
    cumulative = list(itertools.accumulate(probs))
    split_lengths = _lengths_for(model, model_path, lengths_from)
    bl = split_lengths.lengths(best.parents) if split_lengths else [None] * len(best)
    rows = [
        [i + 1, probs[i], cumulative[i], best.log_prob[i], best.newick(i, bl[i])]
        for i in range(len(best))
    ]
    write_table(output, ["rank", "probability", "cumulative", "log_prob", "newick"], rows, header)


@main.command()
@click.argument(
    "training", nargs=-1, required=True, metavar="TRAINING...", callback=expand_callback
)
@click.option(
    "--reference",
    "-r",
    "references",
    multiple=True,
    callback=expand_callback,
    required=True,
    help="Reference runs (e.g. golden runs' .trprobs), pooled: repeat the option, "
    "or give a quoted pattern such as 'golden/rep_*/DS1.trprobs'.",
)
@click.option(
    "--methods",
    "-m",
    default=",".join(METHODS),
    show_default=True,
    help="Comma-separated estimators.",
)
@click.option("--alpha", type=float, default=None, help="em-alpha strength (default 1e-4).")
@click.option(
    "--trees-per-run",
    type=click.IntRange(1),
    default=None,
    help="Pool weighted reference runs as counts round(w * N) (the paper: 750001).",
)
@click.option(
    "--floor",
    type=float,
    default=2.22e-16,
    show_default=True,
    help="Probability used for reference trees an estimate cannot produce.",
)
@burnin_option
@thin_option
@rooted_option
@click.option(
    "--output",
    "-o",
    default=None,
    help="Results table (TSV), written as tasks finish; rerun to resume.",
)
@run_options
def compare(
    training, references, methods, alpha, trees_per_run, floor, burnin, thin, rooted, output,
    run, quiet,
):  # fmt: skip
    """KL(reference || estimate) of estimators fitted to each TRAINING file.

    Every TRAINING file is one replicate (e.g. a short MCMC run); the reference files are
    pooled (e.g. long golden runs).  Each (replicate, method) is one task: --jobs, --executor
    dask and --shard spread them; the table is the same however they are spread.

    \b
    Example (Zhang & Matsen 2018, Table 1, DS1):
      sbn compare short/rep_*/DS1.trprobs --reference 'golden/rep_*/DS1.trprobs' \\
          --trees-per-run 750001 --jobs 2 -o ds1.tsv
    """
    from phylo.execution import run_comparison
    from phylo.sbn import compare as C

    comp = C.comparison(
        training, references, methods, alpha, trees_per_run, floor, burnin,
        thin, rooted,
    )  # fmt: skip
    with Progress("fitting", unit="tasks", quiet=quiet) as bar:
        result = run_comparison(comp, output, progress=bar, **run)
    _echo_kl_summary(C.summarise(result.rows, list(dict.fromkeys(k[1] for k in comp.keys))))


def _echo_kl_summary(summary, err=False):
    from phylo.tables import format_value

    click.echo("method\treplicates\tmean_kl\tsd_kl", err=err)
    for s in summary:
        cells = [s["method"], s["replicates"], s["mean_kl"], s["sd_kl"]]
        click.echo("\t".join(format_value(c) for c in cells), err=err)


@main.command()
@click.argument("tables", nargs=-1, required=True, metavar="TABLES...", callback=expand_callback)
@click.option("--output", "-o", default="-", show_default=True, help="The merged table.")
def merge(tables, output):
    """Join the tables of the shards of one `sbn compare` run (--shard i/n).

    The result is the table one unsharded run writes; tables of different runs (other
    inputs or settings) are refused.
    """
    from phylo.execution import merge_tables, write_table
    from phylo.sbn import compare as C

    header, columns, rows = merge_tables(tables, C.N_KEY, ignore=["seconds"])
    write_table(output, header, columns, rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    _echo_kl_summary(C.summarise(rows, methods), err=output == "-")


# -- summary trees, split tables, credible sets ---------------------------------------------


def _read_lengths(files, burnin, thin, rooted, quiet, what="", extant_only=False):
    """Trees whose branch lengths are read again from the files when summarised (memory
    does not grow with the trees); with --heights a tree that is not rooted is an error
    that says why rooted trees were needed."""
    from phylo.errors import InputError
    from phylo.trees import read_trees

    with Progress("reading trees", unit="trees", quiet=quiet) as bar:
        try:
            sample = read_trees(
                list(files),
                burnin=burnin,
                thin=thin,
                rooted=rooted,
                lengths="stream",
                progress=bar.update,
                extant_only=extant_only,
            )
        except InputError as exc:
            if what and "not rooted" in exc.message:
                raise InputError(
                    f"{what} needs rooted trees: {exc.message}", exc.path, exc.line, exc.column
                ) from None
            raise
    _echo_notes(sample, quiet)
    return sample


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILES...", callback=expand_callback)
@click.option(
    "--type",
    "kind",
    type=click.Choice(["majority", "extended", "mcc", "map"]),
    default="majority",
    show_default=True,
    help="majority-rule consensus, extended (greedy) consensus, maximum clade credibility "
    "tree, or the most probable topology under a fitted model.",
)
@click.option(
    "--model",
    "model_path",
    default=None,
    help="For --type map: a model from 'sbn fit' (default: SBN-EM-alpha fitted to FILES).",
)
@click.option(
    "--outgroup",
    default=None,
    metavar="TAXON[,TAXON]",
    help="Draw an unrooted tree rooted on these taxa (default: the first taxon).",
)
@click.option(
    "--heights",
    type=click.Choice(["mean", "median", "keep"]),
    default=None,
    help="Rooted time trees (implies --rooted): node heights of the printed tree "
    "(keep: those of the MCC tree; default keep for mcc, mean otherwise).",
)
@burnin_option
@thin_option
@rooted_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["nexus", "newick"]),
    default="nexus",
    show_default=True,
    help="NEXUS with a translate block, or one Newick line.",
)
@click.option("--output", "-o", default="-", show_default=True, help="Output file.")
@extant_option
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def tree(
    files, kind, model_path, outgroup, heights, burnin, thin, rooted, fmt, output, extant_only,
    quiet,
):  # fmt: skip
    """One annotated summary tree (consensus, MCC or MAP) of tree samples, for FigTree.

    Nodes carry TreeAnnotator's attributes: posterior, length (mean), length_median,
    length_95%_HPD, length_range, and for rooted trees the same for height.

    \b
    Example:
      sbn tree data/example.run1.t data/example.run2.t --type mcc -o mcc.tre
    """
    from phylo.provenance import record, tsv_header
    from phylo.trees.annotated import write_trees
    from phylo.trees.consensus import summary_tree

    sample = _read_lengths(
        files,
        burnin,
        thin,
        rooted or heights is not None,
        quiet,
        "--heights" if heights else "",
        extant_only,
    )
    model = _load_model(model_path) if model_path else None
    result = summary_tree(sample, kind, model=model, outgroup=outgroup, heights=heights)
    prov = record(
        inputs=[*files, *([model_path] if model_path else [])],
        parameters={
            "type": kind,
            "burnin": burnin,
            "thin": thin,
            "rooted": sample.rooted,
            "heights": heights,
            "outgroup": outgroup,
            **({"extant_only": True} if extant_only else {}),
        },
    )
    comment = "\n".join(line[2:] for line in tsv_header(prov).splitlines())
    write_trees(output, [result], fmt, provenance=comment)


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILES...", callback=expand_callback)
@click.option(
    "--min-freq",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Keep splits whose frequency reaches this in at least one run (MrBayes's minpartfreq).",
)
@click.option(
    "--trivial",
    is_flag=True,
    help="Also list the terminal branches (and, for "
    "rooted trees, the root clade), as MrBayes's .parts and .vstat do.",
)
@burnin_option
@thin_option
@rooted_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "tsv", "json"]),
    default="text",
    show_default=True,
    help="For people (text) or pipelines (tsv, json).",
)
@click.option("--output", "-o", default="-", show_default=True, help="Output file.")
@extant_option
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def splits(files, min_freq, trivial, burnin, thin, rooted, fmt, output, extant_only, quiet):
    """The split (clade) table: frequency per run and pooled, its standard deviation across
    runs, and the branch length's mean, variance, median and 95% HPD (MrBayes's .tstat and
    .vstat in one table).

    \b
    Example:
      sbn splits data/example.run1.t data/example.run2.t --format tsv -o splits.tsv
    """
    from phylo.provenance import record, tsv_header
    from phylo.tables import write_table
    from phylo.trees.splits import format_split_text, split_records, split_table

    sample = _read_lengths(files, burnin, thin, rooted, quiet, extant_only=extant_only)
    table = split_table(sample, min_freq=min_freq, include_trivial=trivial, values=True)
    columns, rows = split_records(table, sample.taxa, sample.n_runs, sample.weighted)
    prov = record(
        inputs=files,
        parameters={
            "burnin": burnin,
            "thin": thin,
            "rooted": rooted,
            "min_freq": min_freq,
            "trivial": trivial,
            **({"extant_only": True} if extant_only else {}),
        },
    )
    notes = (
        []
        if table.lengths is None or table.lengths.exact
        else [f"medians and HPD intervals within relative error {table.lengths.accuracy:g}"]
    )
    if fmt == "tsv":
        return write_table(output, columns, rows, prov, notes)
    if fmt == "json":
        splits = [{c: _json_cell(v) for c, v in zip(columns, r)} for r in rows]
        data = {"provenance": prov, "notes": notes, "splits": splits}
        text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    else:
        text = format_split_text(columns, rows, tsv_header(prov))
    with atomic_open(output) as fh:
        fh.write(text)


@main.command()
@click.argument(
    "sources", nargs=-1, required=True, metavar="MODEL | FILES...", callback=expand_callback
)
@click.option(
    "--level",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True),
    help="Probability mass the set must reach.",
)
@burnin_option
@thin_option
@rooted_option
@click.option(
    "--max-derivations",
    type=click.IntRange(1),
    default=2_000_000,
    show_default=True,
    help="Give up proving the order of an unrooted SBN's topologies after this many rooted trees.",
)
@click.option("--output", "-o", default="-", show_default=True, help="TSV output file.")
def credible(sources, level, burnin, thin, rooted, max_derivations, output):
    """The smallest set of topologies whose probability reaches --level, exactly.

    SOURCES is a model from 'sbn fit' (listed by exact top-k enumeration) or tree files (the
    sample frequencies).  Columns as 'sbn top'.

    \b
    Example:
      sbn credible model.json --level 0.95 -o credible.tsv
    """
    import math

    from phylo.provenance import record
    from phylo.sbn import fit_srf
    from phylo.sbn.credible import credible_set
    from phylo.tables import write_table

    if len(sources) == 1 and _is_model(sources[0]):
        model = _load_model(sources[0])
    else:
        model = fit_srf(_read(sources, burnin, thin, rooted, quiet=True))
    cs = credible_set(model, level, max_derivations=max_derivations)
    rows = [
        [
            i + 1,
            math.exp(cs.top.log_prob[i]),
            float(cs.cumulative[i]),
            float(cs.top.log_prob[i]),
            cs.top.newick(i),
        ]
        for i in range(len(cs))
    ]
    prov = record(
        inputs=sources,
        parameters={"level": level, "model": model.method, "topologies": len(cs), "mass": cs.mass},
    )
    write_table(output, ["rank", "probability", "cumulative", "log_prob", "newick"], rows, prov)


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILES...", callback=expand_callback)
@click.option(
    "--p",
    "--params",
    "params",
    multiple=True,
    callback=expand_callback,
    metavar="FILE",
    help="The parameter file (MrBayes .p, BEAST .log) of each run, in the order of FILES: "
    "repeat the option or give a quoted pattern.  Adds PSRF and ESS of every column and "
    "the log likelihood to the burn-in rule.",
)
@burnin_option
@thin_option
@rooted_option
@click.option(
    "--min-freq",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Splits below this frequency in every run are left out of the ASDSF; split "
    "indicators get an ESS when their pooled frequency is in [F, 1 - F].",
)
@click.option(
    "--distance",
    type=click.Choice(["pd", "rf"]),
    default="pd",
    show_default=True,
    help="Tree distance of the approximate ESS: path distance (RWTY's default) or Robinson-Foulds.",
)
@click.option(
    "--max-lag",
    default=100,
    show_default=True,
    type=click.IntRange(20),
    help="Largest lag (in samples) of the approximate ESS (RWTY's max.sampling.interval).",
)
@click.option(
    "--pairs",
    type=click.IntRange(1),
    default=None,
    help="Average this many random pairs of trees per lag (RWTY's default is 500) instead "
    "of every pair: faster on large trees; uses --seed.",
)
@seed_option
@click.option(
    "--every",
    type=click.IntRange(1),
    default=None,
    help="Samples between checkpoints of the cumulative ASDSF (default: about 100 "
    "checkpoints).  MrBayes's diagnfreq / samplefreq gives its .mcmc values.",
)
@click.option(
    "--window",
    type=click.IntRange(2),
    default=None,
    help="Samples per sliding window of the ASDSF (default: a twentieth of the run).",
)
@click.option(
    "--plot",
    default=None,
    metavar="PREFIX",
    help="Draw PREFIX.splits.png (split frequencies of every pair of runs), "
    "PREFIX.asdsf.png and PREFIX.ess.png (needs the 'plot' extra).",
)
@click.option(
    "--tables",
    default=None,
    metavar="PREFIX",
    help="Write PREFIX.ess.tsv, PREFIX.asdsf.tsv and PREFIX.parameters.tsv.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The report for people (text) or pipelines (json).",
)
@click.option("--output", "-o", default="-", show_default=True, help="Write the report here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def diagnose(
    files, params, burnin, thin, rooted, min_freq, distance, max_lag, pairs, seed, every,
    window, plot, tables, fmt, output, quiet,
):  # fmt: skip
    """Convergence diagnostics of MCMC runs: topological ESS, ASDSF, PSRF, burn-in.

    Each FILE is one run (MrBayes .t, BEAST .trees, Newick), read whole: the burn-in
    (default 25%) is applied to the ESS, PSRF and final ASDSF, while the ASDSF during the
    runs and the suggested burn-in look at every sample.  The topological ESS is given
    two ways: Lanfear et al.'s approximate ESS on tree distances (as RWTY), and the ESS of
    each tree's log probability under an SBN fitted to all runs and of split indicators.

    \b
    Example:
      sbn diagnose data/example.run1.t data/example.run2.t --plot diag
      sbn diagnose run1.t run2.t --p run1.p --p run2.p --every 50 --tables diag
    """
    import numpy as np

    from phylo.errors import InputError
    from phylo.provenance import record
    from phylo.tables import write_table
    from phylo.trees import read_trees
    from phylo.trees.diagnosis import diagnose as run_diagnosis
    from phylo.trees.diagnosis import format_text, to_dict
    from phylo.trees.diagnosis import tables as diagnosis_tables
    from phylo.trees.diagnostics import burnin_trees, sampling_interval, subsample
    from phylo.trees.traces import read_parameters

    files = list(files)
    param_files = list(params)
    if param_files and len(param_files) != len(files):
        raise InputError(
            f"give one parameter file per tree file: {len(files)} tree files, "
            f"{len(param_files)} parameter files"
        )
    with Progress("reading trees", unit="trees", quiet=quiet) as bar:
        sample = read_trees(
            files, burnin=0, thin=thin, rooted=rooted, lengths="stream", progress=bar.update
        )
    parameters = [read_parameters(p) for p in param_files] or None
    step = sampling_interval(files[0])
    if step is None and parameters is not None and parameters[0].generation is not None:
        g = parameters[0].generation
        if g.shape[0] >= 2 and np.all(np.diff(g) == g[1] - g[0]) and g[1] > g[0]:
            step = (int(g[0]), int(g[1] - g[0]))
    rng = None
    if pairs is not None:
        if seed is None:
            from phylo.execution import fresh_seed

            seed = fresh_seed()
            click.echo(f"seed: {seed}", err=True)
        rng = np.random.default_rng(seed)
    d = run_diagnosis(
        sample, burnin, parameters, step, distance, max_lag, pairs, rng, every, window, min_freq
    )
    prov = record(
        inputs=[*files, *param_files],
        seed=seed if pairs is not None else None,
        parameters={
            "burnin": burnin,
            "thin": thin,
            "rooted": rooted,
            "min_freq": min_freq,
            "distance": distance,
            "max_lag": max_lag,
            "pairs": pairs,
            "every": every,
            "window": window,
        },
    )
    if plot:
        from phylo.trees.diagnostic_plots import plot_asdsf, plot_ess, plot_split_matrix

        if sample.n_runs >= 2:
            kept = subsample(
                sample, [burnin_trees(burnin, t.shape[0], thin) for t in sample.traces]
            )
            plot_split_matrix(kept, f"{plot}.splits.png", min_freq)
            plot_asdsf(d, f"{plot}.asdsf.png")
        plot_ess(d, f"{plot}.ess.png")
    if tables:
        for name, (columns, rows) in diagnosis_tables(d).items():
            write_table(f"{tables}.{name}.tsv", columns, rows, prov)
    if fmt == "json":
        doc = to_dict(d)
        doc["provenance"] = prov
        text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    else:
        text = format_text(d)
    with atomic_open(output) as fh:
        fh.write(text)


def _json_cell(v):
    """Missing values (NaN) as JSON null."""
    return None if isinstance(v, float) and v != v else v


def _is_model(path: str) -> bool:
    """Whether a file is a model file (JSON) rather than trees."""
    if path == "-":
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(64).lstrip().startswith(b"{")
    except OSError:
        return False


@main.command("vi")
@click.argument("alignment")
@click.option(
    "--trees",
    "tree_files",
    multiple=True,
    callback=expand_callback,
    required=True,
    metavar="FILE",
    help="Tree sample(s) whose topologies give the SBN support: MCMC runs, bootstrap or "
    "UFBoot trees (repeat, or give a quoted pattern); runs are pooled.",
)
@burnin_option
@thin_option
@click.option(
    "--estimator",
    type=click.Choice(["vimco", "rws", "unordered-set", "sum-and-sample"]),
    default="vimco",
    show_default=True,
    help="Topology gradient: VIMCO on the K-sample bound, reweighted wake-sleep, or the "
    "unordered set / sum-and-sample estimators of the ELBO.",
)
@click.option(
    "--particles",
    "-K",
    type=click.IntRange(2),
    default=10,
    show_default=True,
    help="Particles (likelihood gradients) per iteration.",
)
@click.option(
    "--iterations",
    "-n",
    type=click.IntRange(1),
    default=60_000,
    show_default=True,
    help="Iterations in all (a finished run given more resumes from its checkpoint).",
)
@click.option(
    "--lr",
    type=float,
    default=0.0001,
    show_default=True,
    help="Adam learning rate of the SBN's logits (VBPI: 0.001).",
)
@click.option(
    "--lr-branch",
    type=float,
    default=0.003,
    show_default=True,
    help="Learning rate of the branch-length parameters.",
)
@click.option(
    "--lr-decay",
    type=float,
    default=0.75,
    show_default=True,
    help="Learning rates are multiplied by this every --lr-decay-every iterations.",
)
@click.option("--lr-decay-every", type=click.IntRange(1), default=10_000, show_default=True)
@click.option(
    "--anneal-start",
    type=float,
    default=0.001,
    show_default=True,
    help="Power of the likelihood at the start of annealing.",
)
@click.option(
    "--anneal-iterations",
    type=click.IntRange(0),
    default=20_000,
    show_default=True,
    help="Iterations over which the power rises linearly to 1 (0: no annealing).",
)
@click.option(
    "--psp/--no-psp",
    default=True,
    show_default=True,
    help="Branch-length parameters on primary subsplit pairs as well as splits.",
)
@click.option(
    "--init",
    type=click.Choice(["em-alpha", "uniform"]),
    default="em-alpha",
    show_default=True,
    help="Start the SBN at the sample's SBN-EM-alpha estimate, or uniform (VBPI).",
)
@click.option(
    "--hold-topology",
    type=click.IntRange(0),
    default=None,
    help="Iterations the SBN is held at its start while the branch lengths are fitted on "
    "the ELBO (default: the annealing iterations with --init em-alpha, 0 with uniform).",
)
@click.option(
    "--branch-objective",
    type=click.Choice(["bound", "elbo"]),
    default="bound",
    show_default=True,
    help="Fit the branch lengths on the K-sample bound (VBPI) or on the ELBO (a higher "
    "ELBO, but narrower lognormals: worse importance-sampling proposals).",
)
@click.option(
    "--threads",
    "-j",
    type=click.IntRange(1),
    default=None,
    help="Threads the particles' likelihoods are split between (default: all CPUs).",
)
@seed_option
@click.option(
    "--output",
    "-o",
    required=True,
    help="The model (JSON): an SBN that sbn top/prob/sample/kl read, with the "
    "branch-length distribution beside it.",
)
@click.option(
    "--trace",
    "trace_path",
    default=None,
    help="Trace of the bound (TSV; default OUTPUT with .trace.tsv).",
)
@click.option(
    "--checkpoint",
    default=None,
    help="Resumable checkpoint (default OUTPUT with .checkpoint.json); the same command "
    "started again resumes from it.",
)
@click.option(
    "--checkpoint-every",
    type=click.FloatRange(1),
    default=300,
    show_default=True,
    help="Seconds between checkpoints.",
)
@click.option(
    "--evaluate-particles",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Draws per batch of the final ELBO, K-sample bound and marginal likelihood.",
)
@click.option(
    "--evaluate-repeats",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="Batches of the final evaluation (mean and sd over them; 0: none).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress line or summary.")
@prior_option
@model_options
def vi(
    alignment, tree_files, burnin, thin, estimator, particles, iterations, lr, lr_branch,
    lr_decay, lr_decay_every, anneal_start, anneal_iterations, psp, init, hold_topology,
    branch_objective, threads, seed, output,
    trace_path, checkpoint, checkpoint_every, evaluate_particles, evaluate_repeats, quiet,
    prior, model,
):  # fmt: skip
    """Variational Bayesian phylogenetic inference (VBPI): fit an SBN over topologies and
    lognormal branch lengths to the posterior of ALIGNMENT.

    The SBN's support (root splits and subsplit pairs) comes from the --trees sample; the
    parameters maximise the K-sample lower bound with an annealed likelihood (Zhang &
    Matsen, ICLR 2019).  The progress line shows the bound and an ETA; the trace goes to
    a TSV; a checkpoint is written every few minutes, and the same command resumes from
    it.  At the end the ELBO, the K-sample bound and the importance-sampling marginal
    likelihood are estimated and stored in the model.

    \b
    Example:
      sbn vi DS1.fasta --trees short/DS1.trprobs --seed 1 -o vi_model.json
      sbn top vi_model.json -k 5
    """
    import warnings

    from phylo.errors import InputError
    from phylo.execution import fresh_seed
    from phylo.likelihood import read_alignment
    from phylo.marglik.parameters import model_prior
    from phylo.provenance import file_digest, record
    from phylo.tables import write_table
    from phylo.vi.family import SupportWarning
    from phylo.vi.training import TRACE_COLUMNS, Settings, variational_inference

    if output == "-":
        raise InputError("sbn vi writes a model, a trace and a checkpoint: give -o FILE")
    mp = model_prior(model, prior)
    if mp.n:
        free = ", ".join(b.name for b in mp.blocks)
        raise InputError(
            f"sbn vi learns topologies and branch lengths, not the model's parameters: fix "
            f"{free} (with --kappa, --rates, --frequencies or +F, --gamma-shape, --pinv, or "
            "--prior NAME=fixed:VALUE)"
        )
    tree_files = list(tree_files)
    if seed is None:
        seed = fresh_seed()
        click.echo(f"seed: {seed} (give it with --seed to resume this run)", err=True)
    base = output[:-5] if output.endswith(".json") else output
    trace_path = trace_path or base + ".trace.tsv"
    checkpoint = checkpoint or base + ".checkpoint.json"
    settings = Settings(
        estimator=estimator,
        particles=particles,
        iterations=iterations,
        lr=lr,
        lr_branch=lr_branch,
        lr_decay=lr_decay,
        lr_decay_every=lr_decay_every,
        anneal_start=anneal_start,
        anneal_iterations=anneal_iterations,
        psp=psp,
        init=init,
        hold_topology=hold_topology,
        branch_objective=branch_objective,
        checkpoint_seconds=checkpoint_every,
    )
    aln = read_alignment(alignment)
    sample = _read(tree_files, burnin, thin, False, quiet)
    params = {
        "estimator": estimator,
        "particles": particles,
        "iterations": iterations,
        "lr": lr,
        "lr_branch": lr_branch,
        "lr_decay": lr_decay,
        "lr_decay_every": lr_decay_every,
        "anneal_start": anneal_start,
        "anneal_iterations": anneal_iterations,
        "psp": psp,
        "init": init,
        "hold_topology": hold_topology,
        "branch_objective": branch_objective,
        "burnin": burnin,
        "thin": thin,
        "model": model["model"],
        "prior": prior,
    }
    prov = record(inputs=[alignment, *tree_files], seed=seed, parameters=params)
    identity = {
        "inputs": [file_digest(p) for p in [alignment, *tree_files]],
        "burnin": burnin,
        "thin": thin,
    }
    notes = [
        "objective: the mean over the block of the estimator's bound at power 1 (the "
        f"{particles}-sample bound for vimco/rws, an ELBO estimate otherwise); elbo: an "
        "ELBO estimate from fresh draws"
    ]

    def on_trace(rows):
        write_table(trace_path, TRACE_COLUMNS, rows, prov, notes)

    def show(message, category, *args, **kwargs):
        click.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings(), Progress(
        f"vi ({estimator})", total=iterations, unit="iterations", quiet=quiet
    ) as bar:  # fmt: skip
        warnings.simplefilter("always", SupportWarning)
        warnings.showwarning = show

        def progress(it, bound):
            if bar.done == 0 and it > 1:
                bar.done = it - 1  # resumed
            if bound == bound:
                bar.description = f"vi ({estimator}) bound {bound:.2f}"
            bar.update(1)

        result = variational_inference(
            aln,
            sample,
            settings,
            seed,
            model=mp.base,
            prior=mp.branch_prior,
            threads=threads,
            checkpoint=checkpoint,
            identity=identity,
            on_trace=on_trace,
            progress=progress,
            evaluate_particles=evaluate_particles,
            evaluate_repeats=evaluate_repeats,
        )
    result.family.save(output, provenance=prov)
    if not quiet:
        click.echo(_vi_summary(result), err=True)


def _vi_summary(result) -> str:
    info = result.info
    t = result.training
    out = [
        f"vi ({info['estimator']}, K={info['particles']}): {t.iterations} iterations, "
        f"{t.evaluations} likelihood gradients, {t.seconds:.1f} s"
        + (f" (resumed at iteration {t.resumed_from})" if t.resumed_from else "")
    ]
    ev = info.get("evaluation")
    if ev:
        k = ev["k"]
        out.append(
            f"ELBO {ev['elbo']:.2f} (sd {ev['elbo_sd']:.2f}), L^{k} {ev[f'bound_{k}']:.2f} "
            f"(sd {ev[f'bound_{k}_sd']:.2f}), log marginal likelihood {ev['log_ml']:.2f} "
            f"(sd {ev['log_ml_sd']:.2f}; {ev['repeats']} x {ev['particles']} draws)"
        )
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    main()
