"""Options and error handling shared by the ``sbn`` and ``marglik`` commands.

The two tools spell shared options alike: ``-m`` is the method (or methods), ``-r`` the
reference, ``-o`` the output, ``-b`` the burn-in, ``-t`` the thinning, ``-j`` the worker
processes, ``-q`` quiet; ``--seed`` seeds everything random.
"""

from __future__ import annotations

import functools
import os
import sys

import click

from phylo.errors import PhyloError


def _fail(message: str, status: int = 2):
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


class Group(click.Group):
    """A click group that turns the library's errors, and the machine's (no memory, a full
    disk), into one line on standard error and exit status 2; Ctrl-C exits with 130, as
    shells expect."""

    def invoke(self, ctx):
        from phylo.outputs import NO_ROOM, describe_os_error
        from phylo.warmup import announce_compiles

        # one line on standard error when this command compiles kernels (a first run)
        announce_compiles(sys.stderr)
        try:
            return super().invoke(ctx)
        except PhyloError as exc:
            _fail(str(exc))
        except BrokenPipeError:  # e.g. `sbn sample ... | head`
            sys.stderr.close()
            sys.exit(0)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except MemoryError:
            _fail("out of memory; see the command's --help for ways to need less (thinning, "
                  "fewer trees, fewer jobs)")  # fmt: skip
        except OSError as exc:
            if exc.errno not in NO_ROOM:
                raise
            where = f"{exc.filename}: " if exc.filename else "standard output: "
            _fail(f"{where}cannot write: {describe_os_error(exc)}")


def burnin_option(f):
    return click.option(
        "--burnin",
        "-b",
        default=None,
        metavar="B",
        help="Trees to discard from the start of each run: a fraction below 1 (0.25) or a "
        "count (1000).  Default: 0.25 for raw samples, 0 for weighted .trprobs.",
    )(f)


def thin_option(f):
    return click.option(
        "--thin",
        "-t",
        default=1,
        show_default=True,
        type=click.IntRange(1),
        metavar="T",
        help="Keep every T-th tree after burn-in.",
    )(f)


def rooted_option(f):
    return click.option(
        "--rooted/--unrooted",
        default=False,
        show_default=True,
        help="Treat trees as rooted (e.g. BEAST time trees); by default "
        "topologies are unrooted wherever the Newick puts the root.",
    )(f)


def extant_option(f):
    return click.option(
        "--extant-only",
        is_flag=True,
        help="Fossilized birth-death trees: keep only the extant taxa (tips at the height "
        "of the youngest), dropping sampled ancestors and fossil tips, for the topology of "
        "the extant taxa.  By default a sampled ancestor is a leaf on a branch of length 0.",
    )(f)


def seed_option(f):
    return click.option(
        "--seed",
        type=int,
        default=None,
        help="Seed of the random number generator (default: fresh entropy, "
        "printed in the output's provenance).",
    )(f)


def output_option(help_text: str = "Output file ('-' is standard output).", default="-"):
    def deco(f):
        return click.option(
            "--output", "-o", default=default, show_default=default is not None, help=help_text
        )(f)

    return deco


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress line.")(f)


def run_options(f):
    """--jobs, --executor, --scheduler, --scheduler-file, --shard and --quiet: how the tasks
    of a comparison run.  The command receives them as one dict ``run`` (the keyword
    arguments of :func:`phylo.execution.run_comparison`) and ``quiet``."""
    options = [
        click.option(
            "--jobs",
            "-j",
            default=1,
            show_default=True,
            type=click.IntRange(1),
            help="Local worker processes.",
        ),
        click.option(
            "--executor",
            type=click.Choice(["local", "dask"]),
            default="local",
            show_default=True,
            help="Run tasks locally or on a Dask cluster.",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="ADDRESS",
            help="Dask scheduler address (with --executor dask).",
        ),
        click.option(
            "--scheduler-file",
            default=None,
            metavar="FILE",
            help="Dask scheduler file (with --executor dask).",
        ),
        click.option(
            "--shard",
            default=None,
            metavar="I/N",
            help="Run only shard I of N (numbered from 1), e.g. for array jobs; "
            "join the shards' tables with the merge command.",
        ),
        quiet_option,
    ]

    @functools.wraps(f)
    def wrapper(*args, jobs, executor, scheduler, scheduler_file, shard, **kwargs):
        from phylo.execution import parse_shard

        kwargs["run"] = {
            "jobs": jobs,
            "executor": executor,
            "scheduler": scheduler,
            "scheduler_file": scheduler_file,
            "shard": parse_shard(shard),
        }
        return f(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def expand_patterns(values):
    """Paths, with quoted shell patterns expanded (sorted); a pattern must match.  A name
    that exists as a file is taken literally, even with ``[ ] * ?`` in it."""
    import glob

    from phylo.errors import InputError

    out = []
    for v in values:
        if any(c in v for c in "*?[") and not os.path.exists(v):
            hits = sorted(glob.glob(v))
            if not hits:
                raise InputError(f"no file matches {v!r}")
            out.extend(hits)
        else:
            out.append(v)
    return out


def expand_callback(ctx, param, value):
    """A click callback: the argument's quoted shell patterns expanded
    (:func:`expand_patterns`), so that ``-r 'golden/rep_*/DS1.trprobs'`` works in every
    command, as on a cluster where the pattern is passed through a job script."""
    return tuple(expand_patterns(value)) if value else value
