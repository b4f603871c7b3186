"""BEAGLE's CPU likelihood through ctypes, as a speed baseline for the benchmarks.

Only what a full likelihood evaluation of an unrooted tree needs: one instance with tip
states (or partials for ambiguous tips), an eigendecomposition, one transition matrix per
edge, one partials operation per internal node below the root, and an edge likelihood
across the root's third edge.  Reference: Ayres DL et al. 2019. BEAGLE 3: improved
performance, scaling, and usability for a high-performance computing library for
statistical phylogenetics. Syst Biol 68:1052-1061.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

LIBRARY = "libhmsbeagle.so.1"

FLAG_PRECISION_DOUBLE = 1 << 1
FLAG_COMPUTATION_SYNCH = 1 << 2
FLAG_EIGEN_REAL = 1 << 4
FLAG_SCALING_MANUAL = 1 << 6
FLAG_SCALERS_LOG = 1 << 10
FLAG_INVEVEC_STANDARD = 1 << 20
FLAG_VECTOR_SSE = 1 << 11
FLAG_VECTOR_NONE = 1 << 12
FLAG_THREADING_CPP = 1 << 30
FLAG_THREADING_NONE = 1 << 14
FLAG_PROCESSOR_CPU = 1 << 15
FLAG_FRAMEWORK_CPU = 1 << 27
OP_NONE = -1


class _Details(ctypes.Structure):
    _fields_ = [
        ("resourceNumber", ctypes.c_int),
        ("resourceName", ctypes.c_char_p),
        ("implName", ctypes.c_char_p),
        ("implDescription", ctypes.c_char_p),
        ("flags", ctypes.c_long),
    ]


def load():
    """The BEAGLE library, or None when it is not installed."""
    for name in (LIBRARY, ctypes.util.find_library("hmsbeagle")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.beagleGetVersion.restype = ctypes.c_char_p
        lib.beagleCreateInstance.argtypes = [ctypes.c_int] * 9 + [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_long,
            ctypes.POINTER(_Details),
        ]
        return lib
    return None


def _dp(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _ip(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int))


class BeagleLikelihood:
    """A BEAGLE instance evaluating the same problem as a ``TreeLikelihood``.

    Parameters
    ----------
    lib
        From :func:`load`.
    lik
        A :class:`phylo.likelihood.TreeLikelihood` (tips, weights, model, tree are read).
    threads
        BEAGLE CPU threads (C++ threading over patterns when > 1).
    scaling
        Rescale at every partials operation (BEAGLE's manual scaling with log scalers);
        without it, no rescaling at all.
    """

    def __init__(self, lib, lik, threads: int = 1, scaling: bool = False):
        self.lib = lib
        n = lik.n_taxa
        N = lik.n_nodes
        P = lik.n_patterns
        kc = lik.n_categories
        self.n, self.N, self.P, self.K = n, N, P, kc
        self.topo = lik._topo
        self.scaling = scaling
        tips = lik._tips  # (n, 4, P)
        pref = FLAG_PRECISION_DOUBLE | FLAG_PROCESSOR_CPU | FLAG_VECTOR_SSE | FLAG_EIGEN_REAL
        pref |= FLAG_INVEVEC_STANDARD | FLAG_COMPUTATION_SYNCH | FLAG_FRAMEWORK_CPU
        pref |= FLAG_THREADING_CPP if threads > 1 else FLAG_THREADING_NONE
        if scaling:
            pref |= FLAG_SCALING_MANUAL | FLAG_SCALERS_LOG
        req = FLAG_PRECISION_DOUBLE | FLAG_PROCESSOR_CPU
        details = _Details()
        n_scale = (N + 1) if scaling else 0
        self.inst = lib.beagleCreateInstance(
            n, N, n, 4, P, 1, N, kc, n_scale, None, 0, pref, req, ctypes.byref(details)
        )
        if self.inst < 0:
            raise RuntimeError(f"beagleCreateInstance failed ({self.inst})")
        self.impl = (details.implName or b"").decode()
        if threads > 1 and hasattr(lib, "beagleSetCPUThreadCount"):
            lib.beagleSetCPUThreadCount(self.inst, int(threads))
        ones = tips.sum(axis=1)  # allowed states per pattern
        for i in range(n):
            if np.all((ones[i] == 1) | (ones[i] == 4)):
                states = np.where(ones[i] == 4, 4, np.argmax(tips[i], axis=0)).astype(np.intc)
                self._check(lib.beagleSetTipStates(self.inst, i, _ip(states)))
            else:
                part = np.ascontiguousarray(tips[i].T)  # (P, 4)
                self._check(lib.beagleSetTipPartials(self.inst, i, _dp(part)))
        w = np.ascontiguousarray(lik._weights)
        self._check(lib.beagleSetPatternWeights(self.inst, _dp(w)))
        arrays = lik.model_arrays()
        self._check(lib.beagleSetStateFrequencies(self.inst, 0, _dp(arrays["frequencies"])))
        self._check(
            lib.beagleSetCategoryWeights(self.inst, 0, _dp(arrays["category_weights"].copy()))
        )
        self._check(lib.beagleSetCategoryRates(self.inst, _dp(arrays["category_rates"].copy())))
        self._check(
            lib.beagleSetEigenDecomposition(
                self.inst,
                0,
                _dp(np.ascontiguousarray(arrays["eigenvectors"]).ravel()),
                _dp(np.ascontiguousarray(arrays["inverse"]).ravel()),
                _dp(arrays["eigenvalues"].copy()),
            )
        )
        if arrays["pinv"] > 0:
            raise ValueError("the BEAGLE baseline does not model invariant sites")
        # operations: every internal node but the root combines its two children;
        # the root's first two children go into its buffer, the third edge is an edge
        # likelihood.  Transition matrix index = edge index = child node index.
        ops = []
        for row in self.topo:
            v, nk = int(row[0]), int(row[1])
            if nk != 2 and v != int(self.topo[-1, 0]):
                raise ValueError("the BEAGLE baseline needs a binary tree")
            sw = v if scaling else OP_NONE
            ops.append([v, sw, OP_NONE, int(row[2]), int(row[5]), int(row[3]), int(row[6])])
        self.root = int(self.topo[-1, 0])
        root_row = self.topo[-1]
        if int(root_row[1]) != 3:
            raise ValueError("the BEAGLE baseline needs an unrooted tree (trifurcating root)")
        self.third_child = int(root_row[4])
        self.third_edge = int(root_row[7])
        self.ops = np.ascontiguousarray(np.array(ops, dtype=np.intc))
        self.n_ops = len(ops)
        self.edges = np.arange(N - 1, dtype=np.intc)
        self.scale_idx = np.array([op[0] for op in ops], dtype=np.intc)
        self.cum = N  # cumulative scale buffer
        self.zero = np.zeros(1, dtype=np.intc)
        self._out = ctypes.c_double()
        self._d1 = ctypes.c_double()
        self._d2 = ctypes.c_double()
        self._parent = np.array([self.root], dtype=np.intc)
        self._child = np.array([self.third_child], dtype=np.intc)
        self._mat = np.array([self.third_edge], dtype=np.intc)
        self._cumarr = np.array([self.cum if scaling else OP_NONE], dtype=np.intc)

    @staticmethod
    def _check(code):
        if code < 0:
            raise RuntimeError(f"BEAGLE call failed with code {code}")

    def log_likelihood(self, t) -> float:
        lib = self.lib
        t = np.ascontiguousarray(t, dtype=np.float64)
        self._check(
            lib.beagleUpdateTransitionMatrices(
                self.inst, 0, _ip(self.edges), None, None, _dp(t), self.N - 1
            )
        )
        self._check(
            lib.beagleUpdatePartials(
                self.inst, self.ops.ctypes.data_as(ctypes.c_void_p), self.n_ops, OP_NONE
            )
        )
        if self.scaling:
            self._check(lib.beagleResetScaleFactors(self.inst, self.cum))
            self._check(
                lib.beagleAccumulateScaleFactors(
                    self.inst, _ip(self.scale_idx), self.n_ops, self.cum
                )
            )
        self._check(
            lib.beagleCalculateEdgeLogLikelihoods(
                self.inst,
                _ip(self._parent),
                _ip(self._child),
                _ip(self._mat),
                None,
                None,
                _ip(self.zero),
                _ip(self.zero),
                _ip(self._cumarr),
                1,
                ctypes.byref(self._out),
                ctypes.byref(self._d1),
                ctypes.byref(self._d2),
            )
        )
        return self._out.value

    def close(self):
        if self.inst >= 0:
            self.lib.beagleFinalizeInstance(self.inst)
            self.inst = -1

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
