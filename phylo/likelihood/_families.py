"""Loading and caching the kernels: a copy per model family, keyed by a digest of the sources.

Families.  F81-type models (JC69, F81 and their +G, +I: closed-form products) and all
others bind different loop variants into the one traversal of ``_kernels.py``.  The file
is executed once more for each family, as the module ``<package>._kernels_f81`` or
``<package>._kernels_general`` with ``_FAMILY`` set first (:func:`family`), so that each
family's traversal compiles, and is cached, on its own: a session pays for compiling
only the family it uses.

Caching.  numba keys a cache entry by the function's own bytecode and invalidates a cache
file when the source file that defines the function changes, but not when something
else that went into the compiled code changes: a callee in another file, the LLVM
settings (:mod:`phylo.likelihood._llvm_options`), or the flags and names given here.
Every function a kernel calls is defined in ``_kernels.py``; the other files that decide
the compiled code are listed in :data:`SOURCES`, and :func:`cached_kernel` puts a
digest of all of them into the key of every cache entry, so that editing any of them
recompiles the kernels instead of loading stale code.  (The cache files are named after
the function and the family: the copies of the file share a source file, and would
otherwise read each other's entries.)
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
from numba import njit
from numba.core.caching import FunctionCache

from . import _llvm_options

_HERE = Path(__file__).resolve().parent
#: The files whose content decides the kernels' compiled code: the kernels (every function
#: they call is defined there), how they are compiled and named (this file), and the LLVM
#: settings in force.
SOURCES = ("_kernels.py", "_families.py", "_llvm_options.py")
KERNELS_FILE = _HERE / "_kernels.py"


def sources_digest() -> str:
    """SHA-256 of the files :data:`SOURCES` (names and contents)."""
    h = hashlib.sha256()
    for name in SOURCES:
        data = (_HERE / name).read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


#: The digest in every cache key of the kernels (see the module docstring).
DIGEST = sources_digest()

_llvm_options.compile_under_options(str(KERNELS_FILE))


class _KernelCache(FunctionCache):
    """numba's per-function disk cache, its entries keyed also by :data:`DIGEST`."""

    def _index_key(self, sig, codegen):
        return (*super()._index_key(sig, codegen), DIGEST)


def cached_kernel(f, family: str | None):
    """``njit(cache=True, nogil=True)`` for a kernel of ``family`` (None for the module
    loaded plainly): the family in the name of the cache file, :data:`DIGEST` in the keys
    of its entries."""
    if family is not None:
        f.__qualname__ = f"{f.__qualname__}_{family}"
    dispatcher = njit(nogil=True)(f)
    dispatcher._cache = _KernelCache(dispatcher.py_func)
    return dispatcher


def _one_by_rows(rows):
    """One evaluation through the batch entry point ``rows`` (``_traverse``): the
    arguments of one branch-length vector ``t`` and its gradient ``grad``; returns the
    log-likelihood."""

    def evaluate(
        tips,
        weights,
        inv,
        mv,
        topo,
        slot,
        pslot,
        ncols,
        cmap,
        t,
        Pm,
        buf,
        site_ll,
        grad,
        bounds,
        compute_P,
        want_grad,
    ):
        out = np.empty(1)
        rows(
            tips,
            weights,
            inv,
            mv,
            topo,
            slot,
            pslot,
            ncols,
            cmap,
            t.reshape(1, -1),
            0,
            1,
            Pm,
            buf,
            site_ll,
            grad.reshape(1, -1),
            out,
            bounds,
            compute_P,
            want_grad,
        )
        return out[0]

    return evaluate


_FAMILIES: dict = {}
_LOCK = threading.Lock()
_PACKAGE = __name__.rpartition(".")[0]


def family_name(mv) -> str:
    """``"f81"`` or ``"general"``: the family whose kernels serve the model vector ``mv``."""
    return "f81" if mv[mv.shape[0] - 2] > 0.5 else "general"


def family(mv):
    """The kernels serving the model vector ``mv`` (a module): the F81 family's
    (closed-form products) or the general one's.

    Its ``evaluate_rows`` is the batch entry point ``_traverse``, ``evaluate`` runs a
    batch of one (same arguments, one branch-length vector ``t`` and gradient ``grad``;
    returns the log-likelihood), and ``transition_matrices`` fills the matrices.
    """
    name = family_name(mv)
    mod = _FAMILIES.get(name)
    if mod is None:
        with _LOCK:
            mod = _FAMILIES.get(name)
            if mod is None:
                mod = _load(name)
                _FAMILIES[name] = mod
    return mod


def _load(name):
    full = f"{_PACKAGE}._kernels_{name}"
    spec = importlib.util.spec_from_file_location(full, KERNELS_FILE)
    mod = importlib.util.module_from_spec(spec)
    mod._FAMILY = name
    mod.__package__ = _PACKAGE
    sys.modules[full] = mod
    spec.loader.exec_module(mod)
    mod.evaluate = _one_by_rows(mod._traverse)
    mod.evaluate_rows = mod._traverse
    return mod
