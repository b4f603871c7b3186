"""Estimators x training replicates: ``KL(reference || estimate)`` as in Zhang & Matsen's
Table 1 (NeurIPS 2018).

Each task fits one estimator to one training sample (e.g. one short MCMC run) and measures
``KL(reference || estimate)`` against a pooled reference (e.g. long golden runs):
:func:`fit_and_measure`.  :func:`compare_estimators` runs every task in this process on samples
already read; ``sbn compare`` runs them as independent tasks through :mod:`phylo.execution`
(:class:`CompareContext`, :func:`run_task`), on local processes or a Dask cluster, in shards,
resuming after a kill.  Fits are deterministic, so the results do not depend on how the work
was split.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..trees import TreeSample, read_trees
from .estimators import fit
from .methods import METHODS
from .reference import KL_FLOOR, kl_divergence, pooled_frequencies

COLUMNS = ("replicate", "method", "file", "unique_trees", "kl", "iterations", "seconds")
N_KEY = 2


class CompareContext:
    """What every task of one comparison shares: the pooled reference (read once per
    process) and the training samples (read when first needed)."""

    def __init__(
        self,
        reference_files: Sequence[str],
        training_files: Sequence[str],
        burnin,
        thin: int,
        rooted: bool,
        trees_per_run: int | None,
        floor: float,
        fit_options: dict,
    ):
        self.reference = read_trees(list(reference_files), burnin=burnin, thin=thin, rooted=rooted)
        self.p = pooled_frequencies(self.reference, trees_per_run)
        self.training_files = list(training_files)
        self.burnin, self.thin, self.rooted = burnin, thin, rooted
        self.floor = floor
        self.fit_options = dict(fit_options)
        self._samples: dict[int, object] = {}

    def training(self, i: int):
        if i not in self._samples:
            self._samples[i] = read_trees(
                self.training_files[i],
                burnin=self.burnin,
                thin=self.thin,
                rooted=self.rooted,
                taxa=self.reference.taxa,
            )
        return self._samples[i]


def setup(*args) -> CompareContext:
    return CompareContext(*args)


def fit_and_measure(
    sample: TreeSample,
    method: str,
    reference: TreeSample,
    p: np.ndarray,
    floor: float = KL_FLOOR,
    fit_options: dict | None = None,
) -> dict:
    """Fit ``method`` to ``sample`` and measure ``KL(p || estimate)``.

    ``p`` is the reference's pooled probability of each of its topologies
    (:func:`~phylo.sbn.reference.pooled_frequencies`); ``fit_options`` go to
    :func:`~phylo.sbn.estimators.fit`.  Returns ``{"unique_trees", "kl", "iterations" (EM only,
    else None), "seconds" (of the fit)}``.
    """
    t0 = time.perf_counter()
    model = fit(sample, method, **(fit_options or {}))
    seconds = time.perf_counter() - t0
    return {
        "unique_trees": sample.n_topologies,
        "kl": kl_divergence(p, model.prob(reference), floor),
        "iterations": model.fit_info.get("iterations"),
        "seconds": seconds,
    }


def run_task(ctx: CompareContext, key: tuple) -> dict:
    """Fit method ``key[1]`` to training replicate ``key[0]`` and measure its KL."""
    rep, method = key
    row = fit_and_measure(
        ctx.training(rep), method, ctx.reference, ctx.p, ctx.floor, ctx.fit_options
    )
    return {"replicate": rep + 1, "method": method, "file": ctx.training_files[rep], **row}


def compare_estimators(
    reference: TreeSample,
    training: Iterable[TreeSample],
    methods: Sequence[str] = METHODS,
    trees_per_run: int | None = None,
    floor: float = KL_FLOOR,
    **fit_options,
) -> list[dict]:
    """``KL(reference || estimate)`` of several estimators fitted to each training sample,
    in this process.

    Parameters
    ----------
    reference
        The ground truth (e.g. golden runs), pooled with
        :func:`~phylo.sbn.reference.pooled_frequencies` (``trees_per_run``).
    training
        Training samples (e.g. short-run replicates), each read in the reference's taxon
        order or not.
    methods
        Names in :data:`~phylo.sbn.methods.METHODS`.
    floor
        Probability counted for reference topologies an estimate cannot produce.
    fit_options
        Passed to :func:`phylo.sbn.fit` (``alpha``, ``max_iter``...; ignored by ``srf`` and
        ``ccd``).

    Returns
    -------
    One dict per training sample: ``{"unique_trees": ..., "kl": {method: value},
    "iterations": {method: EM iterations}, "seconds": {method: fit time}}``.
    """
    methods = check_methods(methods)
    p = pooled_frequencies(reference, trees_per_run)
    rows = []
    for sample in training:
        row = {"unique_trees": sample.n_topologies, "kl": {}, "iterations": {}, "seconds": {}}
        for method in methods:
            one = fit_and_measure(sample, method, reference, p, floor, fit_options)
            row["kl"][method] = one["kl"]
            row["seconds"][method] = one["seconds"]
            if one["iterations"] is not None:
                row["iterations"][method] = one["iterations"]
        rows.append(row)
    return rows


def comparison(
    training: Sequence[str],
    references: Sequence[str],
    methods: str | Sequence[str] = METHODS,
    alpha: float | None = None,
    trees_per_run: int | None = None,
    floor: float = KL_FLOOR,
    burnin=None,
    thin: int = 1,
    rooted: bool = False,
):
    """The run of ``sbn compare``: every (training replicate, method) as one task.

    Returns a :class:`phylo.execution.Comparison` for :func:`phylo.execution.run_comparison`.
    Each task fits one estimator to one training file and measures
    ``KL(reference || estimate)`` against the pooled ``references``; fits are
    deterministic, so the run has no seed.

    Parameters
    ----------
    training
        One file per replicate (e.g. ten short MrBayes runs).
    references
        The reference runs, pooled (e.g. golden runs' ``.trprobs``).
    methods
        Comma-separated estimator names or a list of them.
    alpha
        The em-alpha strength (default: the estimator's).
    trees_per_run, floor
        See :func:`phylo.sbn.reference.pooled_frequencies` and
        :func:`phylo.sbn.reference.kl_divergence`.
    burnin, thin, rooted
        How every file is read (:func:`phylo.trees.read_trees`).
    """
    from ..execution import Comparison
    from ..provenance import file_digest, record
    from ..trees import parse_burnin

    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    method_list = check_methods(methods)
    if not training:
        raise InputError("no training files given")
    if not references:
        raise InputError("no reference files given")
    identity = [
        f"reference={','.join(file_digest(p)[:16] for p in references)}",
        f"training={','.join(file_digest(p)[:16] for p in training)}",
        f"methods={','.join(method_list)}",
        f"alpha={alpha}",
        f"burnin={burnin}",
        f"thin={thin}",
        f"rooted={rooted}",
        f"trees_per_run={trees_per_run}",
        f"floor={floor}",
    ]
    prov = record(inputs=[*references, *training], parameters={"methods": ",".join(method_list)})
    args = (
        tuple(references),
        tuple(training),
        parse_burnin(burnin),
        thin,
        rooted,
        trees_per_run,
        floor,
        {} if alpha is None else {"alpha": alpha},
    )
    return Comparison(
        COLUMNS, N_KEY, task_keys(len(training), method_list), run_task, setup, args, identity,
        prov,
    )  # fmt: skip


def task_keys(n_training: int, methods: Sequence[str]) -> list[tuple]:
    return [(r, m) for r in range(n_training) for m in methods]


def summarise(rows: Sequence[dict], methods: Sequence[str]) -> list[dict]:
    """Mean and standard deviation of the KL per method over the replicates."""
    out = []
    for m in methods:
        vals = np.array([float(r["kl"]) for r in rows if r["method"] == m])
        if vals.size == 0:
            continue
        out.append(
            {
                "method": m,
                "replicates": int(vals.size),
                "mean_kl": float(vals.mean()),
                "sd_kl": float(vals.std(ddof=1)) if vals.size > 1 else float("nan"),
            }
        )
    return out


def check_methods(methods: Sequence[str]) -> list[str]:
    """The methods without repeats, in their order; an :class:`InputError` for a name that
    is not in :data:`~phylo.sbn.methods.METHODS`."""
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InputError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))
