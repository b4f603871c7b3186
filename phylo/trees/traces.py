"""Numeric MCMC traces: effective sample size, PSRF, a burn-in rule, and parameter files.

A trace is the sequence ``x_0, ..., x_{n-1}`` of one quantity over the samples of one run,
in sampling order (a log likelihood, the tree length, a tree's log probability under a
model, the indicator of a split).

**Effective sample size.**  With the autocovariances

.. math::  \\hat\\gamma_k = \\frac{1}{n} \\sum_{i=0}^{n-k-1} (x_i - \\bar x)(x_{i+k} - \\bar x),

the variance of the mean is about :math:`\\sigma^2 / n` with
:math:`\\sigma^2 = \\gamma_0 + 2 \\sum_{k \\ge 1} \\gamma_k`, and
:math:`\\mathrm{ESS} = n \\gamma_0 / \\sigma^2`.  The sum is truncated by Geyer's (1992)
*initial monotone sequence* rule (the default, ``method="geyer"``): the sums of adjacent
pairs :math:`\\Gamma_m = \\gamma_{2m} + \\gamma_{2m+1}` are positive and decreasing for a
reversible chain, so the sum stops before the first :math:`\\Gamma_m \\le 0` and each
:math:`\\Gamma_m` is replaced by the smallest of :math:`\\Gamma_0..\\Gamma_m`; then
:math:`\\sigma^2 = -\\gamma_0 + 2 \\sum_m \\Gamma_m`.  ``method="tracer"`` is the estimator of
Tracer and MrBayes ``sump`` (their ``min ESS`` and ``avg ESS`` columns): autocovariances
divided by ``n - k``, lags up to 2000, adding :math:`2(\\gamma_{k-1} + \\gamma_k)` for even
``k`` while that pair sum is positive.

**PSRF** (Gelman and Rubin 1992, as MrBayes ``sump`` prints it): with ``m`` runs, ``W`` the
mean of the runs' variances (``n - 1`` denominators), ``B/n`` the variance of the runs'
means (``m - 1`` denominator) and ``n`` the mean run length,

.. math::  \\mathrm{PSRF} = \\sqrt{\\frac{n-1}{n} + \\frac{m+1}{m} \\frac{B/n}{W}} .

(MrBayes 3.2.7 adds to each run's sum of squares those of the runs before it, which makes
its ``W`` larger and its PSRF closer to 1 than this formula; see ``docs/diagnostics.md``.)

**Burn-in** (:func:`mser_truncation`): White's (1997) MSER-5 rule.  The trace is cut into
``k`` batches of 5 samples with means :math:`Z_j`; the truncation ``d`` (in batches,
``0 <= d <= k/2``) minimises :math:`\\sum_{j \\ge d} (Z_j - \\bar Z_d)^2 / (k - d)^2`, the
squared standard error of the mean of what is kept, as if the batch means were independent.

**Parameter files** (:func:`read_parameters`): MrBayes ``.p`` and BEAST or RevBayes ``.log``
files: ``[...]`` or ``#`` comment lines, a header of tab-separated column names, then one row
of numbers per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

#: ESS below this is flagged (Tracer's colour threshold).
GOOD_ESS = 200.0
#: PSRF above this is flagged (Vehtari et al. 2021 recommend 1.01 for R-hat).
MAX_PSRF = 1.01
#: Lags the Tracer/MrBayes estimator looks at, at most.
TRACER_MAX_LAG = 2000
#: Column names that count samples, not parameters.
GENERATION_COLUMNS = ("gen", "generation", "state", "iteration", "sample")


def autocovariance(x: np.ndarray, unbiased: bool = False) -> np.ndarray:
    """Autocovariances ``gamma_0 .. gamma_{n-1}`` of a trace (by FFT).

    Sums of products of deviations from the mean, divided by ``n`` (the default, which
    keeps the sequence positive semi-definite) or by ``n - k`` (``unbiased``).  A 2-D
    array is a set of traces in its columns.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        return np.empty(x.shape)
    d = x - x.mean(axis=0)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(d, size, axis=0)
    acov = np.fft.irfft(f * np.conj(f), size, axis=0)[:n]
    div = (n - np.arange(n)) if unbiased else np.full(n, float(n))
    if x.ndim == 2:
        div = div[:, None]
    return acov / div


def _geyer(gamma: np.ndarray) -> float:
    n = gamma.shape[0]
    g0 = gamma[0]
    if not g0 > 0:
        return math.nan
    m = n // 2
    pairs = gamma[0 : 2 * m : 2] + gamma[1 : 2 * m : 2]
    bad = np.nonzero(pairs <= 0)[0]
    if bad.size:
        pairs = pairs[: bad[0]]
    pairs = np.minimum.accumulate(pairs)
    sigma2 = -g0 + 2.0 * pairs.sum()
    if not sigma2 > 0:
        return math.inf
    return n * g0 / sigma2


def _tracer(gamma_unbiased: np.ndarray) -> float:
    n = gamma_unbiased.shape[0]
    g = gamma_unbiased
    if not g[0] > 0:
        return math.nan
    max_lag = min(n - 1, TRACER_MAX_LAG)
    var = g[0]
    for lag in range(2, max_lag, 2):
        s = g[lag - 1] + g[lag]
        if s > 0:
            var += 2.0 * s
        else:
            break
    return n * g[0] / var


def ess(x, method: str = "geyer") -> float | np.ndarray:
    """Effective sample size of a trace (``nan`` for a constant trace).

    Parameters
    ----------
    x
        A trace, or a 2-D array of traces in its columns (one ESS each).
    method
        ``"geyer"``: the initial monotone sequence estimator; ``"tracer"``: the estimator
        of Tracer and MrBayes ``sump`` (see the module's documentation).
    """
    x = np.asarray(x, dtype=np.float64)
    if method not in ("geyer", "tracer"):
        raise ValueError(f"unknown ESS method {method!r} (geyer or tracer)")
    if x.ndim == 2:
        if x.shape[0] < 2:
            return np.full(x.shape[1], math.nan)
        g = autocovariance(x, unbiased=method == "tracer")
        f = _geyer if method == "geyer" else _tracer
        return np.array([f(g[:, j]) for j in range(x.shape[1])])
    if x.shape[0] < 2 or not np.all(np.isfinite(x)):
        return math.nan
    if method == "geyer":
        return _geyer(autocovariance(x))
    return _tracer(autocovariance(x, unbiased=True))


def psrf(traces: Sequence[np.ndarray]) -> float:
    """Potential scale reduction factor of one quantity over runs (``nan`` with one run,
    a run shorter than 2 samples, or no variance within runs)."""
    traces = [np.asarray(t, dtype=np.float64) for t in traces]
    m = len(traces)
    if m < 2 or any(t.shape[0] < 2 for t in traces):
        return math.nan
    if not all(np.all(np.isfinite(t)) for t in traces):
        return math.nan
    w = float(np.mean([t.var(ddof=1) for t in traces]))
    b = float(np.var([t.mean() for t in traces], ddof=1))
    n = sum(t.shape[0] for t in traces) / m
    if not w > 0:
        return math.nan
    return math.sqrt((n - 1.0) / n + (m + 1.0) / m * b / w)


def mser_truncation(x, batch: int = 5) -> int:
    """Samples to discard from the start of a trace by the MSER rule (White 1997) with
    batches of ``batch`` samples (MSER-5); 0 for traces of fewer than 4 batches."""
    x = np.asarray(x, dtype=np.float64)
    k = x.shape[0] // batch
    if k < 4 or not np.all(np.isfinite(x)):
        return 0
    z = x[: k * batch].reshape(k, batch).mean(axis=1)
    # suffix sums: kept batches j >= d
    s1 = np.cumsum(z[::-1])[::-1]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    d = np.arange(k // 2 + 1)
    cnt = k - d
    ss = s2[d] - s1[d] ** 2 / cnt  # sum of squared deviations from the kept mean
    crit = np.maximum(ss, 0.0) / cnt**2
    return int(np.argmin(crit)) * batch


# -- parameter files -----------------------------------------------------------------------


@dataclass
class ParameterTrace:
    """The numeric columns of one parameter file (one run).

    Attributes
    ----------
    path
        The file.
    names
        Column names, the generation column excluded.
    values
        ``(samples, columns)``.
    generation
        The generation (state) of each sample, or ``None`` when the file has no such column.
    """

    path: str
    names: list[str]
    values: np.ndarray
    generation: np.ndarray | None

    @property
    def n_samples(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


def read_parameters(path: str) -> ParameterTrace:
    """Read a MrBayes ``.p`` (or BEAST/RevBayes ``.log``) file of numeric traces.

    Lines starting with ``[`` or ``#`` are comments; the first other line names the
    tab-separated columns; every later line is one sample.  A column called ``Gen``,
    ``state``, ``Iteration`` or ``Sample`` is the generation; the others are parameters.
    A cell that is not a number is an :class:`~phylo.errors.InputError` with its line and
    column.
    """
    from .files import display_name, read_text

    name = display_name(path)
    text = read_text(path)
    header = None
    header_line = 0
    rows: list[list[float]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("[") or stripped.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = [c.strip() for c in cells]
            header_line = lineno
            if len(header) < 2:
                raise InputError(
                    "expected a header of tab-separated column names (a MrBayes .p or BEAST "
                    ".log file)",
                    name,
                    lineno,
                )
            continue
        if len(cells) != len(header):
            raise InputError(
                f"expected {len(header)} tab-separated values (as the header on line "
                f"{header_line}), found {len(cells)}",
                name,
                lineno,
            )
        row = []
        col = 1
        for cell in cells:
            try:
                row.append(float(cell))
            except ValueError:
                raise InputError(
                    f"not a number: {cell.strip()[:30]!r}", name, lineno, col
                ) from None
            col += len(cell) + 1
        rows.append(row)
    if header is None or not rows:
        raise InputError("no samples in the parameter file", name)
    values = np.array(rows)
    gen_idx = [i for i, h in enumerate(header) if h.lower() in GENERATION_COLUMNS]
    generation = values[:, gen_idx[0]].astype(np.int64) if gen_idx else None
    keep = [i for i in range(len(header)) if i not in gen_idx[:1]]
    return ParameterTrace(name, [header[i] for i in keep], values[:, keep], generation)


@dataclass
class ParameterSummary:
    """One parameter over the runs (after burn-in).

    Attributes
    ----------
    name
    mean, variance
        Over the pooled samples.
    psrf
        :func:`psrf` over the runs.
    ess
        Per run, :func:`ess` (Geyer).
    """

    name: str
    mean: float
    variance: float
    psrf: float
    ess: np.ndarray

    @property
    def min_ess(self) -> float:
        return float(np.nanmin(self.ess)) if np.any(np.isfinite(self.ess)) else math.nan

    @property
    def pooled_ess(self) -> float:
        return float(np.nansum(self.ess)) if np.any(np.isfinite(self.ess)) else math.nan


def summarise_parameters(
    runs: Sequence[dict[str, np.ndarray]], names: Sequence[str]
) -> list[ParameterSummary]:
    """:class:`ParameterSummary` of each named quantity; ``runs[r][name]`` is its trace in
    run ``r``."""
    out = []
    for name in names:
        traces = [np.asarray(r[name], dtype=np.float64) for r in runs]
        pooled = np.concatenate(traces)
        out.append(
            ParameterSummary(
                name,
                float(pooled.mean()),
                float(pooled.var(ddof=1)) if pooled.shape[0] > 1 else math.nan,
                psrf(traces),
                np.array([ess(t) for t in traces]),
            )
        )
    return out
