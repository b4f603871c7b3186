"""The LLVM settings the likelihood kernels compile under, in force only while they compile.

LLVM's options are process-wide (``llvmlite.binding.set_option``), so they are set for
exactly the compilations of functions defined in the kernels' source files (registered
with :func:`compile_under_options`) and put back to LLVM's defaults for everything else:

- numba announces every compilation of a function (``"numba:compile"`` events, each one
  between its start and its end: typing, lowering and LLVM's optimisation of that
  function).  A listener keeps a stack of the compilations in progress and sets the
  options while the innermost one is a kernel's, LLVM's defaults otherwise.  So numba's
  own functions that a kernel compiles on first use (``np.zeros``, ``max``; compiled once
  and reused by any later caller) are optimised with the defaults although their
  compilation is nested in a kernel's, and a compilation that fails still restores them.
- numba compiles under its global compiler lock, which these events happen inside of: no
  other thread compiles numba code while the options are set.

What is not covered: the few internal subroutines numba generates while lowering a kernel
and keeps for reuse (such as the call of its array allocator) are optimised with the
kernel; they have no loops, which is all the options act on.  And LLVM work done outside
numba's compiler lock (another library calling llvmlite itself from another thread) could
see them.

The settings, which change how the kernels are optimised, never their results:

- The fused loops read and write many rows of one buffer; LLVM vectorises such a loop
  behind run-time overlap checks, one per pair of rows, and by default gives up past 8
  of them ("too many memory checks needed"), leaving the loops of the pre-order pass
  scalar.  Raising the limits only lets it emit the checks.  (With LLVM 22, llvmlite 0.50,
  the kernels' optimised code is the same with or without these two: its cost model no
  longer stops at the limits.  They are kept for the older LLVM versions the supported
  numba versions bring.)
- By default LLVM interleaves vectorised loops (unrolls them 2-4 times) to hide
  latency; the pre-order loops hold some 50 values live, and interleaved they spend
  their time moving registers to and from the stack: one copy of the loop body ran the
  64-taxon GTR+G4 gradient about a fifth faster.

This file is one of the sources whose digest is part of the kernels' cache key (see
:mod:`phylo.likelihood._families`): changing a setting recompiles them.
"""

from __future__ import annotations

import os

import llvmlite.binding as llvm
from numba.core import event

#: The settings while a kernel compiles.
OPTIONS = {
    "runtime-memory-check-threshold": "64",
    "vectorize-memory-check-threshold": "256",
    "force-vector-interleave": "1",
}
#: LLVM's defaults of the same options, set at other times (llvmlite can set an option but
#: not read one, so a value set by someone else is not kept).
DEFAULTS = {
    "runtime-memory-check-threshold": "8",
    "vectorize-memory-check-threshold": "128",
    "force-vector-interleave": "0",
}

_sources: set[str] = set()  # files whose functions compile under OPTIONS
# The compilations in progress (outermost first), True for a kernel's, and whether OPTIONS
# are set now.  Only touched by the listener, under numba's compiler lock.
_stack: list[bool] = []
_set = [False]


def compile_under_options(path: str) -> None:
    """Compile every function defined in the source file ``path`` under :data:`OPTIONS`."""
    _sources.add(os.path.realpath(path))


def in_force() -> bool:
    """Whether :data:`OPTIONS` are set now (a kernel is compiling)."""
    return _set[0]


def _apply(kernel: bool) -> None:
    if kernel != _set[0]:
        for name, value in (OPTIONS if kernel else DEFAULTS).items():
            llvm.set_option("", f"-{name}={value}")
        _set[0] = kernel


def _is_kernel(dispatcher) -> bool:
    code = getattr(getattr(dispatcher, "py_func", None), "__code__", None)
    return code is not None and os.path.realpath(code.co_filename) in _sources


class _Switch(event.Listener):
    """Sets the options for the innermost compilation in progress (see the module
    docstring)."""

    def on_start(self, ev):
        kernel = _is_kernel(ev.data["dispatcher"])
        _stack.append(kernel)
        _apply(kernel)

    def on_end(self, ev):
        _stack.pop()
        _apply(bool(_stack) and _stack[-1])


event.register("numba:compile", _Switch())
