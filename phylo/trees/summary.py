"""The summary of a tree sample that ``sbn summary`` prints, as plain data.

:func:`summarise` returns a dict (JSON-ready); :func:`format_text` and :func:`format_tsv`
render it for people and for pipelines; :func:`plot_split_frequencies` draws run 1 against
run 2 as convergence tools do.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .splits import MIN_FREQ, split_table


def summarise(sample, top: int = 10, min_freq: float = MIN_FREQ) -> dict:
    """Everything ``sbn summary`` reports about a :class:`~phylo.trees.TreeSample`.

    Keys: ``taxa``, ``rooted``, ``runs`` (file, trees, burn-in, thinning, kept, topologies),
    ``n_topologies``, ``n_trees``, ``top`` (rank, frequency, cumulative, per-run
    frequencies, Newick), ``asdsf``, ``max_sdsf``, ``n_splits_asdsf``, ``min_freq``,
    ``notes``.
    """
    f = sample.frequencies()
    fr = sample.run_frequencies()
    k = min(top, sample.n_topologies)
    cum = np.cumsum(f)
    tops = []
    for i in range(k):
        tops.append(
            {
                "rank": i + 1,
                "frequency": float(f[i]),
                "cumulative": float(cum[i]),
                "run_frequencies": [float(x) for x in fr[i]],
                "newick": sample.newick(i),
            }
        )
    runs = []
    for r, info in enumerate(sample.runs):
        runs.append(
            {
                "file": info.path,
                "trees": info.n_trees,
                "burnin": info.burnin,
                "thin": info.thin,
                "used": info.n_used,
                "weighted": info.weighted,
                "topologies": int(np.count_nonzero(sample.counts[:, r] > 0)),
            }
        )
    asdsf = max_sdsf = float("nan")
    n_splits = 0
    if sample.n_runs >= 2:
        table = split_table(sample, min_freq=min_freq)
        n_splits = len(table)
        if n_splits:
            sd = table.sd()
            asdsf, max_sdsf = float(sd.mean()), float(sd.max())
    credible = {}
    for level in (0.5, 0.9, 0.95, 0.99):
        credible[str(level)] = (
            int(np.searchsorted(cum, level - 1e-12) + 1) if sample.n_topologies else 0
        )
    return {
        "taxa": list(sample.taxa.names),
        "rooted": sample.rooted,
        "runs": runs,
        "n_trees": sample.n_trees,
        "n_topologies": sample.n_topologies,
        "credible_set_sizes": credible,
        "top": tops,
        "asdsf": None if math.isnan(asdsf) else asdsf,
        "max_sdsf": None if math.isnan(max_sdsf) else max_sdsf,
        "n_splits_asdsf": n_splits,
        "min_freq": min_freq,
        "notes": list(sample.notes),
    }


def format_text(s: dict) -> str:
    """A report for a terminal."""
    lines = []
    taxa = s["taxa"]
    shown = ", ".join(taxa[:12]) + (f", ... ({len(taxa) - 12} more)" if len(taxa) > 12 else "")
    lines.append(f"Taxa ({len(taxa)}): {shown}")
    lines.append(f"Topologies are {'rooted' if s['rooted'] else 'unrooted'}.")
    lines.append("")
    width = max(len("file"), *(len(r["file"]) for r in s["runs"]))
    lines.append(
        f"{'run':>3}  {'file':<{width}}  {'trees':>8}  {'burn-in':>8}  {'thin':>4}  "
        f"{'used':>8}  {'topologies':>10}"
    )
    for i, r in enumerate(s["runs"], 1):
        lines.append(
            f"{i:>3}  {r['file']:<{width}}  {r['trees']:>8}  {r['burnin']:>8}  "
            f"{r['thin']:>4}  {r['used']:>8}  {r['topologies']:>10}"
        )
    lines.append("")
    kind = "weighted trees" if s["runs"] and s["runs"][0]["weighted"] else "trees"
    lines.append(f"Unique topologies: {s['n_topologies']} in {s['n_trees']} {kind}")
    cs = s["credible_set_sizes"]
    lines.append(
        "Credible sets: " + ", ".join(f"{float(k):.0%}: {v}" for k, v in cs.items()) + " topologies"
    )
    lines.append("")
    lines.append("Most frequent topologies:")
    multi = len(s["runs"]) > 1
    head = f"{'rank':>4}  {'freq':>8}  {'cum':>6}"
    if multi:
        head += "".join(f"  {'run' + str(i + 1):>7}" for i in range(len(s["runs"])))
    lines.append(head + "  topology")
    for t in s["top"]:
        row = f"{t['rank']:>4}  {t['frequency']:>8.5f}  {t['cumulative']:>6.3f}"
        if multi:
            row += "".join(f"  {x:>7.4f}" for x in t["run_frequencies"])
        lines.append(row + "  " + t["newick"])
    lines.append("")
    if s["asdsf"] is None:
        if len(s["runs"]) < 2:
            lines.append("ASDSF: needs at least two runs")
        else:
            lines.append(f"ASDSF: no split reaches frequency {s['min_freq']} in any run")
    else:
        lines.append(
            f"ASDSF (splits with frequency >= {s['min_freq']:g} in at least one run, "
            f"{s['n_splits_asdsf']} splits): {s['asdsf']:.6f}; "
            f"maximum {s['max_sdsf']:.6f}"
        )
    for note in s["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def format_tsv(s: dict, provenance: dict | None = None) -> str:
    """The topology table as TSV (:mod:`phylo.tables`): the provenance, then the summary
    values as ``#`` lines, then one row per topology."""
    from ..tables import format_value, render

    values = [
        f"taxa: {len(s['taxa'])}",
        f"topologies: {s['n_topologies']}",
        f"trees: {s['n_trees']}",
    ]
    for i, r in enumerate(s["runs"], 1):
        values.append(
            f"run {i}: {r['file']} trees={r['trees']} burnin={r['burnin']} "
            f"thin={r['thin']} used={r['used']} topologies={r['topologies']}"
        )
    values.append(f"asdsf: {format_value(s['asdsf'])}")
    head = ["rank", "frequency", "cumulative"]
    head += [f"run{i + 1}" for i in range(len(s["runs"]))] + ["newick"]
    rows = (
        [t["rank"], t["frequency"], t["cumulative"], *t["run_frequencies"], t["newick"]]
        for t in s["top"]
    )
    return "".join(render(head, rows, provenance, s["notes"], values))


def plot_split_frequencies(sample, path: str, min_freq: float = 0.0) -> None:
    """Scatter plot of split frequencies in run 1 against run 2, saved to ``path``."""
    if sample.n_runs < 2:
        raise InputError("--plot compares two runs; give at least two tree files")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'phylo[plot]'") from None
    table = split_table(sample, min_freq=min_freq)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, zorder=0)
    for band in (0.1, 0.2):
        ax.fill_between([0, 1], [-band, 1 - band], [band, 1 + band], color="0.9", zorder=-1)
    sd = table.sd()
    ax.scatter(table.freq[:, 0], table.freq[:, 1], s=12, c=sd, cmap="viridis_r", edgecolors="none")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"split frequency, run 1 ({sample.runs[0].path})")
    ax.set_ylabel(f"split frequency, run 2 ({sample.runs[1].path})")
    asdsf = sample.asdsf()
    ax.set_title(f"{len(table)} splits; ASDSF {asdsf:.4f}", fontsize=10)
    fig.tight_layout()
    from ..outputs import atomic_open

    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
    plt.close(fig)
