"""What every output file records: the command, the version, digests of inputs, the seed.

Tables (TSV) carry provenance as ``#`` header lines; models (JSON) carry it as a
``"provenance"`` object.  Both are meant to be read by a person.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import sys
from typing import Any, Iterable

from . import __version__


def file_digest(path: str, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes (``"-"`` or a missing file gives ``""``)."""
    if path == "-" or not os.path.isfile(path):
        return ""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def record(inputs: Iterable[str] = (), seed: int | None = None,
           parameters: dict[str, Any] | None = None, command: str | None = None) -> dict:
    """A provenance record for an output file.

    Parameters
    ----------
    inputs
        Paths of the input files; each is listed with its sha256.
    seed
        The user's seed, if randomness entered.
    parameters
        Settings that determine the result (method, burn-in, ...).
    command
        The command line; defaults to ``sys.argv`` joined.
    """
    if command is None:
        command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    return {
        "software": "phylo",
        "version": __version__,
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "python": platform.python_version(),
        "inputs": [{"path": p, "sha256": file_digest(p)} for p in inputs],
        "seed": seed,
        "parameters": dict(parameters or {}),
    }


def tsv_header(prov: dict) -> str:
    """Render a provenance record as ``#`` comment lines for the top of a TSV file."""
    lines = [f"# {prov['software']} {prov['version']}: {prov['command']}",
             f"# date: {prov['date']}"]
    for item in prov.get("inputs", []):
        lines.append(f"# input: {item['path']} sha256:{item['sha256']}")
    if prov.get("seed") is not None:
        lines.append(f"# seed: {prov['seed']}")
    for k, v in prov.get("parameters", {}).items():
        lines.append(f"# {k}: {v}")
    return "\n".join(lines) + "\n"
