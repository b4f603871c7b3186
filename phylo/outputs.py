"""Safe output files: write to a temporary file in the same folder and rename.

The rules every output follows:

- **Atomic.** A run that is killed leaves either the old file or the new one, never half of
  one.  The temporary file is ``.NAME.HOST.PID.XXXXXXXX.tmp`` beside the output; one left
  by a killed run is removed by the next write of the same output on that host once its
  process is gone.  (A special file such as ``/dev/null`` or a named pipe is written to
  directly: it cannot be replaced, and must not be.)
- **Permissions** as the shell's ``>`` gives them: a new file gets ``0666 & ~umask``, a
  replaced file keeps its own.
- **Symbolic links are followed**, as ``>`` and appends do: the file the link points to is
  replaced and the link stays.  A link that points nowhere is refused, so that nobody can
  choose, by leaving a dangling link, where a run writes.
- **Inputs are never overwritten**: an output that is one of the command's inputs is
  refused before anything is written.
- **A full disk** (or a file-size limit) is an :class:`OutputError` saying so; the old file,
  if any, is unchanged.

``"-"`` means standard output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import IO

from .errors import InputError, PhyloError

#: Errors of the file system that mean "no room", not a bug.
NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class OutputError(PhyloError):
    """An output could not be written (disk full, file too large, permission denied)."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def describe_os_error(exc: OSError) -> str:
    """A short reason for an error of the file system."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device (disk full or quota reached)"
    if exc.errno == errno.EFBIG:
        return "the file grew larger than allowed (file-size limit, e.g. ulimit -f)"
    return exc.strerror or str(exc)


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for other threads too)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: str) -> int:
    """An existing file keeps its permissions; a new one gets ``0666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def resolve(path: str) -> str:
    """The file an output named ``path`` is written to: ``path`` itself, or the target of
    the symbolic link ``path``; an :class:`InputError` for a link that points nowhere and for
    a directory."""
    if os.path.islink(path):
        target = os.path.realpath(path)
        if not os.path.exists(target):
            raise InputError(
                f"is a symbolic link to {target}, which does not exist; refusing to create a "
                "file there (remove the link, or give another output)",
                path,
            )
        path = target
    if os.path.isdir(path):
        raise InputError("is a directory, expected a file name", path)
    return path


def refuse_inputs(path: str | None, inputs: Iterable[str]) -> None:
    """An :class:`InputError` when the output ``path`` is one of the ``inputs`` (the same
    file, whatever the spelling or links)."""
    if path is None or path == "-" or not os.path.exists(path):
        return
    for inp in inputs:
        if inp == "-" or not inp or not os.path.exists(str(inp)):
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(path, str(inp)):
                raise InputError(
                    f"the output is the input {inp}; refusing to overwrite it (give another "
                    "output file)",
                    path,
                )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(folder: str, name: str, host: str) -> None:
    """Remove temporary files of ``name`` left by killed runs on this host."""
    prefix = f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        middle = entry[len(prefix) : -len(".tmp")].split(".")
        full = os.path.join(folder, entry)
        stale = False
        if len(middle) >= 3 and middle[-3] == host and middle[-2].isdigit():
            stale = not _alive(int(middle[-2]))
        elif len(middle) == 1:  # the older naming, without host and process: a day old
            with contextlib.suppress(OSError):
                stale = time.time() - os.path.getmtime(full) > 86400
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(full)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open ``path`` for writing so that it appears only when complete (see the module
    docstring for the rules).

    ``path == "-"`` yields standard output (text) or its buffer (binary).
    """
    if path == "-":
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        yield stream
        stream.flush()
        return
    target = resolve(path)
    if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        yield from _write_special(target, mode, encoding)
        return
    folder = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target)
    host = socket.gethostname().replace(".", "_")
    _clean_stale(folder, name, host)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.{host}.{os.getpid()}.", suffix=".tmp",
                                   dir=folder)  # fmt: skip
    except OSError as exc:
        raise OutputError(f"cannot write: {describe_os_error(exc)}", path) from None
    try:
        os.chmod(tmp, _mode_for(target))
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            raise OutputError(
                f"cannot write: {describe_os_error(exc)}; nothing was written"
                + (" (the file is as it was)" if os.path.exists(target) else ""),
                path,
            ) from None
        raise


def _write_special(target: str, mode: str, encoding: str | None):
    """Write straight into a device or pipe (``/dev/null``, ``/dev/stdout``, a FIFO)."""
    kwargs = {} if "b" in mode else {"encoding": encoding, "newline": ""}
    try:
        with open(target, mode, **kwargs) as fh:
            yield fh
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        raise OutputError(f"cannot write: {describe_os_error(exc)}", target) from None


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
