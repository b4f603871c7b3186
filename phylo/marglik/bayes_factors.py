"""Marginal likelihoods of several substitution models and the Bayes factors between them:
``marglik compare-models``.

For models :math:`M_1, M_2, \\dots` (each with priors on the parameters it does not fix,
:mod:`phylo.marglik.parameters`) and a fixed topology :math:`\\tau`,

.. math:: Z_a = p(D \\mid \\tau, M_a) = \\int L_a(t, \\theta_a)\\, p(t)\\, p_a(\\theta_a)
          \\, dt\\, d\\theta_a, \\qquad
          \\log \\mathrm{BF}_{ab} = \\log Z_a - \\log Z_b,

a positive :math:`\\log \\mathrm{BF}_{ab}` favouring :math:`M_a` (Kass & Raftery 1995:
above 1 positive, above 3 strong, above 5 very strong evidence).  Each (tree, model,
replicate) is one task of the runner of :mod:`phylo.execution` (resumable, processes,
Dask, shards), its random stream from the seed and the task.

**Standard errors.**  With one replicate, a model's :math:`\\log Z` carries its estimator's
standard error (NA for an estimator without one); with ``R`` replicates it is the mean of
the replicates with the standard error ``sd / sqrt(R)`` of that mean.  The estimates of two
models come from independent runs, so the standard error of a log Bayes factor is
:math:`\\sqrt{s_a^2 + s_b^2}`.

**Over topologies.**  The same comparison over all topologies needs
:math:`Z_a = \\sum_\\tau p(\\tau) Z_{a,\\tau}`; :func:`model_rows` and :func:`summarise` take
rows whose ``tree`` is any label (``"total"`` for such an estimate), so a run of the
topology-integrated estimator per model joins this summary unchanged, and
:func:`compare_models` runs any per-model estimator (``estimate(model_prior, rng)``) over the
models with the priors built as here and summarises them.

References
----------
Kass RE, Raftery AE. 1995. Bayes factors. J Am Stat Assoc 90:773-795.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputError

COLUMNS = (
    "tree",
    "model",
    "replicate",
    "log_ml",
    "se",
    "seconds",
    "evaluations",
    "ess",
    "integrated",
    "diagnostics",
)
N_KEY = 3
TIMING_COLUMNS = ("seconds",)


def model_specs(models: Sequence[str | dict]) -> list[dict]:
    """Checked :func:`phylo.likelihood.model_spec` dicts of ``models`` (names such as
    ``HKY+G4``, or dicts already made), each named once."""
    from ..likelihood import model_spec

    out, seen = [], set()
    for m in models:
        spec = dict(m) if isinstance(m, dict) else model_spec(str(m).strip())
        label = spec["model"]
        if label in seen:
            raise InputError(f"the model {label} is given twice")
        seen.add(label)
        out.append(spec)
    if len(out) < 2:
        raise InputError("compare-models needs at least two models (repeat --model)")
    return out


def priors_for(spec: dict, prior: Sequence[str]) -> list[str]:
    """The ``--prior`` options that apply to the model ``spec``: the branch-length prior and
    those on parameters the model has."""
    from .parameters import model_parameters, parse_prior_options

    params = set(model_parameters(spec)) | {"brlens"}
    out = []
    for text in prior:
        (key,) = parse_prior_options([text])
        if key in params:
            out.append(text)
    return out


def check_priors(specs: Sequence[dict], prior: Sequence[str]) -> None:
    """Every ``--prior`` option must apply to some model; each model's priors must be
    proper (:func:`phylo.marglik.parameters.model_prior`)."""
    from .parameters import model_parameters, model_prior, parse_prior_options

    have = {"brlens"}
    for spec in specs:
        have |= set(model_parameters(spec))
    for text in prior:
        (key,) = parse_prior_options([text])
        if key not in have:
            names = ", ".join(s["model"] for s in specs)
            raise InputError(f"--prior {text}: none of the models ({names}) has {key}")
    parse_prior_options(list(prior))  # a parameter given twice
    for spec in specs:
        model_prior(spec, priors_for(spec, prior))


class ModelsContext:
    """What the tasks of one comparison of models share in a process."""

    def __init__(self, alignment, trees, specs, prior, method, settings, seed, batch_threads):
        from ..likelihood import read_alignment
        from .compare import read_topologies

        self.alignment = read_alignment(alignment) if isinstance(alignment, str) else alignment
        self.trees = read_topologies(trees)[0] if isinstance(trees, str) else trees
        self.specs = {s["model"]: dict(s) for s in specs}
        self.prior = list(prior)
        self.method = method
        self.settings = dict(settings)
        self.seed = int(seed)
        self.batch_threads = batch_threads

    def model_prior(self, label: str):
        from .parameters import model_prior

        spec = self.specs[label]
        return model_prior(spec, priors_for(spec, self.prior))

    def posterior(self, tree: int, label: str):
        from .posterior import Posterior

        return Posterior(
            self.alignment,
            self.trees[tree - 1],
            self.model_prior(label),
            batch_threads=self.batch_threads,
        )


def setup(*args) -> ModelsContext:
    return ModelsContext(*args)


def estimate_row(tree, label: str, replicate: int, est, free: Sequence[str]) -> dict:
    """One row of :data:`COLUMNS` from an :class:`~phylo.marglik.estimators.Estimate` of
    model ``label`` (``free``: the parameters it integrated)."""
    from .compare import _diagnostics_text

    diagnostics = dict(getattr(est, "diagnostics", None) or {})
    ess = diagnostics.get("ess", diagnostics.get("min_ess"))
    se = getattr(est, "se", None)
    seconds = getattr(est, "seconds", math.nan)
    return {
        "tree": tree,
        "model": label,
        "replicate": replicate,
        "log_ml": float(est.log_ml),
        "se": None if se is None or math.isnan(se) else float(se),
        "seconds": None if seconds is None or math.isnan(seconds) else round(seconds, 4),
        "evaluations": int(getattr(est, "n_evaluations", 0)),
        "ess": None if ess is None else float(f"{float(ess):.6g}"),
        "integrated": ",".join(free),
        "diagnostics": _diagnostics_text(diagnostics),
    }


def run_task(ctx: ModelsContext, key: tuple) -> dict:
    """Estimate log p(D | tree ``key[0]``, model ``key[1]``), replicate ``key[2]``."""
    from ..execution import task_rng
    from .estimators import run

    tree, label, rep = key
    post = ctx.posterior(tree, label)
    est = run(ctx.method, post, task_rng(ctx.seed, key), **ctx.settings)
    free = post.params.free if post.params is not None else []
    return estimate_row(tree, label, rep, est, free)


def compare_models(
    models: Sequence[str | dict],
    estimate: Callable,
    prior: Sequence[str] | str | None = (),
    replicates: int = 1,
    seed: int = 0,
    label: str = "total",
) -> dict:
    """Log Z of each model and the log Bayes factors of every pair, from any estimator of
    one model's marginal likelihood: the hook for estimates over topologies.

    For each model (and replicate ``r``) this builds the model's
    :class:`~phylo.marglik.parameters.ModelPrior` (the model's free parameters under their
    priors from ``prior``, exactly as ``compare-models`` builds it) and calls
    ``estimate(model_prior, rng)``, ``rng`` the stream
    :func:`phylo.execution.task_rng` ``(seed, (label, model, r))``.  ``estimate`` returns
    an :class:`~phylo.marglik.estimators.Estimate` (``log_ml``, ``se``; ``seconds``,
    ``n_evaluations`` and ``diagnostics`` if it has them).  For the marginal likelihood over
    topologies, ``estimate`` is the topology-integrated estimator with the model prior passed
    through to each topology's :class:`~phylo.marglik.posterior.Posterior`
    (``Posterior(alignment, tree, model_prior)``); for one topology it is
    ``lambda mp, rng: run(method, Posterior(alignment, tree, mp), rng)``.

    Returns ``{"rows": [...], "models": ..., "pairs": ...}``: the rows (:data:`COLUMNS`,
    ``tree`` = ``label``) and :func:`summarise` of them, for :func:`format_summary`.
    """
    from ..execution import task_rng
    from .parameters import model_prior, prior_texts

    specs = model_specs(models)
    prior = prior_texts(prior)
    check_priors(specs, prior)
    rows = []
    for spec in specs:
        name = spec["model"]
        mp = model_prior(spec, priors_for(spec, prior))
        for r in range(1, int(replicates) + 1):
            est = estimate(mp, task_rng(int(seed), (label, name, r)))
            rows.append(estimate_row(label, name, r, est, mp.free))
    return {"rows": rows, **summarise(rows, [s["model"] for s in specs])}


def comparison(
    alignment: str,
    trees: str,
    models: Sequence[str | dict],
    method: str = "glis",
    replicates: int = 1,
    settings: Sequence[str] = (),
    prior: Sequence[str] | str | None = (),
    seed: int | None = None,
    max_trees: int | None = None,
    threads: int | None = None,
    output: str | None = None,
):
    """The run of ``marglik compare-models``: every (tree, model, replicate) as one task.

    Checks everything before any task runs and returns a
    :class:`phylo.execution.Comparison` for :func:`phylo.execution.run_comparison`.

    Parameters
    ----------
    alignment, trees
        Paths of the alignment and of the topologies
        (:func:`phylo.marglik.compare.read_topologies`).
    models
        Two or more model names (``JC69``, ``HKY+G4``, ``GTR+G4+I``, ...) or
        :func:`phylo.likelihood.model_spec` dicts; their parameters are integrated out
        unless fixed.
    method
        One estimator (``glis`` by default; ``gss`` for the most accurate).
    prior
        ``--prior`` options (:mod:`phylo.marglik.parameters`); each applies to the models
        that have its parameter, and must apply to one at least.
    settings, replicates, seed, max_trees, threads, output
        As for :func:`phylo.marglik.compare.comparison`.
    """
    from ..execution import Comparison, choose_seed
    from ..likelihood import read_alignment
    from ..provenance import file_digest, record
    from ..trees.taxa import check_same_taxa
    from .compare import _settings_text, check_methods, parse_settings, read_topologies
    from .parameters import prior_texts

    names = check_methods(method)
    if len(names) != 1:
        raise InputError("compare-models takes one estimator (--method)")
    method = names[0]
    opts = parse_settings(settings, [method])[method]
    specs = model_specs(models)
    prior = prior_texts(prior)
    check_priors(specs, prior)
    aln = read_alignment(alignment)
    topologies, _ = read_topologies(trees, None, max_trees)
    for i, t in enumerate(topologies):
        check_same_taxa(t.taxa, aln.taxa, f"tree {i + 1} of {trees}", alignment)
    seed = choose_seed(seed, output)
    labels = [s["model"] for s in specs]
    identity = [
        "run=compare-models",
        f"alignment={file_digest(alignment)[:16]}",
        f"trees={file_digest(trees)[:16]}",
        f"max_trees={max_trees}",
        f"method={method}",
        f"replicates={replicates}",
        f"settings={_settings_text(opts)}",
        f"models={_settings_text(specs)}",
        f"prior={';'.join(prior)}",
        f"seed={seed}",
    ]
    prov = record(
        inputs=[alignment, trees],
        seed=seed,
        parameters={"method": method, "replicates": replicates, "models": ",".join(labels)},
    )
    keys = [
        (t, label, r)
        for t in range(1, len(topologies) + 1)
        for label in labels
        for r in range(1, replicates + 1)
    ]
    return Comparison(
        COLUMNS,
        N_KEY,
        keys,
        run_task,
        setup,
        (alignment, topologies, specs, prior, method, opts, seed, threads),
        identity,
        prov,
        TIMING_COLUMNS,
    )


def compare_models_total(
    alignment: str,
    tree_files: Sequence[str],
    models: Sequence[str | dict],
    *,
    prior: Sequence[str] | str | None = (),
    seed: int | None = None,
    output: str | None = None,
    progress=None,
    **total_options,
) -> dict:
    r"""Bayes factors between models over all topologies: ``log Z_a = log p(D | M_a)`` of
    each model by :func:`phylo.marglik.total.run_total` on the same tree sample (the
    model's free parameters integrated out in every topology's posterior), then
    :func:`summarise`.

    Every model's run uses the same seed, so the same topologies are drawn for each (common
    random numbers; the standard error of a Bayes factor, :math:`\sqrt{s_a^2 + s_b^2}`, is
    then conservative).  With ``output``, each model's per-topology results go to
    ``OUTPUT.MODEL.topologies.tsv``, so that a killed comparison resumes.  ``total_options``
    are :func:`~phylo.marglik.total.run_total`'s (``method``, ``settings``, ``tolerance``,
    ``run``, ...).  Returns ``{"rows", "models", "pairs", "runs"}``, ``runs`` the
    :class:`~phylo.marglik.total.TotalRun` of each model.
    """
    from ..execution import choose_seed
    from .estimators import Estimate
    from .parameters import model_prior, prior_texts
    from .total import run_total

    specs = model_specs(models)
    prior = prior_texts(prior)
    check_priors(specs, prior)
    base = None
    if output and output != "-":
        base = output[:-4] if output.endswith(".tsv") else output
    seed = choose_seed(seed, None if base is None else f"{base}.{specs[0]['model']}.topologies.tsv")
    rows, runs = [], []
    for spec in specs:
        name = spec["model"]
        mine = priors_for(spec, prior)
        results = None if base is None else f"{base}.{name}.topologies.tsv"
        bar = None if progress is None else (lambda d, name=name: progress(f"{name}, {d}"))
        run = run_total(alignment, tree_files, model=spec, prior=mine, seed=seed,
                        results=results, progress=bar, **total_options)  # fmt: skip
        if not run.complete:
            raise InputError("compare-models over topologies does not run in shards (--shard)")
        est = run.estimate
        diagnostics = {"k": est.stage.k if est.stage else 0, "topologies": est.topologies,
                       "khat": est.stage.khat if est.stage else math.nan}  # fmt: skip
        one = Estimate(est.log_z, est.se, est.seconds, est.evaluations, diagnostics)
        rows.append(estimate_row("total", name, 1, one, model_prior(spec, mine).free))
        runs.append(run)
    return {
        "rows": rows,
        **summarise(rows, [s["model"] for s in specs]),
        "runs": runs,
        "seed": seed,
    }


# -- summary -------------------------------------------------------------------------------


def _number(x) -> float:
    if x is None or x == "" or x == "NA":
        return math.nan
    return float(x)


def model_rows(rows: Sequence[dict], order: Sequence[str] | None = None) -> list[dict]:
    """Per tree and model: ``log_ml`` (the replicates' mean), ``se`` (see the module
    docstring), ``replicates`` and the parameters ``integrated``; models in the ``order``
    given (default: as the rows first name them)."""
    groups: dict[tuple, list[dict]] = {}
    rank = {m: i for i, m in enumerate(order or [])}

    def key(r):
        tree = str(r["tree"])
        return (int(tree) if tree.isdigit() else math.inf, tree, rank.get(r["model"], len(rank)))

    for r in sorted(rows, key=key):
        groups.setdefault((str(r["tree"]), str(r["model"])), []).append(r)
    out = []
    for (tree, label), rs in groups.items():
        values = np.array([_number(r["log_ml"]) for r in rs])
        ses = np.array([_number(r.get("se")) for r in rs])
        n = len(rs)
        if n == 1:
            mean, se = float(values[0]), float(ses[0])
        else:
            mean = float(np.mean(values))
            se = float(np.std(values, ddof=1) / math.sqrt(n))
        out.append(
            {
                "tree": tree,
                "model": label,
                "log_ml": mean,
                "se": se,
                "replicates": n,
                "integrated": rs[0].get("integrated") or "-",
            }
        )
    return out


def bayes_factors(per_model: Sequence[dict]) -> list[dict]:
    """Every pair of models of each tree: ``log_bf`` = log Z_a - log Z_b (a listed before
    b) and its standard error sqrt(se_a^2 + se_b^2)."""
    out = []
    trees = list(dict.fromkeys(r["tree"] for r in per_model))
    for tree in trees:
        ms = [r for r in per_model if r["tree"] == tree]
        for a, b in itertools.combinations(ms, 2):
            out.append(
                {
                    "tree": tree,
                    "model_a": a["model"],
                    "model_b": b["model"],
                    "log_bf": a["log_ml"] - b["log_ml"],
                    "se": math.hypot(a["se"], b["se"]),
                }
            )
    return out


def summarise(rows: Sequence[dict], order: Sequence[str] | None = None) -> dict:
    """``{"models": model_rows(...), "pairs": bayes_factors(...)}``."""
    per_model = model_rows(rows, order)
    return {"models": per_model, "pairs": bayes_factors(per_model)}


def _fmt(x, digits=6) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.{digits}g}" if abs(x) < 1e-3 or abs(x) >= 1e6 else f"{x:.4f}"


def format_summary(summary: dict) -> str:
    """The summary as two tab-separated blocks: log Z per tree and model, then the log
    Bayes factor of every pair."""
    lines = ["tree\tmodel\tlog_ml\tse\treplicates\tintegrated"]
    for r in summary["models"]:
        lines.append(
            "\t".join(
                [
                    r["tree"],
                    r["model"],
                    _fmt(r["log_ml"]),
                    _fmt(r["se"]),
                    str(r["replicates"]),
                    r["integrated"],
                ]
            )  # fmt: skip
        )
    lines += ["", "tree\tmodel_a\tmodel_b\tlog_bf\tse"]
    for p in summary["pairs"]:
        lines.append(
            "\t".join([p["tree"], p["model_a"], p["model_b"], _fmt(p["log_bf"]), _fmt(p["se"])])
        )
    return "\n".join(lines) + "\n"
