"""Reference distributions (pooled long "golden" runs) and the KL divergence to a model.

Zhang & Matsen (NeurIPS 2018) measure an estimator by ``KL(p || q)``, the Kullback-Leibler
divergence from the ground truth ``p`` (ten long MrBayes runs pooled) to the estimate ``q``:

.. math::

    KL(p \\| q) = \\sum_T p(T) \\log p(T) - \\sum_T p(T) \\log \\max(q(T), \\epsilon),

over the topologies of the reference, with the floor ``epsilon = 2.22e-16`` (machine epsilon)
for topologies the estimate cannot produce.  Their golden runs are MrBayes ``.trprobs``
summaries of 750,001 trees each; they pooled the replicates by turning each weight into a
count, ``round(w * 750001)``, and dividing the summed counts by ``10 * 750001``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..trees import TreeSample

KL_FLOOR = 2.22e-16


def kl_divergence(p: np.ndarray, q: np.ndarray, floor: float = KL_FLOOR) -> float:
    """``KL(p || q) = sum_i p_i log p_i - sum_i p_i log max(q_i, floor)`` over the reference
    topologies with ``p_i > 0``."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    mask = p > 0
    return float(
        np.sum(p[mask] * np.log(p[mask])) - np.sum(p[mask] * np.log(np.maximum(q[mask], floor)))
    )


def pooled_frequencies(sample: TreeSample, trees_per_run: int | None = None) -> np.ndarray:
    """Pooled probability of each topology of a reference sample.

    Parameters
    ----------
    sample
        One or more runs (e.g. golden-run ``.trprobs`` files).
    trees_per_run
        For weighted summaries (``.trprobs``): turn each run's weights into counts
        ``round(w * trees_per_run)`` and pool the counts, as the paper did with 750,001.
        Default: :meth:`TreeSample.frequencies` (weighted runs: each run normalised, then
        averaged; raw samples: all kept trees pooled).
    """
    if trees_per_run is None:
        return sample.frequencies()
    if trees_per_run <= 0:
        raise InputError(f"trees per run must be positive, got {trees_per_run}")
    if not sample.weighted:
        raise InputError("trees per run applies to weighted summaries (.trprobs) only")
    counts = np.round(sample.counts * trees_per_run).sum(axis=1)
    return counts / (sample.n_runs * trees_per_run)


def kl_to_model(
    model, reference: TreeSample, trees_per_run: int | None = None, floor: float = KL_FLOOR
) -> float:
    """``KL(reference || model)`` with the paper's floor (see the module docstring).

    ``model`` is any fitted distribution (:class:`~phylo.sbn.SBNModel`,
    :class:`~phylo.sbn.SRFModel`); the reference may list its taxa in another order.
    """
    p = pooled_frequencies(reference, trees_per_run)
    return kl_divergence(p, model.prob(reference), floor)
