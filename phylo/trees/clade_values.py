"""Streaming summaries of a value observed per clade: branch lengths and node heights.

A tree sample gives, for every tree and every clade (or split) of that tree, a value: the
length of the branch above the clade, the height of its node.  :class:`CladeValues` takes
them chunk by chunk (``add(keys, values)``, keys being clade ids) and never needs them all:

* **exact moments**: count, mean, variance (``n - 1`` denominator), minimum and maximum, by
  Welford's update in the order the values come (MrBayes ``sumt`` uses the same update, so
  means agree with its ``.vstat`` to the last digit it prints);
* **median and 95% HPD interval**, as TreeAnnotator defines them: sort the ``n`` values
  ``x_(1) <= ... <= x_(n)``; the median is ``x_((n+1)/2)`` for odd ``n`` and the mean of the
  two middle values for even ``n``; the HPD interval is the shortest
  ``[x_(i), x_(i+d-1)]`` with ``d = floor(0.95 n + 1/2)`` (the first one on ties).

  While the values seen so far number at most ``exact_limit`` (default ``2**22``, 48 MiB)
  they are kept and these statistics are **exact**.  Beyond that, every value is moved into a
  log-spaced histogram per clade (the buckets of DDSketch, Masson et al. 2019): value ``x > 0``
  goes to bucket ``j = ceil(log_gamma x)`` with ``gamma = (1 + alpha) / (1 - alpha)``, whose
  point ``2 gamma^j / (gamma + 1)`` is within relative error ``alpha`` of every value in it.
  Every rank's value is then read from its bucket (clipped to the exact minimum and
  maximum), within relative error ``alpha`` (default ``1e-3``) of the exact order statistic
  of that rank; so is the median.  The HPD interval is the shortest over these values: it
  spans ``d`` ranks like the exact one and its width ``W'`` is within
  ``2 alpha max|x|`` of the exact width ``W`` (``W' <= W + alpha (|x_(i)| + |x_(i+d-1)|)``
  for the exact interval's ranks, and conversely).  Its end points themselves can move where
  the width hardly changes from one start to the next, as they move between two MCMC runs.
  Memory is one count per occupied (clade, bucket) pair: at most about
  ``log(max / min) / (2 alpha)`` buckets per clade, whatever the number of trees.

:meth:`CladeValues.result` says which was used (``exact``) and the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _kernels_values as K

#: Values kept for exact order statistics before switching to the histogram.
EXACT_LIMIT = 1 << 22
#: Relative accuracy of the histogram's order statistics.
ACCURACY = 1e-3
#: The credible mass of the HPD interval.
HPD_LEVEL = 0.95


@dataclass
class ValueStats:
    """Summaries of the values of each clade (arrays over clade ids; NaN where no value).

    Attributes
    ----------
    count : ndarray, int64
        Number of values.
    mean, var, min, max, median, hpd_lower, hpd_upper : ndarray, float64
        ``var`` has the ``n - 1`` denominator (NaN for a single value).
    exact : bool
        Whether median and HPD are exact order statistics (else within relative error
        ``accuracy`` of them).
    accuracy : float
        The histogram's relative accuracy (0 when exact).
    level : float
        Mass of the HPD interval.
    """

    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    min: np.ndarray
    max: np.ndarray
    median: np.ndarray
    hpd_lower: np.ndarray
    hpd_upper: np.ndarray
    exact: bool
    accuracy: float
    level: float = HPD_LEVEL

    def __len__(self) -> int:
        return self.count.shape[0]

    def take(self, idx) -> ValueStats:
        """The statistics of the clades ``idx`` (in that order)."""
        idx = np.asarray(idx)
        return ValueStats(
            self.count[idx],
            self.mean[idx],
            self.var[idx],
            self.min[idx],
            self.max[idx],
            self.median[idx],
            self.hpd_lower[idx],
            self.hpd_upper[idx],
            self.exact,
            self.accuracy,
            self.level,
        )


class CladeValues:
    """Accumulate values per clade id, chunk by chunk; see the module docstring.

    Parameters
    ----------
    n_keys
        Clade ids are ``0 .. n_keys - 1``.
    exact_limit
        Keep at most this many values for exact medians and HPD intervals; ``None`` keeps
        all of them, 0 uses the histogram from the start.
    accuracy
        Relative accuracy ``alpha`` of the histogram, in ``(0, 1)``.
    level
        Mass of the HPD interval.

    Examples
    --------
    >>> acc = CladeValues(2)
    >>> acc.add(np.array([0, 0, 1]), np.array([1.0, 3.0, 2.0]))
    >>> acc.result().mean
    array([2., 2.])
    """

    def __init__(
        self,
        n_keys: int,
        exact_limit: int | None = EXACT_LIMIT,
        accuracy: float = ACCURACY,
        level: float = HPD_LEVEL,
    ):
        if not 0.0 < accuracy < 1.0:
            raise ValueError("accuracy must be in (0, 1)")
        if not 0.0 < level <= 1.0:
            raise ValueError("level must be in (0, 1]")
        self.n_keys = int(n_keys)
        self.exact_limit = exact_limit
        self.accuracy = float(accuracy)
        self.level = float(level)
        self.gamma = (1.0 + accuracy) / (1.0 - accuracy)
        self.log_gamma = math.log(self.gamma)
        K_ = self.n_keys
        self.count = np.zeros(K_, np.int64)
        self.mean = np.zeros(K_)
        self.m2 = np.zeros(K_)
        self.vmin = np.full(K_, np.nan)
        self.vmax = np.full(K_, np.nan)
        self._keys: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._kept = 0
        self._exact = exact_limit is None or exact_limit > 0
        self._codes = np.empty(0, np.int64)  # sorted unique (key, bucket) codes
        self._counts = np.empty(0, np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0

    @property
    def exact(self) -> bool:
        """Whether all values are still kept (medians and HPD intervals exact)."""
        return self._exact

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add ``values[i]`` to clade ``keys[i]`` (NaN values are ignored)."""
        keys = np.ascontiguousarray(keys, dtype=np.int64).reshape(-1)
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        if keys.shape != values.shape:
            raise ValueError("keys and values differ in length")
        if keys.size == 0:
            return
        if keys.min() < 0 or keys.max() >= self.n_keys:
            raise ValueError("a clade id is out of range")
        K.welford(keys, values, self.count, self.mean, self.m2, self.vmin, self.vmax)
        if self._exact:
            self._keys.append(keys)
            self._values.append(values)
            self._kept += keys.size
            if self.exact_limit is not None and self._kept > self.exact_limit:
                self._to_sketch()
        else:
            self._sketch_add(keys, values)

    def _to_sketch(self) -> None:
        self._exact = False
        for k, v in zip(self._keys, self._values):
            self._sketch_add(k, v)
        self._keys, self._values, self._kept = [], [], 0

    def _sketch_add(self, keys, values) -> None:
        codes = np.empty(keys.shape[0], np.int64)
        K.sketch_codes(keys, values, self.log_gamma, codes)
        codes = codes[codes >= 0]
        self._pending.append(codes)
        self._pending_n += codes.size
        if self._pending_n > max(1 << 23, self._codes.size):
            self._merge()

    def _merge(self) -> None:
        """Fold the pending codes into the sorted (code, count) lists: sort, count runs, and
        merge the two sorted lists (no sort of the whole histogram)."""
        if not self._pending:
            return
        new = np.sort(np.concatenate(self._pending))
        u = np.empty(new.size, np.int64)
        c = np.empty(new.size, np.int64)
        m = K.run_lengths(new, u, c)
        out_u = np.empty(self._codes.size + m, np.int64)
        out_c = np.empty(self._codes.size + m, np.int64)
        k = K.merge_counts(self._codes, self._counts, u[:m], c[:m], out_u, out_c)
        self._codes, self._counts = out_u[:k].copy(), out_c[:k].copy()
        self._pending, self._pending_n = [], 0

    def result(self) -> ValueStats:
        """The summaries of every clade so far."""
        K_ = self.n_keys
        median = np.full(K_, np.nan)
        lower = np.full(K_, np.nan)
        upper = np.full(K_, np.nan)
        if self._exact:
            if self._keys:
                keys = np.concatenate(self._keys)
                values = np.concatenate(self._values)
                grouped = np.empty(int(self.count.sum()))
                starts = np.empty(K_ + 1, np.int64)
                K.group_values(keys, values, self.count, grouped, starts)
                K.exact_stats(grouped, starts, self.level, median, lower, upper)
        else:
            self._merge()
            K.sketch_stats(
                self._codes,
                self._counts,
                K_,
                self.gamma,
                self.log_gamma,
                self.level,
                self.vmin,
                self.vmax,
                median,
                lower,
                upper,
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(self.count > 1, self.m2 / (self.count - 1), np.nan)
        mean = np.where(self.count > 0, self.mean, np.nan)
        return ValueStats(
            self.count.copy(),
            mean,
            var,
            self.vmin.copy(),
            self.vmax.copy(),
            median,
            lower,
            upper,
            self._exact,
            0.0 if self._exact else self.accuracy,
            self.level,
        )
