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


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    text = str(value)
    if any(c in text for c in "\t\n\r"):
        raise ValueError(f"a table value may not hold tabs or newlines: {text!r}")
    return text


def _checksum(cells: Sequence[str]) -> str:
    return f"{zlib.crc32(chr(9).join(cells).encode('utf-8')):08x}"


@dataclass
class Row:
    """One line of a results table: values as text, in column order."""

    cells: tuple[str, ...]

    def get(self, columns: Sequence[str], name: str) -> str:
        return self.cells[list(columns).index(name)]


class ResultStore:
    """An append-only TSV results table that survives being killed.

    Parameters
    ----------
    path
        The table.  ``None`` keeps results in memory only.
    columns
        Column names; the first ``n_key`` columns identify the task.
    header
        ``#`` lines (provenance) written at the top.  When resuming, the lines starting with
        ``# identity:`` must be the same, so a table is never continued by another run.
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
        if path is not None and os.path.exists(path):
            self._load()

    # reading -------------------------------------------------------------------------
    def _load(self) -> None:
        with open(self.path, "rb") as fh:
            data = fh.read()
        complete = data.rfind(b"\n") + 1
        text = data[:complete].decode("utf-8", "replace")
        identity = [ln for ln in text.splitlines() if ln.startswith("# identity: ")]
        if identity and self.identity and identity != self.identity:
            mine = dict(x.split(": ", 1)[1].split("=", 1) for x in self.identity if "=" in x)
            theirs = dict(x.split(": ", 1)[1].split("=", 1) for x in identity if "=" in x)
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
        if self._fh is None:
            new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
            self._fh = open(self.path, "a", encoding="utf-8", newline="")
            if new:
                self._fh.write(self._header_text())
        self._fh.write(self._line(row))
        self._fh.flush()
        os.fsync(self._fh.fileno())

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
        """Close, and rewrite the table sorted by key (atomically)."""
        self.close()
        if self.path is not None:
            self._rewrite(sort=True)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

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

    The shards must share their ``# identity:`` lines and columns.  A task found in two
    files must have the same values (columns in ``ignore``, such as timings, may differ).
    Returns the first file's header, the columns and the rows sorted by key.
    """
    if not paths:
        raise InputError("no results tables given")
    merged: dict[Key, dict[str, str]] = {}
    first_header = first_cols = first_ident = None
    for path in paths:
        header, cols, rows = read_table(path)
        ident = [ln for ln in header if ln.startswith("# identity: ")]
        if first_cols is None:
            first_header, first_cols, first_ident = header, cols, ident
        elif cols != first_cols:
            raise InputError(f"columns differ from those of {paths[0]}", path)
        elif ident != first_ident:
            raise InputError(
                f"written by a different run than {paths[0]} (its inputs or settings differ)", path
            )
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
    keys = sorted(
        merged, key=lambda k: sort_key(tuple(int(x) if x.lstrip("-").isdigit() else x for x in k))
    )
    return first_header, first_cols, [merged[k] for k in keys]


# -- executors -----------------------------------------------------------------------------

_CONTEXT: dict[str, Any] = {}


def _worker_init(setup: Callable, setup_args: tuple) -> None:
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
        initargs=(setup, setup_args),
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
    finally:
        store.close()
    store.finish()
    return n
