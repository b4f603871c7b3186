"""Estimators x training replicates as independent tasks: ``sbn compare``.

Each task fits one estimator to one training sample (e.g. one short MCMC run) and measures
``KL(reference || estimate)`` against a pooled reference (e.g. long golden runs), as in
Zhang & Matsen's Table 1.  Tasks go through :mod:`phylo.execution`, so they run on local
processes or a Dask cluster, in shards, and resume after a kill; fits are deterministic, so
the table does not depend on how the work was split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .reference import kl_divergence, pooled_frequencies

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
        from ..trees import read_trees

        self.reference = read_trees(list(reference_files), burnin=burnin, thin=thin, rooted=rooted)
        self.p = pooled_frequencies(self.reference, trees_per_run)
        self.training_files = list(training_files)
        self.burnin, self.thin, self.rooted = burnin, thin, rooted
        self.floor = floor
        self.fit_options = dict(fit_options)
        self._samples: dict[int, object] = {}

    def training(self, i: int):
        if i not in self._samples:
            from ..trees import read_trees

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


def run_task(ctx: CompareContext, key: tuple) -> dict:
    """Fit method ``key[1]`` to training replicate ``key[0]`` and measure its KL."""
    from .sbn import fit

    rep, method = key
    sample = ctx.training(rep)
    opts = ctx.fit_options if method in ("sa", "em", "em-alpha") else {}
    t0 = time.perf_counter()
    model = fit(sample, method, **opts)
    seconds = time.perf_counter() - t0
    kl = kl_divergence(ctx.p, model.prob(ctx.reference), ctx.floor)
    iters = getattr(model, "fit_info", {}).get("iterations")
    return {
        "replicate": rep + 1,
        "method": method,
        "file": ctx.training_files[rep],
        "unique_trees": sample.n_topologies,
        "kl": kl,
        "iterations": iters,
        "seconds": seconds,
    }


def comparison(
    training: Sequence[str],
    references: Sequence[str],
    methods: str | Sequence[str] = "srf,ccd,sa,em,em-alpha",
    alpha: float | None = None,
    trees_per_run: int | None = None,
    floor: float = 2.22e-16,
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
    from .sbn import METHODS as known

    bad = [m for m in methods if m not in known]
    if bad:
        raise InputError(f"unknown method {bad[0]!r}; choose from {', '.join(known)}")
    return list(dict.fromkeys(methods))
