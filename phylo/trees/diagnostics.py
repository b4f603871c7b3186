"""Convergence diagnostics of MCMC tree samples: do the runs agree, and how much do they hold?

Every function takes a :class:`~phylo.trees.TreeSample` read with its whole traces (burn-in
0) or after burn-in, as said; :func:`phylo.trees.diagnosis.diagnose` runs them all for
``sbn diagnose``, and :func:`pooling_warning` is what ``sbn fit``, ``sbn summary`` and
``marglik total`` print before they pool runs.

**Topological ESS, two ways.**

* :func:`approximate_ess`: the approximate ESS of Lanfear, Hua and Warren (2016, Genome
  Biol. Evol. 8:2319), as RWTY's ``topological.approx.ess`` computes it.  For lags
  ``k = 1..K`` the mean squared distance ``f_k`` between trees ``k`` samples apart (path
  distance by default, or Robinson-Foulds) is fitted by ``a (1 - exp(-k / b))`` (least
  squares); ``m`` is the first lag with ``f_k / a > 0.95`` (none: ``m = K + 1`` and the
  result is an upper bound, RWTY's ``"<"``); with ``D = max_k f_k`` and ``N`` trees,

  .. math::  S = \\frac{1}{2N^2}\\Big[\\sum_{k=1}^{m-1} (N-k) f_k + \\frac{(N-m+1)(N-m)}{2} D\\Big],
     \\qquad \\mathrm{ESS} = \\frac{1}{1 - 4S/D}.

  In a Euclidean embedding ``f_k = D (1 - rho_k)``, and this is the usual
  ``N / (1 + 2 sum_k (1 - k/N) rho_k)`` with ``rho_k = 0`` from lag ``m`` on.
  ``K = min(max_lag, N - 100)`` (``max_lag`` is 100, or ``0.9 N`` for fewer trees), and
  fewer than 20 lags give no estimate, as in RWTY.  RWTY averages 500 random pairs per lag by
  default; we use every pair unless ``pairs`` is given.
* :func:`log_prob_ess`: the ESS (Geyer's initial monotone sequence,
  :func:`phylo.trees.traces.ess`) of the trace of each tree's log probability under an SBN
  (SBN-SA) fitted to the runs pooled; and :func:`split_ess`: the ESS of the indicator of each
  split whose pooled frequency lies in ``[min_freq, 1 - min_freq]``, summarised by its
  median and minimum.

The pooled ESS is the sum over runs (runs are independent when they have converged, which the
ASDSF and PSRF check).  ``docs/diagnostics.md`` explains when the two kinds disagree.

**ASDSF over the run** (:func:`asdsf_trace`).  *Cumulative*, as MrBayes prints it during the
run (its ``.mcmc`` file): after ``m`` samples per run, the ASDSF (:func:`phylo.trees.asdsf`)
of samples ``floor(b m) .. m - 1`` of each run, with the relative burn-in ``b = 0.25``.
*Sliding*: the ASDSF of the samples of each window of ``w`` samples.

**Burn-in suggestion** (:func:`suggest_burnin`): MSER-5 (:func:`phylo.trees.traces.mser_truncation`)
on each run's trace of the log likelihood (from parameter files) and of each tree's log clade
credibility (the sum over its splits of the log of their frequency in the second halves of
all runs, a frequency of 0 counting as ``1 / (2 n)``); the suggestion is the largest of them.

**Pooling** (:func:`pooling_check`): runs disagree when their ASDSF exceeds 0.05 or a topology
with frequency >= 0.1 in one run never occurs in another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import _kernels_diagnostics as K
from . import bitsets
from .sample import DEFAULT_BURNIN, RunInfo, TreeSample, parse_burnin
from .splits import MIN_FREQ, split_index, split_table
from .traces import ess, mser_truncation

#: Pooling is discouraged above this ASDSF.
POOL_MAX_ASDSF = 0.05
#: A topology this frequent in one run should occur in every other run.
POOL_TOPOLOGY_FREQ = 0.1
#: MrBayes's usual stopping value of the ASDSF.
CONVERGED_ASDSF = 0.01
#: RWTY's defaults.
MAX_LAG = 100
MIN_LAGS = 20
ESS_CUTOFF = 0.95


# -- samples -------------------------------------------------------------------------------


def burnin_trees(burnin, n: int, thin: int = 1) -> int:
    """Trees of a trace of ``n`` kept trees to discard: a fraction of ``n`` (default 0.25) or
    a count of trees of the file (divided by the thinning, rounded up)."""
    b = parse_burnin(burnin)
    if b is None:
        b = DEFAULT_BURNIN
    count = int(b * n) if isinstance(b, float) else -(-int(b) // thin)
    if count >= n:
        raise InputError(f"a burn-in of {count} trees leaves none of the {n} trees")
    return count


def subsample(sample: TreeSample, start: Sequence[int], stop: Sequence[int] | None = None):
    """The trees ``start[r] .. stop[r] - 1`` of each run's trace, as a new
    :class:`TreeSample` (topologies re-sorted by decreasing pooled frequency)."""
    if sample.weighted:
        raise InputError(
            "convergence diagnostics need the sampled trees in order (.t or .trees files), "
            "not weighted summaries (.trprobs)"
        )
    R = sample.n_runs
    stop = [t.shape[0] for t in sample.traces] if stop is None else list(stop)
    traces = [sample.traces[r][int(start[r]) : int(stop[r])] for r in range(R)]
    T = sample.n_topologies
    counts = np.zeros((T, R))
    for r in range(R):
        counts[:, r] = np.bincount(traces[r], minlength=T)
    used = np.nonzero(counts.sum(axis=1) > 0)[0]
    n_used = np.array([t.shape[0] for t in traces], dtype=np.float64)
    f = counts[used] / np.maximum(n_used, 1)
    pooled = f @ (n_used / n_used.sum())
    order = used[np.lexsort((used, -pooled))]
    remap = np.full(T, -1, np.int64)
    remap[order] = np.arange(order.shape[0])
    runs = []
    for r, info in enumerate(sample.runs):
        b = info.burnin + int(start[r]) * info.thin
        runs.append(RunInfo(info.path, info.n_trees, b, info.thin, traces[r].shape[0], False, 0))
    lengths = None
    if sample.lengths is not None:
        lengths = [sample.lengths[r][int(start[r]) : int(stop[r])] for r in range(R)]
    return TreeSample(
        sample.taxa,
        sample.rooted,
        sample.parents[order],
        counts[order],
        runs,
        [remap[t].astype(np.int32) for t in traces],
        lengths,
        sample.notes,
    )


def sampling_interval(path: str, head: int = 1 << 20) -> tuple[int, int] | None:
    """``(first, step)`` generations of a tree file's samples, from the names of its first
    trees (MrBayes ``tree gen.1000``, BEAST ``tree STATE_1000``), or ``None`` when they carry
    none or are not evenly spaced.  Only the file's first ``head`` bytes are read."""
    if path == "-":
        return None
    from .files import open_binary

    try:
        with open_binary(path) as fh:
            data = fh.read(head)
    except (OSError, EOFError, InputError):
        return None
    found = [int(m) for m in re.findall(rb"\btree\s+(?:gen\.|STATE_)(\d+)", data[:head])[:4]]
    if len(found) < 2:
        return None
    steps = {b - a for a, b in zip(found, found[1:])}
    if len(steps) != 1 or next(iter(steps)) <= 0:
        return None
    return found[0], next(iter(steps))


# -- topological ESS -----------------------------------------------------------------------


@dataclass
class ApproximateESS:
    """Lanfear et al.'s approximate topological ESS of each run (see the module).

    Attributes
    ----------
    ess
        Per run (``nan`` when the run has too few trees or a single topology).
    upper_bound
        Per run: the distances did not level off within the lags (RWTY's ``"<"``).
    lags
        ``1 .. K`` (the same for every run; runs of different lengths use the shortest K).
    sq_distance
        ``(runs, K)``: mean squared distance ``f_k`` at each lag.
    asymptote, scale
        The fit ``a (1 - exp(-k / b))`` per run: ``a`` and ``b``.
    lag_m
        Per run: the first lag with ``f_k > 0.95 a`` (``K + 1`` when none).
    distance
        ``"pd"`` or ``"rf"``.
    """

    ess: np.ndarray
    upper_bound: np.ndarray
    lags: np.ndarray
    sq_distance: np.ndarray
    asymptote: np.ndarray
    scale: np.ndarray
    lag_m: np.ndarray
    distance: str

    @property
    def pooled(self) -> float:
        return float(np.sum(self.ess)) if np.all(np.isfinite(self.ess)) else math.nan


def max_lags(n_trees: int, max_lag: int = MAX_LAG) -> int:
    """The number of lags RWTY uses for a run of ``n_trees`` (after burn-in)."""
    if n_trees < max_lag:
        max_lag = int(math.floor(n_trees * 0.9))
    return min(max_lag, n_trees - 100)


def fit_exponential(lags: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of ``f_k ~ a (1 - exp(-k / b))``.

    For a fixed ``b`` the best ``a`` is linear; the profile over ``log b`` is searched on a
    grid and refined with a bounded scalar search, so no starting value can trap it.
    """
    from scipy.optimize import minimize_scalar

    lags = np.asarray(lags, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)

    def profile(logb):
        g = -np.expm1(-lags / math.exp(logb))
        gg = float(g @ g)
        gf = float(g @ f)
        return -(gf * gf) / gg if gg > 0 else 0.0

    lo, hi = math.log(1e-3), math.log(1e3 * lags[-1])
    grid = np.linspace(lo, hi, 400)
    vals = np.array([profile(x) for x in grid])
    i = int(np.argmin(vals))
    a_, b_ = grid[max(i - 1, 0)], grid[min(i + 1, grid.shape[0] - 1)]
    best = grid[i]
    if b_ > a_:
        res = minimize_scalar(profile, bounds=(a_, b_), method="bounded", options={"xatol": 1e-10})
        if res.fun <= vals[i]:
            best = float(res.x)
    b = math.exp(best)
    g = -np.expm1(-lags / b)
    a = float(g @ f) / float(g @ g)
    return a, b


def approximate_ess_from_distances(
    f: np.ndarray, n_trees: int
) -> tuple[float, bool, int, float, float]:
    """``(ess, upper_bound, m, a, b)`` from the mean squared distances ``f`` at lags
    ``1..K`` of a run of ``n_trees`` trees (RWTY's ``approx.ess.single``)."""
    f = np.asarray(f, dtype=np.float64)
    Kl = f.shape[0]
    lags = np.arange(1, Kl + 1, dtype=np.float64)
    D = float(f.max()) if Kl else 0.0
    if not D > 0:
        return math.nan, False, 0, 0.0, math.nan
    a, b = fit_exponential(lags, f)
    hits = np.nonzero(f / a > ESS_CUTOFF)[0]
    upper = hits.size == 0
    m = Kl + 1 if upper else int(hits[0]) + 1
    N = float(n_trees)
    k = np.arange(1, m, dtype=np.float64)
    S = float(((N - k) * f[: m - 1]).sum()) + (N - m + 1) * (N - m) * D / 2.0
    S = S / 2.0 / N**2
    return 1.0 / (1.0 - 4.0 * S / D), upper, m, a, b


def _split_rows(sample: TreeSample) -> np.ndarray:
    """Sorted ids of each topology's informative splits (clades for rooted samples), one
    row per topology."""
    index = split_index(sample)
    n = sample.n_taxa
    N = sample.parents.shape[1]
    sizes = bitsets.popcount(index.bits)
    informative = (sizes > 1) & (sizes < n)
    if not sample.rooted:
        informative &= sizes < n - 1
    ids = index.node_ids[:, : N - 1]
    keep = informative[ids]
    width = int(keep.sum(axis=1).max()) if ids.shape[0] else 0
    rows = np.full((ids.shape[0], width), -1, np.int64)
    for t in range(ids.shape[0]):
        row = np.sort(ids[t][keep[t]])
        rows[t, : row.shape[0]] = row
    if np.any(rows < 0):  # every binary tree has the same number of splits
        raise AssertionError("topologies with different numbers of splits")
    return rows


def approximate_ess(
    sample: TreeSample,
    distance: str = "pd",
    max_lag: int = MAX_LAG,
    pairs: int | None = None,
    rng: np.random.Generator | None = None,
) -> ApproximateESS:
    """Approximate topological ESS of each run of a sample after burn-in (see the module).

    Parameters
    ----------
    sample
        Runs after burn-in.
    distance
        ``"pd"``: the path distance (Euclidean distance between the vectors of the number of
        edges between each pair of taxa; RWTY's default); ``"rf"``: Robinson-Foulds.
    max_lag
        RWTY's ``max.sampling.interval``.
    pairs
        ``None``: every pair of trees at each lag; a number: that many pairs drawn at random
        from each lag (RWTY's default is 500), with ``rng``.
    """
    if distance not in ("pd", "rf"):
        raise InputError(f"unknown tree distance {distance!r} (pd or rf)")
    R = sample.n_runs
    n_runs = [t.shape[0] for t in sample.traces]
    Kl = min(max_lags(n, max_lag) for n in n_runs)
    if Kl < MIN_LAGS:
        nan = np.full(R, math.nan)
        return ApproximateESS(
            nan, np.zeros(R, bool), np.arange(1, 1), np.zeros((R, 0)), nan, nan,
            np.zeros(R, np.int64), distance,
        )  # fmt: skip
    if pairs is not None and rng is None:
        raise ValueError("sampling pairs needs a numpy.random.Generator")
    ids = _split_rows(sample) if distance == "rf" else None
    parents = np.ascontiguousarray(sample.parents, dtype=np.int64)
    f = np.zeros((R, Kl))
    for r, trace in enumerate(sample.traces):
        trace = np.ascontiguousarray(trace, dtype=np.int64)
        N = trace.shape[0]
        if pairs is None:
            sums = np.zeros(Kl)
            if distance == "pd":
                n = sample.n_taxa
                small = np.int16 if 2 * n < np.iinfo(np.int16).max else np.int32
                ring = np.empty((Kl + 1, n * (n - 1) // 2), small)
                K.lagged_sq_path(parents, n, trace, ring, sums)
            else:
                K.lagged_sq_rf(ids, trace, Kl, sums)
            f[r] = sums / (N - np.arange(1, Kl + 1))
        else:
            for k in range(1, Kl + 1):
                avail = N - k
                starts = (
                    np.arange(avail)
                    if avail <= pairs
                    else np.sort(rng.choice(avail, size=pairs, replace=False))
                ).astype(np.int64)
                lag = np.full(starts.shape[0], k, np.int64)
                out = np.empty(starts.shape[0])
                if distance == "pd":
                    K.sampled_sq_path(parents, sample.n_taxa, trace, starts, lag, out)
                else:
                    K.sampled_sq_rf(ids, trace, starts, lag, out)
                f[r, k - 1] = out.mean()
    ess_ = np.empty(R)
    upper = np.zeros(R, bool)
    m = np.zeros(R, np.int64)
    a = np.empty(R)
    b = np.empty(R)
    for r in range(R):
        ess_[r], upper[r], m[r], a[r], b[r] = approximate_ess_from_distances(f[r], n_runs[r])
    return ApproximateESS(ess_, upper, np.arange(1, Kl + 1), f, a, b, m, distance)


def log_prob_ess(sample: TreeSample, model=None) -> np.ndarray:
    """Per run, the ESS of the trace of each tree's log probability under ``model`` (default:
    SBN-SA fitted to the runs pooled)."""
    if model is None:
        from ..sbn import fit

        model = fit(sample, "sa")
    logp = np.asarray(model.log_prob(sample), dtype=np.float64)
    return np.array([ess(logp[t]) for t in sample.traces])


@dataclass
class SplitESS:
    """ESS of split indicators.

    Attributes
    ----------
    bits
        ``(S, W)`` the splits (clades) whose pooled frequency is in ``[f, 1 - f]``.
    frequency
        Their pooled frequencies.
    ess
        ``(S, runs)``: the ESS of each split's indicator in each run (``nan`` where the split
        is always or never present in the run).
    """

    bits: np.ndarray
    frequency: np.ndarray
    ess: np.ndarray

    def median(self) -> np.ndarray:
        """Per run: the median over splits (``nan`` without splits)."""
        return _nan_stat(np.nanmedian, self.ess)

    def minimum(self) -> np.ndarray:
        return _nan_stat(np.nanmin, self.ess)

    def pooled(self) -> np.ndarray:
        """Per split: the sum over runs."""
        return np.nansum(self.ess, axis=1) if self.ess.size else np.empty(0)


def _nan_stat(fn, a: np.ndarray) -> np.ndarray:
    out = np.full(a.shape[1], math.nan)
    for r in range(a.shape[1]):
        col = a[:, r]
        if np.any(np.isfinite(col)):
            out[r] = fn(col[np.isfinite(col)])
    return out


def split_ess(sample: TreeSample, min_freq: float = MIN_FREQ) -> SplitESS:
    """ESS of the indicator of every informative split whose pooled frequency lies in
    ``[min_freq, 1 - min_freq]``, in each run (after burn-in)."""
    index = split_index(sample)
    table = split_table(sample, index=index)
    sel = (table.pooled >= min_freq) & (table.pooled <= 1.0 - min_freq)
    ids = table.ids[sel]
    S = ids.shape[0]
    col = np.full(len(index), -1, np.int64)
    col[ids] = np.arange(S)
    N = sample.parents.shape[1]
    member = np.zeros((sample.n_topologies, max(S, 1)), np.float64)
    node_cols = col[index.node_ids[:, : N - 1]]
    rows, cols = np.nonzero(node_cols >= 0)
    member[rows, node_cols[rows, cols]] = 1.0
    out = np.full((S, sample.n_runs), math.nan)
    if S:
        for r, trace in enumerate(sample.traces):
            out[:, r] = ess(member[trace][:, :S])
    return SplitESS(table.bits[sel], table.pooled[sel], out)


# -- ASDSF over the run --------------------------------------------------------------------


@dataclass
class ASDSFTrace:
    """ASDSF as the runs go.

    Attributes
    ----------
    samples
        Samples per run at each checkpoint (``m``: samples ``0 .. m - 1``; ``m - 1`` is a
        multiple of ``every``).
    cumulative
        ASDSF of samples ``floor(burnin m) .. m - 1`` of each run (MrBayes's, during the run).
    cumulative_splits
        Splits it averages over.
    window_start, window_stop
        Sample ranges of the sliding windows.
    window
        ASDSF of each window's samples.
    window_splits
    burnin, min_freq
        The settings.
    generation
        Generation of each checkpoint's last sample and of each window's first and last, when
        known (else ``None``).
    """

    samples: np.ndarray
    cumulative: np.ndarray
    cumulative_splits: np.ndarray
    window_start: np.ndarray
    window_stop: np.ndarray
    window: np.ndarray
    window_splits: np.ndarray
    burnin: float
    min_freq: float
    generation: np.ndarray | None = None
    window_generation: np.ndarray | None = None


class _SplitCounter:
    """Counts of every split per run over a range of each run's samples."""

    def __init__(self, sample: TreeSample):
        index = split_index(sample)
        N = sample.parents.shape[1]
        n = sample.n_taxa
        sizes = bitsets.popcount(index.bits)
        informative = (sizes > 1) & (sizes < n)
        if not sample.rooted:
            informative &= sizes < n - 1
        self.ids = np.ascontiguousarray(index.node_ids[:, : N - 1])
        self.informative = informative
        self.S = len(index)
        self.traces = sample.traces

    def counts(self, r: int, a: int, b: int) -> np.ndarray:
        trees = self.traces[r][a:b]
        return np.bincount(self.ids[trees].ravel(), minlength=self.S).astype(np.int64)

    def asdsf(self, counts: np.ndarray, n: np.ndarray, min_freq: float) -> tuple[float, int]:
        """ASDSF of per-run counts ``(S, R)`` out of ``n`` trees per run."""
        freq = counts / n[None, :]
        keep = self.informative & (freq.max(axis=1) >= min_freq)
        if not keep.any():
            return math.nan, 0
        return float(freq[keep].std(axis=1, ddof=1).mean()), int(keep.sum())


def asdsf_trace(
    sample: TreeSample,
    every: int | None = None,
    burnin: float = DEFAULT_BURNIN,
    window: int | None = None,
    min_freq: float = MIN_FREQ,
    generations: Sequence[np.ndarray] | None = None,
) -> ASDSFTrace:
    """Cumulative and sliding-window ASDSF of a sample read without burn-in.

    Parameters
    ----------
    sample
        At least two runs, with their whole traces.
    every
        Samples between checkpoints of the cumulative ASDSF (default: about 100 checkpoints).
    burnin
        The relative burn-in of each checkpoint (MrBayes's ``burninfrac``).
    window
        Samples per sliding window (default: a twentieth of the shortest run, at least 10).
    min_freq
        Splits below this frequency in every run are left out (MrBayes's ``minpartfreq``).
    generations
        Per run, the generation of each sample (to label checkpoints), or ``None``.
    """
    if sample.n_runs < 2:
        raise InputError("the ASDSF compares runs; give at least two tree files")
    if not 0.0 <= burnin < 1.0:
        raise InputError(f"a relative burn-in must be in [0, 1), got {burnin}")
    R = sample.n_runs
    C = min(t.shape[0] for t in sample.traces)
    if every is None:
        every = max(1, C // 100)
    if window is None:
        window = max(10, C // 20)
    window = min(window, C)
    counter = _SplitCounter(sample)
    # the last sample of checkpoint j is sample j * every (counting from 0, the starting
    # tree), as MrBayes's diagnostics every diagnfreq generations
    checkpoints = list(range(every + 1, C + 1, every))
    if not checkpoints or checkpoints[-1] != C:
        checkpoints.append(C)
    cum = np.full(len(checkpoints), math.nan)
    cum_s = np.zeros(len(checkpoints), np.int64)
    counts = np.zeros((counter.S, R), np.int64)
    lo = hi = 0
    for c, m in enumerate(checkpoints):
        b = int(burnin * m)
        for r in range(R):
            if m > hi:
                counts[:, r] += counter.counts(r, hi, m)
            if b > lo:
                counts[:, r] -= counter.counts(r, lo, b)
        lo, hi = max(lo, b), m
        n = np.full(R, float(m - lo))
        cum[c], cum_s[c] = counter.asdsf(counts, n, min_freq)
    starts = np.arange(0, C - window + 1, window)
    stops = starts + window
    win = np.full(starts.shape[0], math.nan)
    win_s = np.zeros(starts.shape[0], np.int64)
    for w, (a, b) in enumerate(zip(starts, stops)):
        wc = np.stack([counter.counts(r, a, b) for r in range(R)], axis=1)
        win[w], win_s[w] = counter.asdsf(wc, np.full(R, float(b - a)), min_freq)
    gen = wgen = None
    if generations is not None:
        g = np.asarray(generations[0])
        gen = g[np.array(checkpoints) - 1]
        wgen = np.stack([g[starts], g[stops - 1]], axis=1)
    return ASDSFTrace(
        np.array(checkpoints), cum, cum_s, starts, stops, win, win_s, float(burnin), min_freq,
        gen, wgen,
    )  # fmt: skip


# -- burn-in -------------------------------------------------------------------------------


@dataclass
class BurninSuggestion:
    """A burn-in suggested by MSER-5 (see the module).

    Attributes
    ----------
    samples
        Samples to discard from each run (the largest truncation found).
    fraction
        ``samples`` over the shortest run's length.
    by_trace
        ``{(trace name, run): samples}`` for every trace examined.
    rule
        The rule, in words.
    """

    samples: int
    fraction: float
    by_trace: dict
    rule: str


BURNIN_RULE = (
    "MSER-5 (White 1997): per run, the truncation (within the first half) that minimises the "
    "squared standard error of the mean of the batches of 5 samples kept; applied to the log "
    "likelihood (parameter files) and to each tree's log clade credibility (log split "
    "frequencies of the runs' second halves); the largest over runs and traces"
)


def clade_credibility_trace(sample: TreeSample) -> list[np.ndarray]:
    """Per run, the log clade credibility of each tree with respect to the split frequencies
    of the second halves of all runs pooled (frequency 0 counts as ``1 / (2 n)``)."""
    counter = _SplitCounter(sample)
    counts = np.zeros(counter.S)
    n = 0
    for r, t in enumerate(sample.traces):
        counts += counter.counts(r, t.shape[0] // 2, t.shape[0])
        n += t.shape[0] - t.shape[0] // 2
    freq = np.maximum(counts / n, 1.0 / (2.0 * n))
    logf = np.where(counter.informative, np.log(freq), 0.0)
    score = logf[counter.ids].sum(axis=1)
    return [score[t] for t in sample.traces]


def suggest_burnin(
    sample: TreeSample, log_likelihood: Sequence[np.ndarray] | None = None
) -> BurninSuggestion:
    """MSER-5 burn-in of a sample read without burn-in (and of its log-likelihood traces)."""
    by: dict = {}
    for r, x in enumerate(clade_credibility_trace(sample)):
        by[("log clade credibility", r)] = mser_truncation(x)
    if log_likelihood is not None:
        for r, x in enumerate(log_likelihood):
            by[("log likelihood", r)] = mser_truncation(x)
    samples = max(by.values()) if by else 0
    shortest = min(t.shape[0] for t in sample.traces)
    return BurninSuggestion(samples, samples / shortest, by, BURNIN_RULE)


# -- pooling -------------------------------------------------------------------------------


@dataclass
class PoolingCheck:
    """Whether the runs of a sample agree well enough to be pooled.

    Attributes
    ----------
    asdsf, max_sdsf, n_splits
        ASDSF over splits with frequency >= ``min_freq`` in a run, its largest term, and
        their number.
    missing
        ``[(topology rank, run where frequent, its frequency there, run where absent)]``
        (runs and ranks from 1) for topologies with frequency >= ``topology_freq`` in one run
        and absent from another.
    paths
        The runs' files.
    max_asdsf, topology_freq
        The thresholds.
    """

    asdsf: float
    max_sdsf: float
    n_splits: int
    missing: list
    paths: list
    max_asdsf: float = POOL_MAX_ASDSF
    topology_freq: float = POOL_TOPOLOGY_FREQ

    @property
    def disagree(self) -> bool:
        return bool(self.missing) or (not math.isnan(self.asdsf) and self.asdsf > self.max_asdsf)

    def message(self) -> str | None:
        """The warning, or ``None`` when the runs agree."""
        if not self.disagree:
            return None
        parts = []
        if not math.isnan(self.asdsf) and self.asdsf > self.max_asdsf:
            parts.append(
                f"their ASDSF is {self.asdsf:.4g} (above {self.max_asdsf:g}; {self.n_splits} "
                f"splits, the largest standard deviation {self.max_sdsf:.3g})"
            )
        if self.missing:
            rank, r_in, f, r_out = self.missing[0]
            more = len(self.missing) - 1
            parts.append(
                f"topology {rank} has frequency {f:.3g} in run {r_in} ({self.paths[r_in - 1]}) "
                f"and never occurs in run {r_out} ({self.paths[r_out - 1]})"
                + (f", and {more} more such topolog{'y' if more == 1 else 'ies'}" if more else "")
            )
        return (
            "warning: the runs disagree, so pooling them mixes samples from different "
            "distributions: " + "; ".join(parts) + ". Run the chains longer (or discard more "
            "burn-in), check with 'sbn diagnose', and pool only runs that agree."
        )


def pooling_check(
    sample: TreeSample,
    max_asdsf: float = POOL_MAX_ASDSF,
    topology_freq: float = POOL_TOPOLOGY_FREQ,
    min_freq: float = MIN_FREQ,
) -> PoolingCheck:
    """Check that the runs of ``sample`` (after burn-in) agree before they are pooled."""
    paths = [r.path for r in sample.runs]
    if sample.n_runs < 2:
        return PoolingCheck(math.nan, math.nan, 0, [], paths, max_asdsf, topology_freq)
    table = split_table(sample, min_freq=min_freq)
    if len(table):
        sd = table.sd()
        a, mx = float(sd.mean()), float(sd.max())
    else:
        a = mx = math.nan
    F = sample.run_frequencies()
    missing = []
    for r in range(sample.n_runs):
        frequent = np.nonzero(F[:, r] >= topology_freq)[0]
        for t in frequent:
            for q in range(sample.n_runs):
                if q != r and sample.counts[t, q] == 0:
                    missing.append((int(t) + 1, r + 1, float(F[t, r]), q + 1))
    missing.sort(key=lambda x: -x[2])
    return PoolingCheck(a, mx, len(table), missing, paths, max_asdsf, topology_freq)


def pooling_warning(sample: TreeSample, **thresholds) -> str | None:
    """The warning to print (on standard error) before pooling the runs of ``sample``, or
    ``None`` when they agree; see :func:`pooling_check`."""
    return pooling_check(sample, **thresholds).message()
