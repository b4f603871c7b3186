"""What ``sbn diagnose`` reports, as data: :func:`diagnose` runs every diagnostic of
:mod:`phylo.trees.diagnostics` and :mod:`phylo.trees.traces` on a sample, and
:func:`format_text`, :func:`to_dict` and :func:`tables` render the result for people and
pipelines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .diagnostics import (
    CONVERGED_ASDSF,
    MAX_LAG,
    MIN_LAGS,
    ApproximateESS,
    ASDSFTrace,
    BurninSuggestion,
    PoolingCheck,
    SplitESS,
    approximate_ess,
    asdsf_trace,
    burnin_trees,
    log_prob_ess,
    pooling_check,
    split_ess,
    subsample,
    suggest_burnin,
)
from .sample import DEFAULT_BURNIN, TreeSample, parse_burnin
from .splits import MIN_FREQ
from .traces import GOOD_ESS, MAX_PSRF, ParameterSummary, ParameterTrace, summarise_parameters

#: Names of a log-likelihood column in parameter files (lower case).
LNL_COLUMNS = ("lnl", "likelihood", "loglikelihood", "log_likelihood")


@dataclass
class Diagnosis:
    """Everything ``sbn diagnose`` reports.

    Attributes
    ----------
    paths, n_trees
        Per run: the file and its number of trees.
    thin
        The thinning (every ``thin``-th tree of the files is a sample).
    burnin, used
        Per run: samples discarded and kept.
    approx
        :class:`~phylo.trees.diagnostics.ApproximateESS` after burn-in.
    log_prob
        Per run: ESS of the trees' log probabilities under SBN-SA fitted to the runs pooled.
    splits
        :class:`~phylo.trees.diagnostics.SplitESS` after burn-in.
    pooling
        :class:`~phylo.trees.diagnostics.PoolingCheck` after burn-in (its ``asdsf`` is the
        ASDSF of the samples kept).
    trace
        :class:`~phylo.trees.diagnostics.ASDSFTrace` over the whole runs (``None`` for one run).
    parameters
        :class:`~phylo.trees.traces.ParameterSummary` of the tree length and of every column of
        the parameter files, after burn-in.
    burnin_suggestion
        :class:`~phylo.trees.diagnostics.BurninSuggestion` from the whole runs.
    step
        Generations between samples of the files (with the first generation), when known.
    notes
    """

    paths: list
    n_trees: list
    thin: int
    burnin: list
    used: list
    approx: ApproximateESS
    log_prob: np.ndarray
    splits: SplitESS
    pooling: PoolingCheck
    trace: ASDSFTrace | None
    parameters: list[ParameterSummary]
    burnin_suggestion: BurninSuggestion
    step: tuple[int, int] | None = None
    notes: list = field(default_factory=list)

    @property
    def n_runs(self) -> int:
        return len(self.paths)


def tree_lengths(sample: TreeSample) -> list[np.ndarray] | None:
    """Per run, the sum of the branch lengths of each tree (``None`` without lengths)."""
    if sample.lengths is None:
        return None
    N = sample.parents.shape[1]
    out = [L[:, : N - 1].sum(axis=1) for L in sample.lengths]
    if any(np.isnan(x).any() for x in out):
        return None
    return out


def _parameter_rows(p: ParameterTrace, n_trees: int, thin: int) -> np.ndarray:
    """The rows of a parameter file that go with the kept trees: every ``thin``-th when the
    file has a row per tree."""
    return p.values[::thin] if p.n_samples == n_trees else p.values


def diagnose(
    sample: TreeSample,
    burnin=None,
    parameters: Sequence[ParameterTrace] | None = None,
    step: tuple[int, int] | None = None,
    distance: str = "pd",
    max_lag: int = MAX_LAG,
    pairs: int | None = None,
    rng: np.random.Generator | None = None,
    every: int | None = None,
    window: int | None = None,
    min_freq: float = MIN_FREQ,
) -> Diagnosis:
    """All the diagnostics of a sample read without burn-in.

    Parameters
    ----------
    sample
        The runs' whole traces (``read_trees(files, burnin=0, thin=t)``; with
        ``lengths=True`` the tree length gets a PSRF and ESS).
    burnin
        Per run, as for :func:`phylo.trees.read_trees` (default 25%): applied to the ESS,
        PSRF, final ASDSF and pooling check; the ASDSF over the run (whose relative burn-in
        is this fraction, or 0.25 for a count) and the burn-in suggestion look at whole runs.
    parameters
        One parameter file per run (MrBayes ``.p``), or ``None``.
    step
        ``(first, step)`` generations of the samples of the files, to label the ASDSF
        checkpoints with generations (see :func:`~phylo.trees.diagnostics.sampling_interval`).
    distance, max_lag, pairs, rng
        For :func:`~phylo.trees.diagnostics.approximate_ess`.
    every, window, min_freq
        For :func:`~phylo.trees.diagnostics.asdsf_trace`.
    """
    if sample.weighted:
        raise InputError(
            "convergence diagnostics need the sampled trees in order (.t or .trees files), "
            "not weighted summaries (.trprobs)"
        )
    R = sample.n_runs
    thin = sample.runs[0].thin
    n_samples = [t.shape[0] for t in sample.traces]
    burn = [burnin_trees(burnin, n, thin) for n in n_samples]
    kept = subsample(sample, burn)
    notes: list[str] = []
    approx = approximate_ess(kept, distance, max_lag, pairs, rng)
    if approx.lags.shape[0] == 0:
        notes.append(
            f"the approximate ESS needs at least {100 + MIN_LAGS} trees per run after burn-in "
            "(RWTY's rule), so it is not given"
        )
    lp = log_prob_ess(kept)
    sp = split_ess(kept, min_freq)
    pool = pooling_check(kept, min_freq=min_freq)
    trace = None
    if R >= 2:
        b = parse_burnin(burnin)
        rel = b if isinstance(b, float) else DEFAULT_BURNIN
        gens = None
        if step is not None:
            gens = [step[0] + step[1] * thin * np.arange(n) for n in n_samples]
        trace = asdsf_trace(sample, every, rel, window, min_freq, gens)
    per_run: list[dict[str, np.ndarray]] = [{} for _ in range(R)]
    names: list[str] = []
    tl = tree_lengths(kept)
    if tl is not None:
        names.append("tree length")
        for r in range(R):
            per_run[r]["tree length"] = tl[r]
    lnl = None
    if parameters is not None:
        if len(parameters) != R:
            raise InputError(f"give one parameter file per tree file ({R}), not {len(parameters)}")
        cols = parameters[0].names
        for p in parameters[1:]:
            if p.names != cols:
                raise InputError(
                    f"the parameter files have different columns ({parameters[0].path}: "
                    f"{', '.join(cols)}; {p.path}: {', '.join(p.names)})",
                    p.path,
                )
        names += cols
        rows = [_parameter_rows(p, sample.runs[r].n_trees, thin) for r, p in enumerate(parameters)]
        for r, p in enumerate(parameters):
            if rows[r].shape[0] != n_samples[r]:
                notes.append(
                    f"{p.path} has {p.n_samples} samples and its tree file "
                    f"{sample.runs[r].n_trees} trees; the burn-in is applied to each separately"
                )
            b = burnin_trees(burnin, rows[r].shape[0], thin)
            for j, c in enumerate(cols):
                per_run[r][c] = rows[r][b:, j]
        hits = [j for j, c in enumerate(cols) if c.lower() in LNL_COLUMNS]
        if hits:
            lnl = [x[:, hits[0]] for x in rows]
    params = summarise_parameters(per_run, names) if names else []
    return Diagnosis(
        [r.path for r in sample.runs],
        [r.n_trees for r in sample.runs],
        thin,
        burn,
        [r.n_used for r in kept.runs],
        approx,
        lp,
        sp,
        pool,
        trace,
        params,
        suggest_burnin(sample, lnl),
        step,
        notes + list(sample.notes),
    )


# -- reports -------------------------------------------------------------------------------


def _sum(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(x.sum()) if x.size and np.all(np.isfinite(x)) else math.nan


def ess_rows(d: Diagnosis) -> list[list]:
    """Rows ``[method, run, file, ess, upper_bound]`` of the ESS table; ``run`` is 1..R or
    ``pooled`` (the sum over runs; for split indicators, the median over splits of the
    sums)."""
    rows = []
    dist = "path distance" if d.approx.distance == "pd" else "Robinson-Foulds distance"
    approx = f"approximate topological ESS ({dist})"
    for r in range(d.n_runs):
        rows.append(
            [approx, r + 1, d.paths[r], float(d.approx.ess[r]), bool(d.approx.upper_bound[r])]
        )
    rows.append([approx, "pooled", None, d.approx.pooled, bool(np.any(d.approx.upper_bound))])
    for r in range(d.n_runs):
        rows.append(["SBN log probability", r + 1, d.paths[r], float(d.log_prob[r]), False])
    rows.append(["SBN log probability", "pooled", None, _sum(d.log_prob), False])
    n = d.splits.ess.shape[0]
    med, mn = d.splits.median(), d.splits.minimum()
    for label, values in (
        (f"split indicators (median of {n})", med),
        (f"split indicators (minimum of {n})", mn),
    ):
        for r in range(d.n_runs):
            rows.append([label, r + 1, d.paths[r], float(values[r]), False])
        pooled = d.splits.pooled()
        stat = np.median if "median" in label else np.min
        rows.append(
            [label, "pooled", None, float(stat(pooled)) if pooled.size else math.nan, False]
        )
    for p in d.parameters:
        for r in range(d.n_runs):
            rows.append([p.name, r + 1, d.paths[r], float(p.ess[r]), False])
        rows.append([p.name, "pooled", None, p.pooled_ess, False])
    return rows


def warnings(d: Diagnosis) -> list[str]:
    """What to act on, one line each (the pooling warning first)."""
    out = []
    msg = d.pooling.message()
    if msg:
        out.append(msg)
    elif not math.isnan(d.pooling.asdsf) and d.pooling.asdsf > CONVERGED_ASDSF:
        out.append(
            f"warning: the ASDSF is {d.pooling.asdsf:.4g}, above {CONVERGED_ASDSF:g} (the value "
            "MrBayes's documentation asks for): the runs may not have converged yet"
        )
    low = []
    for name, values in (
        ("approximate topological", d.approx.ess),
        ("SBN log probability", d.log_prob),
    ):
        for r, v in enumerate(values):
            if np.isfinite(v) and v < GOOD_ESS:
                low.append(f"{name} {v:.0f} in run {r + 1}")
    for p in d.parameters:
        for r, v in enumerate(p.ess):
            if np.isfinite(v) and v < GOOD_ESS:
                low.append(f"{p.name} {v:.0f} in run {r + 1}")
    if low:
        more = f", and {len(low) - 6} more" if len(low) > 6 else ""
        out.append(
            f"warning: effective sample sizes below {GOOD_ESS:.0f}: {', '.join(low[:6])}{more}; "
            "run the chains longer"
        )
    if np.any(d.approx.upper_bound):
        runs = ", ".join(str(r + 1) for r in np.nonzero(d.approx.upper_bound)[0])
        out.append(
            f"warning: the approximate ESS of run {runs} is an upper bound: the tree distances "
            "did not level off within the lags examined (raise --max-lag)"
        )
    bad = [p for p in d.parameters if np.isfinite(p.psrf) and p.psrf > MAX_PSRF]
    if bad:
        out.append(
            f"warning: PSRF above {MAX_PSRF:g}: "
            + ", ".join(f"{p.name} {p.psrf:.4f}" for p in bad)
            + "; the runs have not converged for these"
        )
    s = d.burnin_suggestion
    if s.samples > min(d.burnin):
        out.append(
            f"warning: the suggested burn-in ({s.samples} samples per run) is larger than the one "
            f"used ({min(d.burnin)}); try --burnin {s.samples * d.thin}"
        )
    return out


def _cell(x, digits: int = 4) -> str:
    if x is None:
        return "NA"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "NA"
        if math.isinf(x):
            return "inf"
        return f"{x:.{digits}g}" if abs(x) < 1e5 else f"{x:.0f}"
    return str(x)


def format_text(d: Diagnosis) -> str:
    """The report for a terminal."""
    R = d.n_runs
    out = []
    width = max(len("file"), *(len(p) for p in d.paths))
    out.append(
        f"{'run':>3}  {'file':<{width}}  {'trees':>8}  {'burn-in':>8}  {'thin':>4}  {'used':>8}"
    )
    for r in range(R):
        out.append(
            f"{r + 1:>3}  {d.paths[r]:<{width}}  {d.n_trees[r]:>8}  {d.burnin[r] * d.thin:>8}  "
            f"{d.thin:>4}  {d.used[r]:>8}"
        )
    out.append("")
    out.append("Effective sample sizes after burn-in ('<': an upper bound)")
    cols = [f"run{r + 1}" for r in range(R)] + (["pooled"] if R > 1 else [])
    table: dict[str, dict] = {}
    for method, run, _, value, upper in ess_rows(d):
        if run == "pooled" and R == 1:
            continue
        key = f"run{run}" if run != "pooled" else "pooled"
        table.setdefault(method, {})[key] = ("<" if upper else "") + _cell(value, 4)
    mw = max(len(m) for m in table)
    out.append(f"  {'':<{mw}}" + "".join(f"  {c:>9}" for c in cols))
    for method, cells in table.items():
        out.append(f"  {method:<{mw}}" + "".join(f"  {cells.get(c, ''):>9}" for c in cols))
    out.append("")
    pc = d.pooling
    if R >= 2 and d.trace is not None:
        t = d.trace
        out.append(
            f"ASDSF after burn-in: {_cell(pc.asdsf, 6)} over {pc.n_splits} splits with frequency "
            f">= {t.min_freq:g} in a run (largest standard deviation {_cell(pc.max_sdsf, 4)})"
        )
        stays = next(
            (
                i
                for i in range(t.cumulative.shape[0])
                if np.all(t.cumulative[i:] <= CONVERGED_ASDSF)
            ),
            None,
        )
        if stays is None:
            when = f"never at most {CONVERGED_ASDSF:g}"
        else:
            when = f"at most {CONVERGED_ASDSF:g} from sample {int(t.samples[stays]) - 1}"
            if t.generation is not None:
                when += f" (generation {int(t.generation[stays])})"
        out.append(
            f"ASDSF during the runs (MrBayes's, relative burn-in {t.burnin:g}, every "
            f"{int(t.samples[1] - t.samples[0]) if t.samples.shape[0] > 1 else t.samples[0]} "
            f"samples): {when}; at the end {_cell(t.cumulative[-1], 4)}"
        )
        if t.window.size:
            w = int(t.window_stop[0] - t.window_start[0])
            out.append(
                f"ASDSF in windows of {w} samples: " + ", ".join(_cell(x, 2) for x in t.window)
            )
    else:
        out.append("ASDSF: needs at least two runs")
    if d.parameters:
        out.append("")
        out.append("Numeric traces after burn-in")
        nw = max(len("parameter"), *(len(p.name) for p in d.parameters))
        out.append(
            f"  {'parameter':<{nw}}  {'mean':>12}  {'variance':>12}  {'PSRF':>8}"
            + "".join(f"  {'ESS' + str(r + 1):>8}" for r in range(R))
        )
        for p in d.parameters:
            out.append(
                f"  {p.name:<{nw}}  {_cell(p.mean, 7):>12}  {_cell(p.variance, 5):>12}  "
                f"{_cell(p.psrf, 5):>8}" + "".join(f"  {_cell(float(x), 4):>8}" for x in p.ess)
            )
    out.append("")
    s = d.burnin_suggestion
    out.append(
        f"Suggested burn-in: {s.samples} samples per run ({s.fraction:.1%} of the shortest run)"
        + (f", --burnin {s.samples * d.thin} trees" if d.thin > 1 else "")
    )
    out.append(f"  rule: {s.rule}")
    for w in warnings(d):
        out.append(w)
    for note in d.notes:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"


def _num(x):
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if math.isnan(x) else (str(x) if math.isinf(x) else x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _list(a) -> list:
    return [_num(v) for v in np.asarray(a).tolist()] if a is not None else None


def to_dict(d: Diagnosis) -> dict:
    """The diagnosis as JSON-ready data (missing values ``None``)."""
    t = d.trace
    return {
        "runs": [
            {"file": p, "trees": n, "burnin_samples": b, "thin": d.thin, "used": u}
            for p, n, b, u in zip(d.paths, d.n_trees, d.burnin, d.used)
        ],
        "ess": [
            {"method": m, "run": run, "ess": _num(v), "upper_bound": ub}
            for m, run, _, v, ub in ess_rows(d)
        ],
        "approximate_ess": {
            "distance": d.approx.distance,
            "lags": _list(d.approx.lags),
            "mean_squared_distance": [_list(x) for x in d.approx.sq_distance],
            "fit_asymptote": _list(d.approx.asymptote),
            "fit_scale": _list(d.approx.scale),
            "lag_m": _list(d.approx.lag_m),
        },
        "asdsf": _num(d.pooling.asdsf),
        "max_sdsf": _num(d.pooling.max_sdsf),
        "n_splits": d.pooling.n_splits,
        "asdsf_trace": None
        if t is None
        else {
            "burnin": t.burnin,
            "min_freq": t.min_freq,
            "samples": _list(t.samples),
            "generation": _list(t.generation),
            "cumulative": _list(t.cumulative),
            "splits": _list(t.cumulative_splits),
            "window_start": _list(t.window_start),
            "window_stop": _list(t.window_stop),
            "window": _list(t.window),
        },
        "parameters": [
            {
                "name": p.name,
                "mean": _num(p.mean),
                "variance": _num(p.variance),
                "psrf": _num(p.psrf),
                "ess": _list(p.ess),
            }
            for p in d.parameters
        ],
        "burnin_suggestion": {
            "samples": d.burnin_suggestion.samples,
            "fraction": d.burnin_suggestion.fraction,
            "rule": d.burnin_suggestion.rule,
        },
        "pooling": {
            "disagree": d.pooling.disagree,
            "missing_topologies": [
                {"rank": a, "run_frequent": b, "frequency": c, "run_absent": e}
                for a, b, c, e in d.pooling.missing
            ],
        },
        "warnings": warnings(d),
        "notes": list(d.notes),
    }


def tables(d: Diagnosis) -> dict[str, tuple[list[str], list[list]]]:
    """``{name: (columns, rows)}`` for :func:`phylo.tables.write_table`: ``ess``, ``asdsf``
    (the cumulative checkpoints and the windows), ``parameters``."""
    out = {}
    out["ess"] = (["method", "run", "file", "ess", "upper_bound"], ess_rows(d))
    rows = []
    t = d.trace
    if t is not None:
        for i, m in enumerate(t.samples):
            first = int(t.burnin * m)
            g0 = g1 = None
            if d.step is not None:
                g0 = d.step[0] + d.step[1] * d.thin * first
                g1 = d.step[0] + d.step[1] * d.thin * (int(m) - 1)
            rows.append(
                ["cumulative", first, int(m) - 1, g0, g1, _num(t.cumulative[i]),
                 int(t.cumulative_splits[i])]
            )  # fmt: skip
        for i in range(t.window.shape[0]):
            g0 = g1 = None
            if t.window_generation is not None:
                g0, g1 = (int(x) for x in t.window_generation[i])
            rows.append(
                ["window", int(t.window_start[i]), int(t.window_stop[i]) - 1, g0, g1,
                 _num(t.window[i]), int(t.window_splits[i])]
            )  # fmt: skip
    out["asdsf"] = (
        [
            "kind",
            "first_sample",
            "last_sample",
            "first_generation",
            "last_generation",
            "asdsf",
            "splits",
        ],
        rows,
    )
    cols = ["parameter", "mean", "variance", "psrf"] + [f"ess_run{r + 1}" for r in range(d.n_runs)]
    out["parameters"] = (
        cols + ["ess_pooled"],
        [
            [p.name, p.mean, p.variance, p.psrf, *[float(x) for x in p.ess], p.pooled_ess]
            for p in d.parameters
        ],
    )
    return out
