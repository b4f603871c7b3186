"""Trees x estimators x replicates as independent tasks: ``marglik compare``.

Each task runs one estimator once on the posterior of one topology.  Its random stream comes
from :func:`phylo.execution.task_rng` keyed by ``(tree, method, replicate)`` and the user's
seed, and every task builds its own :class:`~phylo.marglik.posterior.Posterior`, so a result
does not depend on which process ran it, or what that process ran before: the table is the
same for any ``--jobs``, on Dask, or split in shards.

The summary follows Fourment et al. (2020): under a uniform prior on the topologies the
posterior of topology ``i`` is ``exp(m_i) / sum_j exp(m_j)``, for log marginal likelihoods
``m``; given reference frequencies (a credible set from long MCMC runs), each method's
replicate ``r`` gives ``KL(reference || estimate_r)`` over the trees both hold.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp

from ..errors import InputError

COLUMNS = (
    "tree",
    "method",
    "replicate",
    "log_ml",
    "se",
    "seconds",
    "evaluations",
    "ess",
    "diagnostics",
)
N_KEY = 3
TIMING_COLUMNS = ("seconds",)


# -- inputs --------------------------------------------------------------------------------


def read_topologies(path: str, taxa=None, max_trees: int | None = None):
    """The topologies of a tree file, in file order, and their frequencies when the file
    gives them.

    A credible set (``frequency<TAB>newick`` per line, as in the "19 dubious ways" data)
    gives its trees and frequencies as listed.  A table with a ``newick`` column (``sbn
    top``, ``sbn sample --log-prob``, ``sbn summary --format tsv``) and other tree files
    (Newick, one tree per line; NEXUS trees blocks) give every distinct topology in the
    order it first appears, with the branch lengths first seen as starting values; a
    table's ``frequency`` or ``probability`` column gives the frequencies.  ``max_trees``
    keeps the first ones.  Returns ``(trees, frequencies or None)``.
    """
    trees, freqs = _read_topologies(path, taxa)
    if max_trees is not None:
        trees = trees[:max_trees]
        freqs = None if freqs is None else freqs[:max_trees]
    return trees, freqs


def _read_topologies(path: str, taxa=None):
    from ..trees import Tree
    from ..trees.files import read_text
    from ..trees.listing import list_kind, read_tree_list

    kind = list_kind(read_text(path).splitlines())
    if kind == "credible-set":
        return read_tree_list(path, taxa)
    if kind == "table":
        listed, weights = read_tree_list(path, taxa)
        trees, freqs, where = [], [], {}
        for i, t in enumerate(listed):
            key = t.unrooted().topology_key() if t.rooted else t.topology_key()
            if key in where:
                if weights is not None:
                    freqs[where[key]] += weights[i]
                continue
            where[key] = len(trees)
            trees.append(t)
            if weights is not None:
                freqs.append(weights[i])
        return trees, (np.array(freqs) if weights is not None else None)
    from ..trees import read_trees

    sample = read_trees(path, burnin=0, lengths=True, taxa=taxa)
    trees, seen = [], set()
    for run, trace in enumerate(sample.traces):
        for pos, topo in enumerate(trace):
            topo = int(topo)
            if topo in seen:
                continue
            seen.add(topo)
            bl = None
            if sample.lengths is not None:
                lengths = np.asarray(sample.lengths[run][pos], dtype=np.float64)
                if np.all(np.isfinite(lengths[:-1])):
                    bl = lengths
            trees.append(Tree(sample.taxa, sample.parents[topo], bl, sample.rooted))
    if not trees:
        raise InputError("no tree found", path)
    return trees, None


def reference_frequencies(path: str, trees) -> np.ndarray:
    """Frequencies of ``trees`` in a reference (0 where a tree is absent): a credible set or
    a table with frequencies (see :func:`read_topologies`), or any tree sample (MrBayes
    ``.trprobs`` weights; ``.t`` runs after the default 25% burn-in), pooled over its
    runs.

    Topologies are matched as unrooted trees, taxa by name, whatever order either file
    lists them in (renaming and unrooting are array operations, no Newick round trip).
    """
    from ..trees.files import read_text
    from ..trees.listing import list_kind

    taxa = trees[0].taxa
    if list_kind(read_text(path).splitlines()[:40]) is None:
        from ..trees import read_trees

        sample = read_trees(path, taxa=taxa)
        f = sample.frequencies()
        idx = [sample.index_of(t) for t in trees]
        return np.array([f[i] if i >= 0 else 0.0 for i in idx])
    ref_trees, freqs = read_topologies(path, taxa=taxa)
    if freqs is None:
        raise InputError("the reference lists trees without frequencies", path)
    where: dict[bytes, float] = {}
    for t, f in zip(ref_trees, freqs):
        where.setdefault(_unrooted_key(t, taxa), float(f))
    return np.array([where.get(_unrooted_key(t, taxa), 0.0) for t in trees])


def _unrooted_key(tree, taxa) -> bytes:
    """The canonical unrooted parent array of ``tree`` on ``taxa``, as bytes."""
    tree = tree.unrooted()
    if tree.taxa != taxa:
        tree = tree.reorder_taxa(taxa)
    return tree.parent.tobytes()


def reference_for(reference: str | None, trees: str, max_trees: int | None = None):
    """Frequencies of the run's topologies (``trees``, its first ``max_trees``) in the
    ``reference`` file, or ``None`` without one; an error when none of them is in it."""
    if reference is None:
        return None
    ref = reference_frequencies(reference, read_topologies(trees, None, max_trees)[0])
    if not ref.any():
        raise InputError("none of the trees is in the reference", reference)
    return ref


def kl_to_reference(reference: np.ndarray, log_ml: np.ndarray) -> float:
    """KL(p || q) with p the normalised reference frequencies and q the posterior implied by
    ``log_ml`` under a uniform topology prior, both over the trees with p > 0 (a tree without
    an estimate makes it infinite)."""
    p = np.asarray(reference, dtype=np.float64)
    m = np.asarray(log_ml, dtype=np.float64)
    keep = p > 0
    p, m = p[keep], m[keep]
    if not np.all(np.isfinite(m)):
        return math.inf
    p = p / p.sum()
    logq = m - logsumexp(m)
    return float(np.sum(p * (np.log(p) - logq)))


def topology_posterior(log_ml: np.ndarray) -> np.ndarray:
    m = np.asarray(log_ml, dtype=np.float64)
    ok = np.isfinite(m)
    out = np.zeros_like(m)
    if ok.any():
        out[ok] = np.exp(m[ok] - logsumexp(m[ok]))
    return out


# -- tasks ---------------------------------------------------------------------------------


class CompareContext:
    """What tasks share in one process: the alignment and the topologies."""

    def __init__(
        self,
        alignment,
        trees,
        model_spec: dict,
        prior_spec: str | None,
        settings: dict,
        seed: int,
        batch_threads: int | None,
        max_trees: int | None = None,
    ):
        from ..likelihood import read_alignment

        # paths (read here, once per worker process) or objects already read
        self.alignment = read_alignment(alignment) if isinstance(alignment, str) else alignment
        self.trees = read_topologies(trees, None, max_trees)[0] if isinstance(trees, str) else trees
        self.model_spec = dict(model_spec)
        self.prior_spec = prior_spec
        self.settings = {m: dict(s) for m, s in settings.items()}
        self.seed = int(seed)
        self.batch_threads = batch_threads

    def posterior(self, i: int):
        from .parameters import model_prior
        from .posterior import Posterior

        return Posterior(
            self.alignment,
            self.trees[i],
            model_prior(self.model_spec, self.prior_spec),
            batch_threads=self.batch_threads,
        )


def setup(*args) -> CompareContext:
    return CompareContext(*args)


def _diagnostics_text(d: dict) -> str:
    parts = []
    for k in sorted(d):
        v = d[k]
        if isinstance(v, (float, np.floating)):
            v = f"{float(v):.6g}"
        elif isinstance(v, (list, tuple, np.ndarray)):
            continue
        text = str(v).replace("\t", " ").replace("\n", " ").replace(";", ",")
        parts.append(f"{k}={text}")
    return ";".join(parts)


def run_task(ctx: CompareContext, key: tuple) -> dict:
    """Estimate log p(D | tree ``key[0]``) with method ``key[1]``, replicate ``key[2]``."""
    from ..execution import task_rng
    from .estimators import run

    tree, method, rep = key
    post = ctx.posterior(tree - 1)
    rng = task_rng(ctx.seed, key)
    est = run(method, post, rng, **ctx.settings.get(method, {}))
    if post.replaced_start.size:
        est.diagnostics["start_replaced"] = int(post.replaced_start.size)
    ess = est.diagnostics.get("ess", est.diagnostics.get("min_ess"))
    return {
        "tree": tree,
        "method": method,
        "replicate": rep,
        "log_ml": float(est.log_ml),
        "se": None if est.se is None or math.isnan(est.se) else float(est.se),
        "seconds": round(est.seconds, 4),
        "evaluations": int(est.n_evaluations),
        "ess": None if ess is None else float(f"{float(ess):.6g}"),
        "diagnostics": _diagnostics_text(est.diagnostics),
    }


def _settings_text(d: dict) -> str:
    import json

    return json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)


def comparison(
    alignment: str,
    trees: str,
    methods: str | Sequence[str] = "gl,glis",
    replicates: int = 1,
    settings: Sequence[str] = (),
    model: dict | None = None,
    prior: str | Sequence[str] | None = "exp:10",
    seed: int | None = None,
    max_trees: int | None = None,
    threads: int | None = None,
    output: str | None = None,
):
    """The run of ``marglik compare``: every (tree, method, replicate) as one task.

    Checks everything before any task runs (the methods and their ``--set`` settings, the
    model, the prior, the alignment, the trees and that their taxa match the alignment's)
    and returns a :class:`phylo.execution.Comparison` for
    :func:`phylo.execution.run_comparison`.

    Parameters
    ----------
    alignment, trees
        Paths of the alignment and of the topologies (see :func:`read_topologies`).
    methods
        Comma-separated estimator names, a list of them, or ``"all"``.
    replicates
        Independent runs of each method on each tree.
    settings
        ``METHOD.KEY=VALUE`` or ``KEY=VALUE`` overrides (see :func:`parse_settings`).
    model
        A :func:`phylo.likelihood.model_spec` dict (default JC69): the parameters it does
        not fix are integrated out under their priors.
    prior
        ``--prior`` options, one string or several (:mod:`phylo.marglik.parameters`): the
        branch-length prior (``exp:10``) and priors on the model's parameters or their fixed
        values (``kappa=beta:1,1``, ``shape=fixed:0.5``); the parameters not named take
        MrBayes's default priors.
    seed
        The seed; ``None`` takes the seed of ``output`` when resuming it, else a fresh one
        (:func:`phylo.execution.choose_seed`).
    max_trees
        Only the first trees of ``trees``.
    threads
        Threads per task for batched likelihoods (results do not depend on it).
    """
    from ..execution import Comparison, choose_seed
    from ..likelihood import model_spec, read_alignment
    from ..provenance import file_digest, record
    from ..trees.taxa import check_same_taxa
    from .parameters import model_prior, prior_texts

    method_list = check_methods(methods if isinstance(methods, str) else ",".join(methods))
    opts = parse_settings(settings, method_list)
    model = model_spec() if model is None else dict(model)
    prior = prior_texts(prior)
    model_prior(model, prior)  # a bad prior is an error before any task runs
    aln = read_alignment(alignment)
    topologies, _ = read_topologies(trees, None, max_trees)
    check_same_taxa(topologies[0].taxa, aln.taxa, trees, alignment)  # before any task runs
    seed = choose_seed(seed, output)
    free = model_prior(model, prior).free
    identity = [
        f"alignment={file_digest(alignment)[:16]}",
        f"trees={file_digest(trees)[:16]}",
        f"max_trees={max_trees}",
        f"methods={','.join(method_list)}",
        f"replicates={replicates}",
        f"settings={_settings_text(opts)}",
        f"model={_settings_text(model)}",
        f"prior={prior_identity(prior)}",
        *([f"integrated={','.join(free)}"] if free else []),
        f"seed={seed}",
    ]
    prov = record(
        inputs=[alignment, trees],
        seed=seed,
        parameters={
            "methods": ",".join(method_list),
            "replicates": replicates,
            "model": model_prior(model, prior).describe(),
        },
    )
    return Comparison(
        COLUMNS,
        N_KEY,
        task_keys(len(topologies), method_list, replicates),
        run_task,
        setup,
        (alignment, trees, model, prior, opts, seed, threads, max_trees),
        identity,
        prov,
        TIMING_COLUMNS,
    )


def estimate(
    alignment: str,
    trees: str,
    method: str,
    settings: Sequence[str] = (),
    model: dict | None = None,
    prior: str | Sequence[str] | None = "exp:10",
    seed: int | None = None,
) -> tuple[int, list[dict]]:
    """Estimate log p(alignment | tree) of every topology in ``trees`` with one method.

    Tree ``i`` runs as task ``(i, method, 1)`` of :func:`comparison`, so with the same seed
    it gives the number replicate 1 of ``marglik compare`` gives.  Returns the seed used (a
    fresh one when ``seed`` is ``None``) and one row per tree with the columns of
    :data:`COLUMNS`.
    """
    from ..execution import fresh_seed
    from ..likelihood import model_spec, read_alignment
    from .parameters import model_prior, prior_texts

    method_list = check_methods(method)
    if len(method_list) != 1:
        raise InputError("--method takes one estimator (use `marglik compare` for several)")
    name = method_list[0]
    opts = parse_settings(settings, [name])
    model = model_spec() if model is None else dict(model)
    prior = prior_texts(prior)
    model_prior(model, prior)
    aln = read_alignment(alignment)
    topologies, _ = read_topologies(trees)
    seed = fresh_seed() if seed is None else int(seed)
    ctx = CompareContext(aln, topologies, model, prior, opts, seed, None)
    return seed, [run_task(ctx, (i + 1, name, 1)) for i in range(len(topologies))]


def start_notes(path: str, rows: Sequence[dict]) -> list[str]:
    """One note per tree of ``path`` whose given branch lengths could not start a sampler
    (zero, negative, NaN or infinite), found in the rows' diagnostics: the estimators started
    those branches at the distance fit (:attr:`phylo.marglik.posterior.Posterior.start`)."""
    counts: dict[int, int] = {}
    for row in rows:
        for part in str(row.get("diagnostics") or "").split(";"):
            if part.startswith("start_replaced="):
                counts[int(row["tree"])] = int(part.split("=", 1)[1])
    return [
        f"{path}: tree {tree}: {bad} starting branch length(s) zero, negative, NaN or "
        "infinite; those branches started at the least-squares fit to the pairwise JC69 "
        "distances"
        for tree, bad in sorted(counts.items())
    ]


def prior_identity(prior: Sequence[str]) -> str:
    """The ``--prior`` options as they enter a run's identity: one option as itself (so a
    table begun by an earlier version with ``--prior exp:10`` is resumed), several joined
    by ``;``."""
    return ";".join(prior) if prior else "exp:10"


def task_keys(n_trees: int, methods: Sequence[str], replicates: int) -> list[tuple]:
    return [
        (t, m, r) for t in range(1, n_trees + 1) for m in methods for r in range(1, replicates + 1)
    ]


def check_methods(text: str) -> list[str]:
    from .estimators import get, names

    items = [m.strip() for m in text.split(",") if m.strip()]
    if items == ["all"]:
        return names()
    for m in items:
        get(m)
    if not items:
        raise InputError("no method given")
    return list(dict.fromkeys(items))


def parse_settings(pairs: Sequence[str], methods: Sequence[str]) -> dict[str, dict]:
    """``METHOD.KEY=VALUE`` (or ``KEY=VALUE`` for every method that has the setting)."""
    from .estimators import get
    from .estimators import parse_settings as check

    out: dict[str, dict] = {m: {} for m in methods}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise InputError(f"--set expects METHOD.KEY=VALUE or KEY=VALUE, not {pair!r}")
        method, dot, key = name.rpartition(".")
        targets = [method] if dot else [m for m in methods if key in get(m).defaults]
        if dot and method not in out:
            raise InputError(f"--set {pair}: method {method!r} is not among the methods run")
        if not targets:
            raise InputError(f"--set {pair}: no method run has a setting {key!r}")
        for m in targets:
            out[m][key] = value
    for m, s in out.items():
        out[m] = check(get(m), s)
        out[m] = {k: v for k, v in out[m].items() if k in s}  # only what was set
    return out


# -- summary -------------------------------------------------------------------------------


def estimates(
    rows: Sequence[dict], methods: Sequence[str], n_trees: int, replicates: int
) -> dict[str, np.ndarray]:
    """method -> (n_trees, replicates) array of log marginal likelihoods (NaN where missing)."""
    out = {m: np.full((n_trees, replicates), np.nan) for m in methods}
    for r in rows:
        m = r["method"]
        if m not in out:
            continue
        t, k = int(r["tree"]) - 1, int(r["replicate"]) - 1
        if 0 <= t < n_trees and 0 <= k < replicates:
            out[m][t, k] = float(r["log_ml"]) if r["log_ml"] not in ("", None) else np.nan
    return out


def summarise(rows: Sequence[dict], reference: np.ndarray | None = None) -> dict:
    import warnings

    with warnings.catch_warnings():  # all-NaN rows (trees missing from a shard) are fine
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summarise(rows, reference)


def _summarise(rows: Sequence[dict], reference: np.ndarray | None = None) -> dict:
    """Per method: trees, replicates, mean log ML over trees and replicates, mean sd over
    replicates, seconds per tree (per replicate), KL to the reference (mean and sd over
    replicates); per tree and method: mean and sd of the log ML and the topology posterior
    implied by the replicate means."""
    from .estimators import names

    order = {m: i for i, m in enumerate(names())}
    methods = sorted(
        dict.fromkeys(r["method"] for r in rows), key=lambda m: (order.get(m, len(order)), m)
    )
    n_trees = max((int(r["tree"]) for r in rows), default=0)
    reps = max((int(r["replicate"]) for r in rows), default=0)
    if reference is not None:
        n_trees = max(n_trees, len(reference))
    est = estimates(rows, methods, n_trees, reps)
    per_method, per_tree = [], []
    for m in methods:
        a = est[m]
        secs = [float(r["seconds"]) for r in rows if r["method"] == m and r["seconds"] != ""]
        evals = [
            int(r["evaluations"])
            for r in rows
            if r["method"] == m and r["evaluations"] not in ("", None)
        ]
        done = np.isfinite(a)
        sd = np.nanstd(a, axis=1, ddof=1) if reps > 1 else np.full(n_trees, np.nan)
        entry = {
            "method": m,
            "trees": int(done.any(axis=1).sum()),
            "replicates": reps,
            "mean_log_ml": float(np.nanmean(a)) if done.any() else math.nan,
            "mean_sd": float(np.nanmean(sd)) if reps > 1 and np.isfinite(sd).any() else math.nan,
            "seconds_per_tree": float(np.mean(secs)) if secs else math.nan,
            "evaluations_per_tree": float(np.mean(evals)) if evals else math.nan,
        }
        if reference is not None:
            kls = [kl_to_reference(reference[:n_trees], a[:, k]) for k in range(reps)]
            kls = np.array(kls)
            entry["mean_kl"] = float(kls.mean()) if kls.size else math.nan
            entry["sd_kl"] = float(kls.std(ddof=1)) if kls.size > 1 else math.nan
        per_method.append(entry)
        with np.errstate(all="ignore"):
            mean = np.nanmean(a, axis=1) if reps else np.full(n_trees, np.nan)
        post = topology_posterior(mean)
        for t in range(n_trees):
            if not done[t].any():
                continue
            per_tree.append(
                {
                    "tree": t + 1,
                    "method": m,
                    "mean_log_ml": float(mean[t]),
                    "sd_log_ml": float(sd[t]) if reps > 1 else math.nan,
                    "posterior": float(post[t]),
                    **(
                        {"reference": float(reference[t] / reference.sum())}
                        if reference is not None
                        else {}
                    ),
                }
            )
    return {"methods": per_method, "trees": per_tree}


def _fmt(x) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.6g}"


def format_summary(summary: dict, per_tree: bool = True) -> str:
    lines = []
    has_kl = any("mean_kl" in e for e in summary["methods"])
    cols = [
        "method",
        "trees",
        "replicates",
        "mean_log_ml",
        "mean_sd",
        "seconds_per_tree",
        "evaluations_per_tree",
    ] + (["mean_kl", "sd_kl"] if has_kl else [])
    lines.append("\t".join(cols))
    for e in summary["methods"]:
        lines.append("\t".join(_fmt(e.get(c)) for c in cols))
    if per_tree and summary["trees"]:
        has_ref = "reference" in summary["trees"][0]
        tcols = ["tree", "method", "mean_log_ml", "sd_log_ml", "posterior"] + (
            ["reference"] if has_ref else []
        )
        lines.append("")
        lines.append("\t".join(tcols))
        for e in summary["trees"]:
            lines.append("\t".join(_fmt(e.get(c)) for c in tcols))
    return "\n".join(lines) + "\n"


OFF_SCALE = 10.0  # log units from the per-tree median: drawn as a note, not a point


def plot(rows: Sequence[dict], path: str, reference: np.ndarray | None = None) -> None:
    """Estimates per tree and method, as differences from the per-tree median over methods,
    with their spread over replicates; with a reference, a second panel compares the implied
    topology posterior with the reference frequencies."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs the 'plot' extra: pip install 'phylo[plot]'") from None
    methods = list(dict.fromkeys(r["method"] for r in rows))
    n_trees = max(int(r["tree"]) for r in rows)
    reps = max(int(r["replicate"]) for r in rows)
    est = estimates(rows, methods, n_trees, reps)
    with np.errstate(all="ignore"):
        means = np.array([np.nanmean(est[m], axis=1) for m in methods])
        centre = np.nanmedian(means, axis=0)
    panels = 2 if reference is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    ax = axes[0, 0]
    x = np.arange(1, n_trees + 1)
    width = 0.8 / max(1, len(methods))
    off_scale = []
    for j, m in enumerate(methods):
        a = est[m] - centre[:, None]
        with np.errstate(all="ignore"):
            mu = np.nanmean(a, axis=1)
            sd = np.nanstd(a, axis=1, ddof=1) if reps > 1 else np.zeros(n_trees)
        shift = float(np.nanmedian(mu)) if np.isfinite(mu).any() else 0.0
        if abs(shift) > OFF_SCALE:  # e.g. map, ml, harmonic means: far from the others
            off_scale.append(f"{m} ({shift:+.1f})")
            continue
        ax.errorbar(x - 0.4 + width * (j + 0.5), mu, yerr=sd, fmt="o", ms=3, capsize=2, label=m)
    if off_scale:
        ax.set_title("off scale (median offset): " + ", ".join(off_scale), fontsize=8)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("tree")
    ax.set_ylabel("log ML - median over methods")
    ax.legend(fontsize=7, ncol=2)
    if reference is not None:
        ax = axes[0, 1]
        p = reference[:n_trees] / reference[:n_trees].sum()
        for j, m in enumerate(methods):
            ax.plot(p, topology_posterior(means[j]), "o", ms=3, label=m)
        lim = max(p.max(), 1e-3) * 1.1
        ax.plot([0, lim], [0, lim], color="grey", lw=0.5)
        ax.set_xlabel("reference frequency")
        ax.set_ylabel("posterior from estimates")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    from ..outputs import atomic_open

    with atomic_open(path, "wb", encoding=None) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def default_batch_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))
