"""The plots of ``sbn diagnose --plot PREFIX`` (matplotlib, the ``plot`` extra).

* :func:`plot_split_matrix` (``PREFIX.splits.png``): split frequencies for every pair of
  runs: below the diagonal, run ``j`` against run ``i``, points coloured by the split's
  standard deviation across all runs (colour bar), on bands ``|difference| <= 0.05, 0.1,
  0.2`` drawn in distinct shades; above the diagonal, the pair's ASDSF; on the diagonal,
  the run.
* :func:`plot_asdsf` (``PREFIX.asdsf.png``): the cumulative ASDSF (MrBayes's) and the ASDSF
  of sliding windows over generations (or samples), log scale, with 0.01 and 0.05 marked and
  the suggested burn-in.
* :func:`plot_ess` (``PREFIX.ess.png``): the effective sample sizes per run by each method
  (bars, with 200 marked), and the mean squared tree distance against the lag with its
  fitted exponential, from which the approximate ESS is computed.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .diagnostics import CONVERGED_ASDSF, POOL_MAX_ASDSF
from .splits import MIN_FREQ, split_table
from .traces import GOOD_ESS

BANDS = ((0.2, "#fde0c5"), (0.1, "#facba6"), (0.05, "#f59e72"))


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'phylo[plot]'") from None
    return plt


def _save(fig, path: str) -> None:
    from ..outputs import atomic_open

    plt = _pyplot()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def plot_split_matrix(sample, path: str, min_freq: float = MIN_FREQ) -> None:
    """Split frequencies of every pair of runs of a sample (after burn-in), saved to ``path``.

    Splits are those whose frequency reaches ``min_freq`` in at least one run (the ASDSF's).
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    R = sample.n_runs
    if R < 2:
        raise InputError("the split-frequency plot compares runs; give at least two tree files")
    table = split_table(sample, min_freq=min_freq)
    sd = table.sd()
    vmax = max(float(sd.max()) if len(table) else 0.0, 0.05)
    size = min(2.6 * R, 16.0)
    fig, axes = plt.subplots(R, R, figsize=(size + 1.4, size), squeeze=False)
    sc = None
    for i in range(R):
        for j in range(R):
            ax = axes[i, j]
            if i == j:
                ax.text(
                    0.5, 0.5, f"run {i + 1}\n{sample.runs[i].n_used} trees",
                    ha="center", va="center", fontsize=10, transform=ax.transAxes,
                )  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            if i < j:  # above the diagonal: the pair's ASDSF
                pair = table.freq[:, [i, j]]
                keep = pair.max(axis=1) >= min_freq
                a = float(pair[keep].std(axis=1, ddof=1).mean()) if keep.any() else math.nan
                colour = "#b2182b" if a > POOL_MAX_ASDSF else "0.2"
                ax.text(
                    0.5, 0.5, f"ASDSF\n{a:.4f}\n({int(keep.sum())} splits)",
                    ha="center", va="center", fontsize=9, color=colour, transform=ax.transAxes,
                )  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            x, y = table.freq[:, j], table.freq[:, i]
            for width, colour in BANDS:
                ax.fill_between(
                    [0, 1], [-width, 1 - width], [width, 1 + width], color=colour, lw=0, zorder=0
                )
            ax.plot([0, 1], [0, 1], color="0.35", lw=0.8, zorder=1)
            order = np.argsort(sd)
            sc = ax.scatter(
                x[order], y[order], c=sd[order], cmap="viridis", vmin=0.0, vmax=vmax, s=14,
                edgecolors="k", linewidths=0.2, zorder=2,
            )  # fmt: skip
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_aspect("equal")
            if i == R - 1:
                ax.set_xlabel(f"run {j + 1}", fontsize=9)
            else:
                ax.set_xticklabels([])
            if j == 0:
                ax.set_ylabel(f"run {i + 1}", fontsize=9)
            else:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.08, right=0.84, bottom=0.1, top=0.9, wspace=0.08, hspace=0.08)
    if sc is not None:
        cax = fig.add_axes([0.87, 0.25, 0.025, 0.55])
        cb = fig.colorbar(sc, cax=cax)
        cb.set_label("SD of the split's frequency across runs", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    handles = [Patch(color=c, label=f"|difference| <= {w:g}") for w, c in reversed(BANDS)]
    fig.legend(handles=handles, loc="lower right", fontsize=7, frameon=False, ncol=3)
    fig.suptitle(
        f"Split frequencies ({len(table)} splits with frequency >= {min_freq:g} in a run)",
        fontsize=10,
    )
    _save(fig, path)


def plot_asdsf(diagnosis, path: str) -> None:
    """The ASDSF over the run (cumulative and windows), saved to ``path``."""
    plt = _pyplot()
    t = diagnosis.trace
    if t is None:
        raise InputError("the ASDSF plot compares runs; give at least two tree files")
    step = diagnosis.step
    thin = diagnosis.thin

    def x_of(samples):
        samples = np.asarray(samples, dtype=np.float64)
        if step is None:
            return samples
        return step[0] + step[1] * thin * samples

    fig, ax = plt.subplots(figsize=(7, 4))
    cum_x = x_of(t.samples - 1)
    ok = np.isfinite(t.cumulative) & (t.cumulative > 0)
    ax.plot(cum_x[ok], t.cumulative[ok], "-o", ms=2.5, lw=1.4, color="#1b7837",
            label=f"cumulative (relative burn-in {t.burnin:g}, as MrBayes)")  # fmt: skip
    if t.window.size:
        mid = x_of((t.window_start + t.window_stop - 1) / 2.0)
        okw = np.isfinite(t.window) & (t.window > 0)
        w = int(t.window_stop[0] - t.window_start[0])
        ax.plot(mid[okw], t.window[okw], "-s", ms=3, lw=1.0, color="#762a83",
                label=f"windows of {w} samples")  # fmt: skip
    ax.axhline(CONVERGED_ASDSF, color="0.4", ls="--", lw=0.8)
    ax.axhline(POOL_MAX_ASDSF, color="#b2182b", ls=":", lw=0.8)
    ax.text(ax.get_xlim()[0], CONVERGED_ASDSF, f" {CONVERGED_ASDSF:g}", va="bottom", fontsize=7)
    ax.text(ax.get_xlim()[0], POOL_MAX_ASDSF, f" {POOL_MAX_ASDSF:g}", va="bottom", fontsize=7,
            color="#b2182b")  # fmt: skip
    s = diagnosis.burnin_suggestion
    if s.samples > 0:
        ax.axvline(x_of(s.samples), color="#2166ac", lw=0.8, ls="-.",
                   label=f"suggested burn-in ({s.samples} samples)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("generation" if step is not None else "sample")
    ax.set_ylabel(f"ASDSF (splits >= {t.min_freq:g})")
    ax.legend(fontsize=8)
    ax.set_title("Average standard deviation of split frequencies", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_ess(diagnosis, path: str) -> None:
    """Effective sample sizes and the approximate ESS's distance curves, saved to ``path``."""
    plt = _pyplot()
    from .diagnosis import ess_rows

    d = diagnosis
    R = d.n_runs
    rows = [r for r in ess_rows(d) if r[1] != "pooled"]
    methods = list(dict.fromkeys(r[0] for r in rows))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
    width = 0.8 / R
    colours = plt.get_cmap("tab10")
    ymax = 0.0
    for r in range(R):
        vals = []
        for m in methods:
            v = next(x[3] for x in rows if x[0] == m and x[1] == r + 1)
            vals.append(v if np.isfinite(v) else 0.0)
        pos = np.arange(len(methods)) + (r - (R - 1) / 2) * width
        ax.bar(pos, vals, width * 0.95, color=colours(r), label=f"run {r + 1}")
        for p, m in zip(pos, methods):
            up = next(x[4] for x in rows if x[0] == m and x[1] == r + 1)
            if up:
                ax.text(p, vals[methods.index(m)], "<", ha="center", va="bottom", fontsize=8)
        ymax = max(ymax, max(vals) if vals else 0.0)
    ax.axhline(GOOD_ESS, color="#b2182b", ls="--", lw=0.8)
    ax.text(len(methods) - 0.5, GOOD_ESS, f"{GOOD_ESS:.0f}", color="#b2182b", fontsize=7,
            va="bottom", ha="right")  # fmt: skip
    ax.set_xticks(np.arange(len(methods)))
    ax.set_xticklabels([_wrap(m) for m in methods], fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("effective sample size")
    ax.set_title("ESS per run (after burn-in)", fontsize=10)
    ax.legend(fontsize=8)
    a = d.approx
    if a.lags.size:
        for r in range(R):
            ax2.plot(a.lags, a.sq_distance[r], ".", ms=3, color=colours(r), label=f"run {r + 1}")
            if np.isfinite(a.scale[r]):
                fit = a.asymptote[r] * -np.expm1(-a.lags / a.scale[r])
                ax2.plot(a.lags, fit, "-", lw=1, color=colours(r))
            if a.lag_m[r] <= a.lags[-1]:
                ax2.axvline(a.lag_m[r], color=colours(r), ls=":", lw=0.8)
        ax2.set_xlabel("lag (samples)")
        name = "path" if a.distance == "pd" else "Robinson-Foulds"
        ax2.set_ylabel(f"mean squared {name} distance")
        ax2.set_title("Tree distance against lag, with its exponential fit", fontsize=10)
        ax2.legend(fontsize=8)
        ax2.set_ylim(bottom=0)
    else:
        ax2.text(0.5, 0.5, "too few trees for the approximate ESS", ha="center",
                 transform=ax2.transAxes)  # fmt: skip
        ax2.set_axis_off()
    fig.tight_layout()
    _save(fig, path)


def _wrap(text: str, width: int = 24) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    return "\n".join(lines)
