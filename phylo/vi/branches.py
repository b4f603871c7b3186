r"""Lognormal branch lengths given the topology, parameterised by splits and primary
subsplit pairs (Zhang & Matsen 2019, "Variational Bayesian phylogenetic inference", ICLR,
section 3.2).

Given an unrooted topology :math:`\tau`, the branch lengths are independent and lognormal:

.. math:: \log t_e \sim \mathcal N\big(\mu(e, \tau), \sigma(e, \tau)^2\big), \qquad
          \mu(e, \tau) = \psi^\mu_{s(e)} + \sum_{p \in \mathrm{psp}(e, \tau)} \psi^\mu_p,
          \quad
          \log \sigma(e, \tau) = \psi^\sigma_{s(e)}
              + \sum_{p \in \mathrm{psp}(e, \tau)} \psi^\sigma_p,

where :math:`s(e)` is the split of edge :math:`e` and :math:`\mathrm{psp}(e, \tau)` its
*primary subsplit pairs*: for each side :math:`W` of the split that is not a single taxon,
the pair (split, the subsplit of :math:`W` at the node at that end of :math:`e`).  Without
PSPs (``psp=False``) only the split parameters enter.  A PSP is exactly the SBN parameter
(parent-child subsplit pair) whose parent key is ``(complement of W, W)`` and whose child is
the subsplit of :math:`W`, i.e. the subsplit of :math:`W` when the tree is rooted on
:math:`e`; so the parameters are attached to the SBN's own ids: the root splits (every split
of the support) and the PCSPs under a parent key whose two clades make up all taxa.  An SBN
fitted to a tree sample contains the split and both PSPs of every edge of every tree it can
produce (each is the same edge of some sampled tree rooted on it).

Branch ``i`` is the edge above node ``i`` of the canonical parent array, the order of
:class:`~phylo.likelihood.TreeLikelihood`; in an SBN parameter table
(:mod:`phylo.sbn._kernels`) row ``i`` holds the split of that edge in column 0 and its two
PSPs in columns 1 (the side below node ``i``; none for a leaf) and 4 (the side above).

Departures from VBPI's code (zcrabbit/vbpi, vbpi-torch):

* VBPI adds a constant -2 to every mean and starts the parameters at small random values
  (Xavier initialisation); here the split means start at :data:`INITIAL_MEAN` (-2) and
  every other parameter at 0: the same starting distribution without randomness, which
  the additive parameterisation does not need (no symmetry to break).
* An edge whose split or PSP is not in the support (only for topologies the SBN gives
  probability zero, e.g. a tree handed to :meth:`BranchLengthModel.distribution`) uses
  mean :data:`INITIAL_MEAN` and log standard deviation 0 for a missing split and 0 for a
  missing PSP, instead of failing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

#: Mean of log branch length a split parameter starts at (VBPI's constant shift).
INITIAL_MEAN = -2.0
#: Columns of an SBN parameter table holding each edge's split and its two PSPs.
TABLE_COLUMNS = (0, 1, 4)
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def psp_parameters(support) -> np.ndarray:
    """SBN parameter ids of the primary subsplit pairs: PCSPs under a parent key
    ``(sibling, clade)`` with ``sibling | clade`` the full taxon set."""
    if support.conditioning != "pcsp":
        raise InputError("the branch-length model needs an SBN with parent-child subsplit pairs")
    keys = support.keys
    clades = support.clades
    full = clades[0]
    sib, clade = keys[:, 0], keys[:, 1]
    ok = sib >= 0
    union = np.zeros_like(clades[clade])
    union[ok] = clades[sib[ok]] | clades[clade[ok]]
    is_psp_key = ok & np.all(union == full[None, :], axis=1)
    is_psp_key[0] = False
    return np.flatnonzero(is_psp_key[support.param_key]).astype(np.int64)


@dataclass
class LognormalBranches:
    r"""The branch-length distribution of one topology: independent
    :math:`\log t_i \sim \mathcal N(\mu_i, \sigma_i^2)`, branch ``i`` the edge above node
    ``i`` of the topology's canonical parent array.

    Attributes
    ----------
    mean_log : ndarray, shape (2n-3,)
        :math:`\mu_i`.
    sd_log : ndarray, shape (2n-3,)
        :math:`\sigma_i`.
    """

    mean_log: np.ndarray
    sd_log: np.ndarray

    @property
    def n_branches(self) -> int:
        return self.mean_log.shape[0]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, 2n-3)`` branch lengths, exact draws."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        z = rng.standard_normal((int(n), self.n_branches))
        return np.exp(self.mean_log + self.sd_log * z)

    def log_pdf_log(self, X) -> np.ndarray:
        r""":math:`\log q(x)` of log branch lengths ``X`` (rows), a normal density."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        z = (X - self.mean_log) / self.sd_log
        return -(LOG_SQRT_2PI + np.log(self.sd_log) + 0.5 * z * z).sum(axis=-1)

    def log_pdf(self, T) -> np.ndarray:
        r""":math:`\log q(t) = \log q(\log t) - \sum_i \log t_i` of branch lengths ``T``
        (rows): the density with respect to the branch lengths themselves, as an
        importance-sampling proposal for ``p(D | t) p(t)`` needs it."""
        T = np.atleast_2d(np.asarray(T, dtype=float))
        with np.errstate(divide="ignore"):
            X = np.log(T)
        return self.log_pdf_log(X) - X.sum(axis=-1)

    def mean(self) -> np.ndarray:
        """:math:`E[t_i] = e^{\\mu_i + \\sigma_i^2 / 2}`."""
        return np.exp(self.mean_log + 0.5 * self.sd_log**2)


class BranchLengthModel:
    """The lognormal branch-length family on an SBN's support (see the module docstring).

    Parameters
    ----------
    support : phylo.sbn.Support
        An unrooted support with parent-child subsplit conditioning.
    psp : bool
        Attach parameters to primary subsplit pairs as well as to splits.
    mean, log_sd : array, optional
        The parameters :math:`\\psi^\\mu, \\psi^\\sigma`, one per entry of
        :attr:`param_ids` (default: split means :data:`INITIAL_MEAN`, all else 0).

    Attributes
    ----------
    param_ids : ndarray of int
        The SBN parameter id each branch-length parameter is attached to: the
        ``support.n_rootsplits`` splits first, then the PSPs (when ``psp``).
    mean, log_sd : ndarray
        The trainable values (:attr:`n` each).
    """

    def __init__(self, support, psp: bool = True, mean=None, log_sd=None):
        if support.rooted:
            raise InputError("the branch-length model is for unrooted topologies")
        self.support = support
        self.psp = bool(psp)
        n_rs = support.n_rootsplits
        extra = psp_parameters(support) if self.psp else np.zeros(0, np.int64)
        self.param_ids = np.concatenate([np.arange(n_rs, dtype=np.int64), extra])
        self.n = int(self.param_ids.shape[0])
        self.n_splits = n_rs
        M = support.n_params
        # SBN id -> parameter; ids -1 (no PSP: a leaf) and M (outside the support), and
        # parameters that carry nothing, go to the zero slot n; a missing split to slot n+1
        self._zero, self._missing = self.n, self.n + 1
        self._lookup = np.full(M + 2, self._zero, dtype=np.int64)
        self._lookup[self.param_ids] = np.arange(self.n)
        self._split_lookup = self._lookup.copy()
        self._split_lookup[M] = self._missing
        self._split_lookup[-1] = self._missing
        self._values = np.zeros((2, self.n + 2))
        self._values[0, : self.n_splits] = INITIAL_MEAN
        self._values[0, self._missing] = INITIAL_MEAN
        if mean is not None:
            self.mean = mean
        if log_sd is not None:
            self.log_sd = log_sd

    # -- parameters -----------------------------------------------------------------------
    @property
    def mean(self) -> np.ndarray:
        return self._values[0, : self.n]

    @mean.setter
    def mean(self, value):
        self._values[0, : self.n] = self._checked(value, "mean")

    @property
    def log_sd(self) -> np.ndarray:
        return self._values[1, : self.n]

    @log_sd.setter
    def log_sd(self, value):
        self._values[1, : self.n] = self._checked(value, "log_sd")

    def _checked(self, value, name) -> np.ndarray:
        v = np.asarray(value, dtype=float)
        if v.shape != (self.n,):
            raise InputError(f"{name}: expected {self.n} values, got shape {v.shape}")
        if not np.isfinite(v).all():
            raise InputError(f"{name}: the branch-length parameters must be finite")
        return v

    def vector(self) -> np.ndarray:
        """``[mean, log_sd]`` as one vector (for optimisers)."""
        return np.concatenate([self.mean, self.log_sd])

    def set_vector(self, v) -> None:
        v = np.asarray(v, dtype=float)
        self.mean, self.log_sd = v[: self.n], v[self.n :]

    # -- per topology -----------------------------------------------------------------------
    def index(self, table: np.ndarray) -> np.ndarray:
        """``(T, 2n-3, 3)`` parameter slots of every branch of every tree (split, PSP below,
        PSP above), from the trees' SBN parameter tables ``(T, 2n-3, 7)``
        (:meth:`phylo.sbn.SBNModel.param_table`).  Without PSPs the last two are the zero
        slot."""
        table = np.asarray(table)
        out = np.empty(table.shape[:2] + (3,), dtype=np.int64)
        out[..., 0] = self._split_lookup[table[..., 0]]
        if self.psp:
            out[..., 1] = self._lookup[table[..., 1]]
            out[..., 2] = self._lookup[table[..., 4]]
        else:
            out[..., 1:] = self._zero
        return out

    def moments(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, log_sigma)``, each ``(T, 2n-3)``: the sums of the parameters in the slots
        ``index`` (:meth:`index`)."""
        mu = self._values[0][index].sum(axis=-1)
        log_sigma = self._values[1][index].sum(axis=-1)
        return mu, log_sigma

    def accumulate(self, index: np.ndarray, d_mu: np.ndarray, d_log_sigma: np.ndarray):
        """The gradient with respect to :meth:`vector` of a function whose derivatives with
        respect to every branch's ``mu`` and ``log_sigma`` are ``d_mu``, ``d_log_sigma``
        (each ``(T, 2n-3)``): every branch's derivative goes to each parameter summed into
        it."""
        size = self.n + 2
        flat = index.reshape(-1, 3)
        g_mu = np.zeros(size)
        g_ls = np.zeros(size)
        dm = np.asarray(d_mu, dtype=float).reshape(-1)
        ds = np.asarray(d_log_sigma, dtype=float).reshape(-1)
        for j in range(3):
            g_mu += np.bincount(flat[:, j], weights=dm, minlength=size)
            g_ls += np.bincount(flat[:, j], weights=ds, minlength=size)
        return np.concatenate([g_mu[: self.n], g_ls[: self.n]])

    def distribution(self, table_row: np.ndarray) -> LognormalBranches:
        """The branch lengths of one topology, from its ``(2n-3, 7)`` parameter table."""
        idx = self.index(np.asarray(table_row)[None])
        mu, ls = self.moments(idx)
        return LognormalBranches(mu[0], np.exp(ls[0]))

    # -- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The ``"branch_lengths"`` object of a VI model file: the SBN parameter id of every
        parameter (splits are root-split ids), and its mean and log-sd values."""
        return {
            "distribution": "lognormal",
            "psp": self.psp,
            "initial_mean": INITIAL_MEAN,
            "parameters": self.param_ids.tolist(),
            "mean": [float(x) for x in self.mean],
            "log_sd": [float(x) for x in self.log_sd],
        }

    @classmethod
    def from_dict(cls, data: dict, support) -> BranchLengthModel:
        """Read :meth:`to_dict`'s output for the SBN ``support`` it was written with."""
        if data.get("distribution") != "lognormal":
            raise ValueError("branch_lengths: only the lognormal distribution is known")
        psp = data["psp"]
        if not isinstance(psp, bool):
            raise ValueError("branch_lengths: 'psp' must be true or false")
        model = cls(support, psp)
        ids = np.asarray(data["parameters"], dtype=np.int64)
        if not np.array_equal(ids, model.param_ids):
            raise ValueError("branch_lengths: the parameters do not match the SBN's splits/PSPs")
        mean = np.asarray(data["mean"], dtype=float)
        log_sd = np.asarray(data["log_sd"], dtype=float)
        if mean.shape != (model.n,) or log_sd.shape != (model.n,):
            raise ValueError("branch_lengths: one mean and one log_sd per parameter expected")
        model.mean, model.log_sd = mean, log_sd
        return model
