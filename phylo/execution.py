"""Running many independent tasks: in process, on a local process pool, or on Dask.

A *task* is identified by a key (a tuple of ints and strings, e.g. ``(tree, method,
replicate)``).  Its random numbers come from :func:`task_rng`, a stream derived from the
user's seed and the key alone, so results never depend on how tasks were split between
processes, machines or shards.

Results go to a :class:`ResultStore`: a TSV file with a provenance header to which every
finished task is appended as one line ending in a checksum.  A run that is killed and started
again with the same command does only the tasks whose lines are missing; a half-written last
line fails its checksum and its task is done again.  When every task is done the file is
rewritten, sorted by key, in one atomic step.

``--shard i/n`` runs the tasks whose position in the sorted task list is ``i-1`` modulo ``n``
(shards are numbered from 1); :func:`merge_tables` joins the shards' files into the table a
single run would have written.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError
from .tables import format_value

Key = tuple


# -- random streams ------------------------------------------------------------------------


def key_words(key: Key) -> tuple[int, ...]:
    """A task key as 32-bit words, stable across machines and Python versions."""
    text = "\x1f".join(f"{type(k).__name__}:{k}" for k in key).encode("utf-8")
    digest = hashlib.sha256(text).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def task_seed_sequence(seed: int, key: Key) -> np.random.SeedSequence:
    """The seed sequence of task ``key`` under the user's ``seed``."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=key_words(key))


def task_rng(seed: int, key: Key) -> np.random.Generator:
    """The random generator of task ``key``: depends on the seed and the key only."""
    return np.random.Generator(np.random.PCG64(task_seed_sequence(seed, key)))


def fresh_seed() -> int:
    """A new random seed (to be recorded, so the run can be repeated)."""
    return int(np.random.SeedSequence().entropy % (2**63))


# -- shards --------------------------------------------------------------------------------


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``1 <= i <= n``."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise InputError(f"--shard must look like i/n (e.g. 3/10), got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        hint = (
            " (shards are numbered from 1; with SLURM array ids from 0 use "
            "$((SLURM_ARRAY_TASK_ID + 1))/n)"
            if i == 0
            else ""
        )
        raise InputError(f"--shard {text}: need 1 <= i <= n{hint}")
    return i, n


def select_shard(tasks: Sequence[Key], shard: tuple[int, int] | None) -> list[Key]:
    """The tasks of one shard: sorted by key, every n-th starting at position i-1."""
    ordered = sorted(tasks, key=sort_key)
    if shard is None:
        return ordered
    i, n = shard
    return ordered[i - 1 :: n]


def sort_key(key: Key) -> tuple:
    return tuple((0, k, "") if isinstance(k, (int, np.integer)) else (1, 0, str(k)) for k in key)


# -- result store --------------------------------------------------------------------------

# The cells of a results table are written as every table's are (phylo.tables).
_format = format_value


def _checksum(cells: Sequence[str]) -> str:
    return f"{zlib.crc32(chr(9).join(cells).encode('utf-8')):08x}"


@dataclass
class Row:
    """One line of a results table: values as text, in column order."""

    cells: tuple[str, ...]

    def get(self, columns: Sequence[str], name: str) -> str:
        return self.cells[list(columns).index(name)]


#: The identity entry that names a shard; shards of one run differ only in it.
SHARD = "shard"


def _identity_dict(lines: Sequence[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        body = line.split(": ", 1)[1] if line.startswith("# identity: ") else line
        k, _, v = body.partition("=")
        out[k] = v
    return out


class TableLock:
    """An exclusive lock on an output table, held while a run writes it.

    The lock is ``fcntl.flock`` on a hidden file ``.NAME.lock`` beside the table (the table
    itself is replaced by a rename when a run finishes, so it cannot carry the lock).  A
    second run on the same table is refused at once with a clear error; a run that dies
    releases its lock with its process.  The lock file is removed when the lock is released.
    """

    def __init__(self, path: str):
        folder, name = os.path.split(os.path.abspath(path))
        self.path = os.path.join(folder, f".{name}.lock")
        self.table = path
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise InputError(
                    f"cannot create the lock file {self.path}: {exc.strerror}", self.table
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise InputError(
                    "another run is writing this table now (it holds the lock "
                    f"{os.path.basename(self.path)}); wait for it, or give another output file",
                    self.table,
                ) from None
            # the holder before us may have removed the file after we opened it: lock the
            # file that is there now
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


class ResultStore:
    """An append-only TSV results table that survives being killed.

    Parameters
    ----------
    path
        The table.  ``None`` keeps results in memory only.
    columns
        Column names; the first ``n_key`` columns identify the task.
    header
        ``#`` lines (provenance) written at the top.
    identity
        ``name=value`` entries that define the run: inputs' digests, settings, seed and
        shard.  They are written as ``# identity:`` lines; a table is only ever continued
        by a run with the same identity.

    While the store is open it holds the table's :class:`TableLock`, so two runs never
    write one table; :meth:`finish` or :meth:`close` releases it.
    """

    CHECK = "check"

    def __init__(
        self,
        path: str | None,
        columns: Sequence[str],
        n_key: int,
        header: Sequence[str] = (),
        identity: Sequence[str] = (),
    ):
        self.path = path
        self.columns = tuple(columns)
        self.n_key = n_key
        self.header = list(header)
        self.identity = [f"# identity: {x}" for x in identity]
        self.rows: dict[Key, Row] = {}
        self.dropped = 0
        self._fh = None
        self._lock = None
        if path is not None:
            from .outputs import resolve

            resolve(path)  # a directory or a dangling link is refused
            self._lock = TableLock(path)
            self._lock.acquire()
            try:
                if os.path.exists(path):
                    self._load()
            except BaseException:
                self._lock.release()
                raise

    # reading -------------------------------------------------------------------------
    def _load(self) -> None:
        with open(self.path, "rb") as fh:
            data = fh.read()
        complete = data.rfind(b"\n") + 1
        text = data[:complete].decode("utf-8", "replace")
        identity = [ln for ln in text.splitlines() if ln.startswith("# identity: ")]
        if self.identity and identity != self.identity:
            if not identity and not text.strip():
                pass  # an empty file: start it
            else:
                mine, theirs = _identity_dict(self.identity), _identity_dict(identity)
                diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                raise InputError(
                    f"this results file was written by a different run "
                    f"({', '.join(diff) or 'settings'} differ); give another output "
                    f"file or remove it",
                    self.path,
                )
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        if lines and lines[0].split("\t") != list(self.columns) + [self.CHECK]:
            raise InputError(
                "this results file has other columns; give another output file", self.path
            )
        for ln in lines[1:]:
            row = self._parse(ln)
            if row is None:
                self.dropped += 1
                continue
            self.rows[self._key(row.cells)] = row
        self.dropped += int(complete < len(data))  # a half-written last line
        # Rewrite without bad lines so that appends continue a clean file.
        self._rewrite(sort=False)

    def _parse(self, line: str) -> Row | None:
        cells = line.split("\t")
        if len(cells) != len(self.columns) + 1:
            return None
        if _checksum(cells[:-1]) != cells[-1]:
            return None
        return Row(tuple(cells[:-1]))

    def _key(self, cells: Sequence[str]) -> Key:
        return tuple(cells[: self.n_key])

    # writing -------------------------------------------------------------------------
    def key_text(self, key: Key) -> Key:
        return tuple(_format(k) for k in key)

    def done(self, key: Key) -> bool:
        return self.key_text(key) in self.rows

    def _header_text(self) -> str:
        lines = self.header + self.identity
        return "".join(ln + "\n" for ln in lines) + "\t".join(self.columns + (self.CHECK,)) + "\n"

    def _line(self, row: Row) -> str:
        return "\t".join(row.cells + (_checksum(row.cells),)) + "\n"

    def append(self, values: dict[str, Any]) -> None:
        """Record a finished task (flushed to disk at once)."""
        cells = tuple(_format(values.get(c)) for c in self.columns)
        row = Row(cells)
        self.rows[self._key(cells)] = row
        if self.path is None:
            return
        try:
            if self._fh is None:
                new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
                self._fh = open(self.path, "a", encoding="utf-8", newline="")
                if new:
                    self._fh.write(self._header_text())
            self._fh.write(self._line(row))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            from .outputs import NO_ROOM, OutputError, describe_os_error

            if exc.errno not in NO_ROOM:
                raise
            raise OutputError(
                f"cannot append a result: {describe_os_error(exc)}.  The {len(self.rows) - 1} "
                "results written so far are kept (a line cut short is detected); make room "
                "and run the same command again to finish the table",
                self.path,
            ) from None

    def _rewrite(self, sort: bool) -> None:
        from .outputs import atomic_open

        rows = self.sorted_rows() if sort else list(self.rows.values())
        with atomic_open(self.path) as fh:
            fh.write(self._header_text())
            for row in rows:
                fh.write(self._line(row))

    def sorted_rows(self) -> list[Row]:
        return [
            self.rows[k]
            for k in sorted(
                self.rows,
                key=lambda k: sort_key(tuple(int(x) if x.lstrip("-").isdigit() else x for x in k)),
            )
        ]

    def finish(self) -> None:
        """Close, rewrite the table sorted by key (atomically) and release the lock."""
        try:
            self._close_file()
            if self.path is not None:
                self._rewrite(sort=True)
        finally:
            self._release()

    def close(self) -> None:
        """Stop writing (the table stays as it is, to be resumed) and release the lock."""
        self._close_file()
        self._release()

    def _close_file(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def records(self) -> list[dict[str, str]]:
        """The rows, sorted by key, as dicts of text."""
        return [dict(zip(self.columns, r.cells)) for r in self.sorted_rows()]


def read_table(path: str) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """Read a results table: ``(header lines, columns, rows)``; bad lines are an error."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a results table", path) from None
    except UnicodeDecodeError:
        raise InputError("not a results table (not UTF-8 text)", path) from None
    header = [ln for ln in text.splitlines() if ln.startswith("#")]
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln and not ln.startswith("#")]
    if not lines:
        raise InputError("not a results table (no column header)", path)
    columns = lines[0][1].split("\t")
    if columns[-1] != ResultStore.CHECK:
        raise InputError(
            "not a results table written by phylo (no check column)", path, lines[0][0]
        )
    rows = []
    for lineno, ln in lines[1:]:
        cells = ln.split("\t")
        if len(cells) != len(columns) or _checksum(cells[:-1]) != cells[-1]:
            raise InputError(
                "damaged line (wrong number of fields or checksum); rerun the "
                "shard with the same command to repair it",
                path,
                lineno,
            )
        rows.append(dict(zip(columns[:-1], cells[:-1])))
    return header, columns[:-1], rows


def write_table(
    path: str, header: Sequence[str], columns: Sequence[str], rows: Sequence[dict[str, str]]
) -> None:
    """Write a results table (``#`` header lines, columns, rows with their checksums)
    atomically; ``"-"`` is standard output."""
    from .outputs import atomic_open

    with atomic_open(path) as fh:
        for line in header:
            fh.write(line + "\n")
        fh.write("\t".join(list(columns) + [ResultStore.CHECK]) + "\n")
        for row in rows:
            cells = [_format(row.get(c)) for c in columns]
            fh.write("\t".join(cells + [_checksum(cells)]) + "\n")


def merge_tables(
    paths: Sequence[str], n_key: int, ignore: Sequence[str] = ()
) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """Join results tables of shards of one run.

    The shards must share their columns and their ``# identity:`` lines but for the shard
    itself, and be shards of the same number ``n``.  A task found in two files must have the
    same values (columns in ``ignore``, such as timings, may differ).  Returns the first
    file's header without its shard line, the columns and the rows sorted by key; the
    header gets a ``# note:`` when shards are missing.
    """
    if not paths:
        raise InputError("no results tables given")
    merged: dict[Key, dict[str, str]] = {}
    first_header = first_cols = first_ident = None
    shards: dict[str, str] = {}
    for path in paths:
        header, cols, rows = read_table(path)
        ident = [ln for ln in header if ln.startswith("# identity: ")]
        shard = _identity_dict(ident).get(SHARD)
        ident = [ln for ln in ident if not ln.startswith(f"# identity: {SHARD}=")]
        if first_cols is None:
            first_header, first_cols, first_ident = header, cols, ident
        elif cols != first_cols:
            raise InputError(f"columns differ from those of {paths[0]}", path)
        elif ident != first_ident:
            raise InputError(
                f"written by a different run than {paths[0]} (its inputs or settings differ)",
                path,
            )
        if shard is not None:
            if shard in shards and shards[shard] != path:
                raise InputError(f"shard {shard} is also in {shards[shard]}", path)
            shards[shard] = path
        for row in rows:
            key = tuple(row[c] for c in cols[:n_key])
            if key in merged:
                a, b = merged[key], row
                diff = [c for c in cols if c not in ignore and a[c] != b[c]]
                if diff:
                    raise InputError(
                        f"task {key} appears twice with different {', '.join(diff)}", path
                    )
                continue
            merged[key] = row
    header = [
        ln
        for ln in first_header
        if not ln.startswith(f"# identity: {SHARD}=") and not ln.startswith(f"# {SHARD}: ")
    ]
    if shards:
        counts = {s.split("/")[1] for s in shards}
        if len(counts) > 1:
            raise InputError(f"the tables are shards of different splits ({', '.join(shards)})")
        n = int(counts.pop())
        missing = sorted(set(range(1, n + 1)) - {int(s.split("/")[0]) for s in shards})
        if missing:
            header.append(
                f"# note: shards {', '.join(f'{i}/{n}' for i in missing)} are missing; "
                f"this table is incomplete"
            )
    keys = sorted(
        merged, key=lambda k: sort_key(tuple(int(x) if x.lstrip("-").isdigit() else x for x in k))
    )
    return header, first_cols, [merged[k] for k in keys]


# -- executors -----------------------------------------------------------------------------

_CONTEXT: dict[str, Any] = {}


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    """Exit this worker when the process that started it is gone (killed, even by SIGKILL,
    it cannot tell its workers): the worker is then re-parented and ``getppid`` changes."""
    import threading

    def watch():
        import time

        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="phylo-parent-watch", daemon=True).start()


def _worker_init(setup: Callable, setup_args: tuple, parent: int | None = None) -> None:
    if parent is not None:
        _watch_parent(parent)
    _CONTEXT["ctx"] = setup(*setup_args)


def _worker_run(fn: Callable, key: Key) -> tuple[Key, dict]:
    return key, fn(_CONTEXT["ctx"], key)


def _dask_run(
    fn: Callable, setup: Callable, setup_args: tuple, token: str, key: Key
) -> tuple[Key, dict]:
    # Prepared contexts are cached per worker process, keyed by the run's token.
    ctx = _CONTEXT.get(token)
    if ctx is None:
        ctx = setup(*setup_args)
        _CONTEXT.clear()
        _CONTEXT[token] = ctx
    return key, fn(ctx, key)


def run_tasks(
    keys: Iterable[Key],
    fn: Callable[[Any, Key], dict],
    setup: Callable,
    setup_args: tuple = (),
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    token: str = "",
) -> Iterator[tuple[Key, dict]]:
    """Run ``fn(setup(*setup_args), key)`` for every key; yield ``(key, result)`` as they
    finish (in any order).

    ``setup`` prepares what tasks share (e.g. likelihoods of the trees); it runs once per
    process (once per Dask worker and run ``token``).  ``fn``, ``setup`` and their
    arguments must be picklable (module-level functions) for ``jobs > 1`` and Dask.
    """
    keys = list(keys)
    if not keys:
        return
    if executor == "dask":
        yield from _run_dask(keys, fn, setup, setup_args, scheduler, scheduler_file, token)
        return
    if executor != "local":
        raise InputError(f"unknown executor {executor!r} (use local or dask)")
    if jobs <= 1:
        ctx = setup(*setup_args)
        for key in keys:
            yield key, fn(ctx, key)
        return
    import multiprocessing as mp

    # 'spawn' keeps workers clear of threads the parent may hold (numba's thread pool).
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=mp.get_context("spawn"),
        initializer=_worker_init,
        initargs=(setup, setup_args, os.getpid()),
    ) as pool:
        pending = set()
        it = iter(keys)
        # keep a bounded number of tasks in flight
        for key in it:
            pending.add(pool.submit(_worker_run, fn, key))
            if len(pending) >= 4 * jobs:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.add(pool.submit(_worker_run, fn, nxt))


def _run_dask(keys, fn, setup, setup_args, scheduler, scheduler_file, token):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError(
            "--executor dask needs the 'cluster' extra: pip install 'phylo[cluster]'"
        ) from None
    if not scheduler and not scheduler_file:
        raise InputError("--executor dask needs --scheduler ADDRESS or --scheduler-file FILE")
    try:
        client = (
            Client(scheduler, timeout="30s")
            if scheduler
            else Client(scheduler_file=scheduler_file, timeout="30s")
        )
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler: {exc}") from None
    try:
        shared = client.scatter({"args": setup_args}, broadcast=True)["args"]
        futures = [
            client.submit(
                _dask_run, fn, setup, shared, token, key, pure=False, key=f"phylo-{token[:16]}-{i}"
            )
            for i, key in enumerate(keys)
        ]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()


def run_into(
    store: ResultStore,
    keys: Iterable[Key],
    fn: Callable[[Any, Key], dict],
    setup: Callable,
    setup_args: tuple = (),
    progress=None,
    **executor,
) -> int:
    """Run the tasks of ``keys`` not yet in ``store``, appending each result as it finishes,
    then sort the table.  Returns the number of tasks run.  ``executor`` options are those
    of :func:`run_tasks`."""
    todo = [k for k in keys if not store.done(k)]
    if progress is not None:
        progress.total = len(todo)
    n = 0
    try:
        for _, result in run_tasks(todo, fn, setup, setup_args, **executor):
            store.append(result)
            n += 1
            if progress is not None:
                progress.update(1)
    except BaseException:
        store.close()  # the rows so far stay, for the next run to resume
        raise
    store.finish()
    return n


# -- comparisons: a batch of tasks whose results form one table ----------------------------


@dataclass
class Comparison:
    """Everything that defines one batch of tasks whose results form one table.

    Attributes
    ----------
    columns
        The table's columns; the first ``n_key`` identify a task.
    n_key
        Number of key columns.
    keys
        Every task of the run (a shard takes its part, see :func:`select_shard`).
    run_task, setup, setup_args
        ``run_task(setup(*setup_args), key) -> row``: module-level functions, picklable.
    identity
        ``name=value`` entries that define the run (inputs' digests, settings, seed): a table
        is only continued by a run with the same identity.
    provenance
        The record written as the table's ``#`` lines (:func:`phylo.provenance.record`).
    timing_columns
        Columns that may differ between two runs of the same task (seconds).
    """

    columns: tuple[str, ...]
    n_key: int
    keys: list[Key]
    run_task: Callable[[Any, Key], dict]
    setup: Callable
    setup_args: tuple
    identity: list[str]
    provenance: dict
    timing_columns: tuple[str, ...] = ("seconds",)

    def token(self) -> str:
        """A digest of the identity: names the run's prepared contexts on Dask workers."""
        return hashlib.sha256("|".join(self.identity).encode()).hexdigest()


@dataclass
class ComparisonResult:
    """What :func:`run_comparison` did: every row of the table (sorted by key, as text),
    how many tasks ran now, and how many damaged lines of an earlier run were dropped."""

    rows: list[dict[str, str]]
    n_run: int
    dropped: int


def seed_of_table(path: str | None) -> int | None:
    """The seed recorded in the identity of an existing results table, or ``None``."""
    if path is None or not os.path.isfile(path):
        return None
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


def choose_seed(seed: int | None, output: str | None = None) -> int:
    """The seed of a run: the given one; else, when ``output`` is a table being resumed, the
    seed it was started with (so the same command resumes it); else a fresh one."""
    if seed is not None:
        return int(seed)
    found = seed_of_table(output)
    return fresh_seed() if found is None else found


def run_comparison(
    comparison: Comparison,
    output: str | None = None,
    shard: tuple[int, int] | str | None = None,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    progress=None,
) -> ComparisonResult:
    """Run the tasks of ``comparison`` that ``output`` does not hold yet, appending each row
    as it finishes; resumable, locked against a second writer, the same table however the
    work is spread.

    Parameters
    ----------
    comparison
        The run (see :class:`Comparison`).
    output
        The results table (TSV with a checksum per row), or ``None`` to keep rows in memory.
        An existing table of the same run is resumed (damaged lines are dropped and their
        tasks run again); one of another run is an :class:`~phylo.errors.InputError`.
    shard
        ``(i, n)`` or ``"i/n"``: run only shard ``i`` of ``n`` (join the shards' tables with
        :func:`merge_tables`).  The shard is part of the run's identity.
    jobs, executor, scheduler, scheduler_file
        Where tasks run (see :func:`run_tasks`).
    progress
        A :class:`phylo.progress.Progress` (its total is set here), or ``None``.
    """
    if isinstance(shard, str) or shard is None:
        shard = parse_shard(shard)
    from .outputs import refuse_inputs

    refuse_inputs(output, [item["path"] for item in comparison.provenance.get("inputs", [])])
    identity = list(comparison.identity)
    if shard is not None:
        identity.append(f"{SHARD}={shard[0]}/{shard[1]}")
    from .provenance import tsv_header

    store = ResultStore(
        output,
        comparison.columns,
        comparison.n_key,
        header=tsv_header(comparison.provenance).splitlines(),
        identity=identity,
    )
    keys = select_shard(comparison.keys, shard)
    n = run_into(
        store,
        keys,
        comparison.run_task,
        comparison.setup,
        comparison.setup_args,
        progress=progress,
        jobs=jobs,
        executor=executor,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        token=comparison.token(),
    )
    return ComparisonResult(store.records(), n, store.dropped)
