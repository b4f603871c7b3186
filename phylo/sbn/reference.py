"""Reference distributions (pooled long "golden" runs) and the KL divergence to a model.

Zhang & Matsen (NeurIPS 2018) measure an estimator by ``KL(p || q)``, the Kullback-Leibler
divergence from the ground truth ``p`` (ten long MrBayes runs pooled) to the estimate ``q``:

.. math::

    KL(p \\| q) = \\sum_T p(T) \\log p(T) - \\sum_T p(T) \\log \\max(q(T), \\epsilon),

over the topologies of the reference, with the floor ``epsilon = 2.22e-16`` (machine epsilon)
for topologies the estimate cannot produce.  Their golden runs are MrBayes ``.trprobs``
summaries of 750,001 trees each; they pooled the replicates by turning each weight into a
count, ``round(w * 750001)``, and dividing the summed counts by ``10 * 750001``.

:func:`kl_to_reference` measures a fitted distribution against a reference sample (``sbn
kl``); :func:`kl_divergence` and :func:`pooled_frequencies` are its two steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..trees import TreeSample
from .distribution import TreeDistribution

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


@dataclass(frozen=True)
class KLResult:
    """``KL(p || q)`` of a model ``q`` from a reference ``p``, with what it was computed from.

    Attributes
    ----------
    value : float
        ``KL(p || q)`` in nats (see the module docstring).
    topologies : ndarray, int32, shape (T, N)
        The reference topologies (those with ``p > 0``) as canonical parent arrays on the
        model's taxa.
    p, q : ndarray, shape (T,)
        Their reference probabilities and their probabilities under the model.
    floor : float
        The probability used where ``q = 0``.
    """

    value: float
    topologies: np.ndarray
    p: np.ndarray
    q: np.ndarray
    floor: float

    @property
    def reference_topologies(self) -> int:
        """How many topologies the reference has."""
        return int(self.p.shape[0])

    @property
    def reference_mass_in_support(self) -> float:
        """``sum p(T)`` over the reference topologies the model can produce (``q > 0``):
        1 when the floor plays no part."""
        return float(self.p[self.q > 0].sum())

    @property
    def model_mass_on_reference(self) -> float:
        """``sum q(T)`` over the reference topologies: how much of the model's mass the
        reference covers."""
        return float(self.q.sum())


def kl_to_reference(
    model: TreeDistribution,
    reference: TreeSample,
    trees_per_run: int | None = None,
    floor: float = KL_FLOOR,
) -> KLResult:
    """``KL(reference || model)``, the measure of Zhang & Matsen (NeurIPS 2018, Table 1).

    .. math::

        KL(p \\| q) = \\sum_{T: p(T) > 0} p(T) \\log p(T)
                     - \\sum_{T: p(T) > 0} p(T) \\log \\max(q(T), \\epsilon)

    Parameters
    ----------
    model
        Any fitted distribution ``q`` (:class:`~phylo.sbn.SBNModel`,
        :class:`~phylo.sbn.SRFModel`).
    reference
        The reference sample (e.g. golden runs, one run per file); its taxa may be listed in
        another order than the model's, but must be the same set.
    trees_per_run
        How to pool the reference runs into ``p`` (see :func:`pooled_frequencies`).
    floor
        ``epsilon``, the probability counted for reference topologies the model cannot
        produce (default: machine epsilon, as in the paper).

    Returns
    -------
    KLResult
        The value, and the reference topologies with ``p`` and ``q``.
    """
    if not floor >= 0:
        raise InputError(f"the floor must be a probability >= 0, got {floor}")
    p = pooled_frequencies(reference, trees_per_run)
    keep = p > 0
    topologies = model.topologies(reference)[keep]
    q = model.prob(topologies)
    p = p[keep]
    return KLResult(kl_divergence(p, q, floor), topologies, p, q, float(floor))
