r"""The Gumbel distribution and the tricks built on it: Gumbel-max, Gumbel-top-k, truncation.

If :math:`G_i \sim \mathrm{Gumbel}(\phi_i)` independently, with
:math:`\phi_i = \log p_i`, then

* :math:`\arg\max_i G_i \sim \mathrm{Categorical}(p)` (the Gumbel-max trick), and
  :math:`\max_i G_i \sim \mathrm{Gumbel}(\log \sum_i p_i)`;
* the indices of the :math:`k` largest :math:`G_i`, in decreasing order, are an ordered sample
  of :math:`k` distinct categories drawn *without replacement*, with probability
  :math:`\prod_{j=1}^k p_{b_j} / (1 - \sum_{l<j} p_{b_l})` (the Gumbel-top-k trick,
  Vieira 2014; Kool, van Hoof & Welling 2019, "Stochastic Beams and Where to Find Them").

Stochastic beam search needs Gumbels conditioned on their maximum: given
:math:`G_i \sim \mathrm{Gumbel}(\phi_i)` with maximum :math:`Z`, the values

.. math:: \tilde G_i = -\log\left(e^{-T} - e^{-Z} + e^{-G_i}\right)

are distributed as the :math:`G_i` conditioned on :math:`\max_i \tilde G_i = T`
(Kool et al. 2019, appendix B).  :func:`truncate` evaluates this in the numerically stable form

.. math:: v_i = T - G_i + \log(1 - e^{G_i - Z}), \qquad
          \tilde G_i = T - \max(v_i, 0) - \log(1 + e^{-|v_i|}).
"""

from __future__ import annotations

import numpy as np

from phylo.errors import InputError
from phylo.ml._checks import as_float_array, generator, log1mexp, positive_int


def sample_gumbel(rng: np.random.Generator, loc=0.0, size=None) -> np.ndarray:
    r"""Draw :math:`\mathrm{Gumbel}(\mathrm{loc}, 1)` variates.

    Entries of ``loc`` equal to ``-inf`` give ``-inf`` (an impossible outcome keeps an
    impossible key).

    Parameters
    ----------
    rng
        Source of randomness.
    loc
        Location(s) :math:`\phi`; broadcast against ``size``.
    size
        Output shape; defaults to the shape of ``loc``.
    """
    rng = generator(rng)
    loc = np.asarray(loc, dtype=np.float64)
    shape = loc.shape if size is None else size
    g = rng.gumbel(0.0, 1.0, size=shape)
    return loc + g


def gumbel_max(logits, rng: np.random.Generator) -> int:
    r"""One categorical sample by the Gumbel-max trick, :math:`\arg\max_i(\phi_i + G_i)`."""
    logits = as_float_array(logits, "logits", ndim=1, allow_neg_inf=True)
    return int(np.argmax(sample_gumbel(rng, logits)))


def gumbel_top_k(logits, k: int, rng: np.random.Generator, return_keys: bool = False):
    r"""Sample :math:`k` distinct categories without replacement by the Gumbel-top-k trick.

    Parameters
    ----------
    logits
        Unnormalised log-probabilities :math:`\phi` of shape ``(n,)``; ``-inf`` marks
        impossible categories.
    k
        Number of distinct categories, at most the number of possible ones.
    rng
        Source of randomness.
    return_keys
        Also return the perturbed log-probabilities :math:`\phi_i + G_i` of the sample.

    Returns
    -------
    indices : ndarray of int, shape (k,)
        The sample, in the order in which sequential sampling without replacement would draw
        it (decreasing perturbed value).
    keys : ndarray, shape (k,)
        Only if ``return_keys``: the perturbed values, decreasing.
    """
    logits = as_float_array(logits, "logits", ndim=1, allow_neg_inf=True)
    k = positive_int(k, "k")
    possible = int(np.isfinite(logits).sum())
    if k > possible:
        raise InputError(f"k: cannot draw {k} distinct categories from {possible} possible ones")
    keys = sample_gumbel(rng, logits)
    top = np.argpartition(-keys, k - 1)[:k]
    top = top[np.argsort(-keys[top], kind="stable")]
    if return_keys:
        return top, keys[top]
    return top


def truncate(gumbels, maximum):
    r"""Shift Gumbels so that their maximum becomes ``maximum`` (Kool et al. 2019, app. B).

    Parameters
    ----------
    gumbels
        Perturbed values :math:`G_i` of the children of one node, shape ``(m,)``; ``-inf``
        allowed for impossible children.
    maximum
        The parent's perturbed value :math:`T`, the required maximum.

    Returns
    -------
    ndarray, shape (m,)
        :math:`\tilde G_i`, with :math:`\max_i \tilde G_i = T` exactly (the argmax keeps
        :math:`T`) and the order of the :math:`G_i` preserved.
    """
    g = as_float_array(gumbels, "gumbels", ndim=1, allow_neg_inf=True)
    t = float(maximum)
    z = np.max(g)
    with np.errstate(invalid="ignore"):
        v = t - g + log1mexp(g - z)
    out = t - np.maximum(v, 0.0) - np.log1p(np.exp(-np.abs(v)))
    out[np.isneginf(g)] = -np.inf
    out[g == z] = t
    return out
