"""Compiling the numba kernels before a command needs them: in parallel on a first run.

numba compiles a kernel the first time a process calls it, on one core, and keeps the machine
code in its cache (``__pycache__`` next to the sources, or ``$NUMBA_CACHE_DIR``); later
processes load it in milliseconds.  A new user's first command would wait for the kernels it
uses to compile one after the other.  They fall into groups that share no compiled code
(reading tree files; fitting SBNs; the likelihood of one model family), so a command names the
groups it needs (:func:`ensure`) and on a first run they compile side by side: the largest in
the command's own process, the others in child processes (``python -m phylo.warmup``, at most
one per usable CPU), which fill the cache; the command then loads everything from it.  On two
cores the first ``sbn fit`` or ``marglik loglik`` takes about the time of its largest group
instead of the sum (``benchmarks/cold_start.py``).

A group is an *exercise*: the library run on tiny made-up inputs through the same functions a
command calls, so that the kernels compile for the same argument types (a different type would
be another compilation).  Whether a group is cached is found by running its exercise with
compiling forbidden (:func:`cached`; loading from the cache allowed), which is exact and costs
about what loading the kernels costs the command anyway (tens of milliseconds).

What the user sees: while :func:`ensure` compiles, one line on standard error, ``compiling the
numba kernels (first run only; later runs load them from the cache) ... done in 6.1 s``.  A
kernel no group covers still compiles when first called; :func:`announce_compiles` (installed
by the command-line tools) prints the same notice then, once.  Like the progress line
(:mod:`phylo.progress`), the notice is shown on a terminal only, and not with ``--quiet``: a
batch log or a pipeline reading standard error sees nothing of it.

``python -m phylo.warmup`` compiles every group (for instance once after installing, or on each
machine type of a cluster, since the cache is per CPU); ``--list`` lists them.  Setting
``PHYLO_COMPILE_JOBS=1`` compiles in the command's own process only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NOTICE = "compiling the numba kernels (first run only; later runs load them from the cache)"
#: Seconds a child process spends before it compiles (starting Python, importing numba).
CHILD_START = 1.0


@dataclass(frozen=True)
class Group:
    """Kernels that compile together: ``exercise()`` calls them as the library does;
    ``seconds`` is about how long they take to compile on one core (to share out work)."""

    name: str
    about: str
    seconds: float
    exercise: Callable[[], None]


GROUPS: dict[str, Group] = {}


def _group(name: str, about: str, seconds: float):
    def register(f):
        GROUPS[name] = Group(name, about, seconds, f)
        return f

    return register


# -- the exercises ---------------------------------------------------------------------------

_NAMES = ["t1", "t2", "t3", "t4", "t5", "t6"]
_NEWICK = [
    "(t1:0.1,(t2:0.2,t3:0.1):0.05,((t4:0.1,t5:0.3):0.1,t6:0.2):0.1);",
    "(t1:0.1,(t2:0.2,t4:0.1):0.05,((t3:0.1,t5:0.3):0.1,t6:0.2):0.1);",
    "((t1:0.1,t6:0.2):0.05,(t2:0.2,t3:0.1):0.05,(t4:0.1,t5:0.3):0.1);",
]


def _mrbayes_run(trees: Sequence[str]) -> str:
    """A MrBayes ``.t`` file: a translate block and numbered taxa."""
    numbered = [_number(t) for t in trees]
    rows = ",\n".join(f"      {i} {name}" for i, name in enumerate(_NAMES, 1))
    body = "\n".join(f"   tree gen.{1000 * i} = [&U] {t}" for i, t in enumerate(numbered))
    return f"#NEXUS\nbegin trees;\n   translate\n{rows};\n{body}\nend;\n"


def _number(newick: str) -> str:
    for i, name in sorted(enumerate(_NAMES, 1), key=lambda x: -len(x[1])):
        newick = newick.replace(f"{name}:", f"{i}:")
    return newick


def _parents(n: int, seed: int, count: int) -> np.ndarray:
    """``count`` unrooted binary trees of ``n`` taxa as parent arrays (leaves ``0..n-1``,
    every child before its parent, the root last with three children)."""
    rng = np.random.default_rng(seed)
    out = np.full((count, 2 * n - 2), -1, np.int32)
    for row in out:
        nodes = list(range(n))
        nxt = n
        while len(nodes) > 3:
            i, j = sorted(rng.choice(len(nodes), size=2, replace=False))
            b = nodes.pop(j)
            a = nodes.pop(i)
            row[a] = row[b] = nxt
            nodes.append(nxt)
            nxt += 1
        row[nodes] = nxt
    return out


def _example_runs(tmp: str) -> list[str]:
    runs = []
    for i in range(2):
        path = Path(tmp, f"run{i}.t")
        path.write_text(_mrbayes_run(_NEWICK[i:] + _NEWICK[:i]))
        runs.append(str(path))
    return runs


@_group("trees", "reading tree files (topologies), summarising tree samples", 8.0)
def _trees() -> None:
    from .trees import read_trees
    from .trees.diagnostics import pooling_warning
    from .trees.summary import summarise

    with tempfile.TemporaryDirectory() as tmp:
        sample = read_trees(
            _example_runs(tmp), burnin=None, thin=1, rooted=False, progress=lambda n: None
        )
        pooling_warning(sample)
        summarise(sample, top=10)
    # the hash tables of topologies and splits grow only on samples larger than these
    from .trees import _kernels_index as KI

    KI.rehash(np.zeros(4, np.uint64), np.full(4, -1, np.int64), np.zeros(8, np.uint64),
              np.full(8, -1, np.int64))  # fmt: skip


@_group("trees-lengths", "branch lengths of tree files, files read in many chunks", 4.0)
def _trees_lengths() -> None:
    from .trees import read_trees

    with tempfile.TemporaryDirectory() as tmp:
        runs = _example_runs(tmp)
        nwk = Path(tmp, "trees.nwk")
        nwk.write_text("\n".join(_NEWICK) + "\n")
        taxa = read_trees(str(nwk), burnin=0, lengths=True).taxa
        read_trees(str(nwk), burnin=0, lengths=True, taxa=taxa)
        # in small chunks: topologies parsed while scanning (every chunk after the first),
        # lengths read again from recorded positions
        chunked = read_trees(runs, burnin=None, lengths="stream", chunk_size=512)
        for _ in chunked.iter_lengths():
            pass


@_group("sbn-fit", "fitting subsplit Bayesian networks (SBN-SA, SBN-EM)", 4.0)
def _sbn_fit() -> None:
    from .sbn import fit
    from .trees import Taxa, TreeSample
    from .trees.sample import RunInfo

    parents = _parents(len(_NAMES), 1, 6)
    counts = np.arange(1.0, 7.0)[:, None]
    run = RunInfo("<warm-up>", 21, 0, 1, 21, False)
    sample = TreeSample(Taxa(_NAMES), False, parents, counts, [run], [np.arange(6)])
    fit(sample, "sa")
    fit(sample, "em-alpha", max_iter=2, min_iter=1, progress=lambda k, obj: None)


def _likelihood(model) -> None:
    from .likelihood import Alignment, TreeLikelihood
    from .trees import Tree

    rng = np.random.default_rng(1)
    n = len(_NAMES)
    tree = Tree(_NAMES, _parents(n, 2, 1)[0], np.full(2 * n - 2, 0.1))
    codes = (1 << rng.integers(0, 4, size=(n, 30))).astype(np.uint8)
    codes[0, :3] = 15  # missing data
    aln = Alignment(tuple(_NAMES), codes)
    t = tree.branch_lengths[:-1]
    for repeats in (True, False):
        lik = TreeLikelihood(aln, tree, model, site_repeats=repeats)
        lik.log_likelihood(t)
        lik.gradient(t)
        lik.log_likelihood_batch(np.tile(t, (2, 1)))
        lik.gradient_batch(np.tile(t, (2, 1)))


@_group("likelihood-f81", "likelihoods under JC69, F81 and their +G, +I", 8.0)
def _likelihood_f81() -> None:
    from .likelihood import JC69

    _likelihood(JC69())


@_group("likelihood-general", "likelihoods under K80, HKY, GTR and their +G, +I", 9.0)
def _likelihood_general() -> None:
    from .likelihood import GTR

    _likelihood(GTR([1.2, 3.0, 0.8, 1.1, 3.5, 1.0], [0.3, 0.2, 0.2, 0.3], alpha=0.5, categories=4))


def likelihood_group(model) -> str:
    """The group of the likelihood kernels ``model`` (a :class:`~phylo.likelihood.Model`)
    runs on: its model family's (:mod:`phylo.likelihood._families`)."""
    from dataclasses import replace

    from .likelihood._families import family_name
    from .likelihood.tree_likelihood import model_vector

    if isinstance(model.frequencies, str):  # "empirical": the family does not depend on them
        model = replace(model, frequencies=np.full(4, 0.25))
    return f"likelihood-{family_name(model_vector(model))}"


# -- cached or not ---------------------------------------------------------------------------


class _NotCached(Exception):
    pass


_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _cache_only():
    """Within: a kernel missing from numba's cache raises :class:`_NotCached` where numba
    would compile it (loading cached kernels works as usual)."""
    from numba.core import caching

    with _PATCH_LOCK:
        saved = {cls: cls.__dict__["load_overload"] for cls in (caching.Cache, caching.NullCache)}

        def refusing(load):
            def load_overload(self, sig, target_context):
                cres = load(self, sig, target_context)
                if cres is None:
                    raise _NotCached
                return cres

            return load_overload

        for cls, load in saved.items():
            cls.load_overload = refusing(load)
        try:
            yield
        finally:
            for cls, load in saved.items():
                cls.load_overload = load


def cached(name: str) -> bool:
    """Whether the kernels of group ``name`` are all compiled in this process or in numba's
    cache (they are then loaded into this process)."""
    with _cache_only():
        try:
            GROUPS[name].exercise()
        except _NotCached:
            return False
    return True


# -- compiling -------------------------------------------------------------------------------


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a batch job's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan(names: Sequence[str], jobs: int) -> list[list[str]]:
    """Share the groups ``names`` out between ``jobs`` processes, this one first (it starts
    at once, the others after :data:`CHILD_START`): largest group first, each to the process
    that would finish it soonest.  Empty processes are left out."""
    loads = [0.0] + [CHILD_START] * (max(1, jobs) - 1)
    bins: list[list[str]] = [[] for _ in loads]
    for name in sorted(names, key=lambda n: (-GROUPS[n].seconds, n)):
        i = min(range(len(loads)), key=lambda j: loads[j] + GROUPS[name].seconds)
        loads[i] += GROUPS[name].seconds
        bins[i].append(name)
    return [bins[0]] + [b for b in bins[1:] if b]


def _child_env() -> dict:
    """The environment of a child process: this process's, with this copy of ``phylo``
    first on the path (whatever way it was found)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def compile_groups(names: Sequence[str], jobs: int | None = None) -> None:
    """Compile the groups ``names`` into numba's cache, in up to ``jobs`` processes (default:
    ``$PHYLO_COMPILE_JOBS``, else the usable CPUs): this one and child processes.  A group
    that fails to compile is left to compile when the command calls it."""
    if jobs is None:
        jobs = int(os.environ.get("PHYLO_COMPILE_JOBS", "0") or 0) or usable_cpus()
    here, *others = plan(list(names), min(jobs, len(names)))
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "phylo.warmup", "--parent", str(os.getpid()), *group],
            # -m puts the working directory first on the path: run where this copy of
            # phylo is found, not where the user stands (a source tree has another phylo,
            # whose kernels go to another cache)
            cwd=str(Path(__file__).resolve().parents[1]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_child_env(),
        )
        for group in others
    ]
    try:
        for name in here:
            _run(name)
        for child in children:
            child.wait()
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait()


def _run(name: str) -> None:
    try:
        GROUPS[name].exercise()
    except Exception:  # noqa: BLE001 - the command then compiles what it calls
        pass


def ensure(
    names: Sequence[str], quiet: bool = False, stream=None, jobs: int | None = None
) -> float | None:
    """Before a command that uses the kernel groups ``names``: compile the missing ones side
    by side (:func:`compile_groups`, in up to ``jobs`` processes), under one line on
    ``stream`` (standard error) unless ``quiet``.

    When at most one group is missing, or one process is all there is, nothing is gained:
    the command compiles what it calls as it goes (a group compiles a little more than one
    command needs), under the notice of :func:`announce_compiles`, which a quiet command
    silences here.  Returns the seconds spent compiling here, else ``None``.
    """
    if quiet:
        _announcer.stream = None
    names = list(dict.fromkeys(names))
    if jobs is None:
        jobs = int(os.environ.get("PHYLO_COMPILE_JOBS", "0") or 0) or usable_cpus()
    if len(names) < 2 or jobs < 2:
        return None
    missing = [n for n in names if not cached(n)]
    if len(missing) < 2:
        return None
    stream = sys.stderr if stream is None else stream
    show = not quiet and _isatty(stream)
    start = time.monotonic()
    if show:
        stream.write(f"{NOTICE} ...")
        stream.flush()
    with _announcer.paused():
        compile_groups(missing, jobs)
    seconds = time.monotonic() - start
    if show:
        stream.write(f" done in {seconds:.1f} s\n")
        stream.flush()
    return seconds


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# -- the notice for other compilations -------------------------------------------------------


class _Announcer:
    """Prints :data:`NOTICE` once when a ``phylo`` kernel starts compiling."""

    def __init__(self):
        self.stream = None
        self.said = False
        self.pause = 0
        self.registered = False

    def notify(self, ev):
        from numba.core.event import EventStatus

        if ev.status != EventStatus.START or self.said or self.pause or self.stream is None:
            return
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        if getattr(func, "__module__", "").split(".")[0] != "phylo":
            return
        self.said = True
        try:
            self.stream.write(f"{NOTICE} ...\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream: nothing to tell
            pass

    @contextlib.contextmanager
    def paused(self):
        self.pause += 1
        try:
            yield
        finally:
            self.pause -= 1


_announcer = _Announcer()


def announce_compiles(stream) -> None:
    """From now on, print :data:`NOTICE` on ``stream`` (once) when a ``phylo`` kernel starts
    compiling in this process, if ``stream`` is a terminal; ``None`` stops it."""
    from numba.core import event

    if not _announcer.registered:

        class Listener(event.Listener):
            def on_start(self, ev):
                _announcer.notify(ev)

            def on_end(self, ev):
                pass

        event.register("numba:compile", Listener())
        _announcer.registered = True
    _announcer.stream = stream if stream is not None and _isatty(stream) else None
    _announcer.said = False


# -- python -m phylo.warmup ------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    """Exit when the process ``parent`` is gone (this process is then re-parented)."""

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="phylo-parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m phylo.warmup",
        description="Compile phylo's numba kernels into numba's cache, groups side by side.",
    )
    ap.add_argument("groups", nargs="*", metavar="GROUP", help="Groups (default: all).")
    ap.add_argument("--list", action="store_true", help="List the groups and exit.")
    ap.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.list:
        for g in GROUPS.values():
            print(f"{g.name:<20}{g.about}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        ap.error(f"unknown group(s): {', '.join(unknown)}; see --list")
    if args.parent is not None:  # a child of compile_groups: compile here, nothing more
        _watch_parent(args.parent)
        for name in args.groups:
            _run(name)
        return 0
    names = [n for n in args.groups or GROUPS if not cached(n)]
    if names:
        start = time.monotonic()
        print(f"{NOTICE}: {', '.join(names)} ...", end="", file=sys.stderr, flush=True)
        compile_groups(names)
        print(f" done in {time.monotonic() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
