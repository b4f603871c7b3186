"""What every output file records: the command, the version, digests of inputs, the seed.

Tables (TSV) carry provenance as ``#`` header lines; models (JSON) carry it as a
``"provenance"`` object.  Both are meant to be read by a person.  The versions of the
numerical libraries and the CPU's vector width are recorded because floating-point sums
depend on them: the compiled kernels add in an order that follows the vector width.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

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


LIBRARIES = ("numpy", "scipy", "numba", "llvmlite")


@functools.lru_cache(maxsize=1)
def libraries() -> dict[str, str]:
    """Versions of the numerical libraries results depend on."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "absent"
    return out


@functools.lru_cache(maxsize=1)
def cpu() -> dict[str, Any]:
    """The machine and the widest vectors the compiled kernels may use on it."""
    info: dict[str, Any] = {"machine": platform.machine()}
    try:
        import llvmlite.binding as llvm

        features = {
            f[1:] for f in llvm.get_host_cpu_features().flatten().split(",") if f.startswith("+")
        }
        info["cpu"] = llvm.get_host_cpu_name()
    except Exception:  # pragma: no cover - llvmlite is a dependency
        features = set()
    if "avx512f" in features:
        width, isa = 512, "avx512f"
    elif "avx2" in features or "avx" in features:
        width, isa = 256, "avx2" if "avx2" in features else "avx"
    elif features & {"sse2", "neon", "asimd"}:
        width, isa = 128, sorted(features & {"sse2", "neon", "asimd"})[0]
    else:
        width, isa = None, ""
    info["vector_bits"] = width
    info["vector_isa"] = isa
    return info


def record(
    inputs: Iterable[str] = (),
    seed: int | None = None,
    parameters: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict:
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
        "libraries": libraries(),
        "cpu": cpu(),
        "inputs": [{"path": p, "sha256": file_digest(p)} for p in inputs],
        "seed": seed,
        "parameters": dict(parameters or {}),
    }


def tsv_header(prov: dict) -> str:
    """Render a provenance record as ``#`` comment lines for the top of a TSV file."""
    lines = [
        f"# {prov['software']} {prov['version']}: {prov['command']}",
        f"# date: {prov['date']}",
    ]
    libs = prov.get("libraries")
    if libs:
        lines.append(
            "# libraries: python "
            + str(prov.get("python", ""))
            + ", "
            + ", ".join(f"{k} {v}" for k, v in libs.items())
        )
    machine = prov.get("cpu")
    if machine:
        bits = machine.get("vector_bits")
        vec = f"{bits}-bit vectors ({machine.get('vector_isa')})" if bits else "vectors unknown"
        lines.append(f"# cpu: {machine.get('machine', '')} {machine.get('cpu', '')}, {vec}")
    for item in prov.get("inputs", []):
        lines.append(f"# input: {item['path']} sha256:{item['sha256']}")
    if prov.get("seed") is not None:
        lines.append(f"# seed: {prov['seed']}")
    for k, v in prov.get("parameters", {}).items():
        lines.append(f"# {k}: {v}")
    return "\n".join(lines) + "\n"
