r"""The variational family of VBPI: an SBN over topologies and lognormal branch lengths.

Zhang & Matsen 2019 ("Variational Bayesian phylogenetic inference", ICLR):

.. math:: Q_{\phi,\psi}(\tau, t) = Q_\phi(\tau)\, Q_\psi(t \mid \tau),

where :math:`Q_\phi` is an unrooted subsplit Bayesian network
(:class:`phylo.sbn.SBNModel`) whose support (root splits and parent-child subsplit
pairs) comes from a tree sample (MCMC, bootstrap or UFBoot trees), with conditional
probabilities :math:`\theta = \mathrm{softmax}(\phi)` within each parent group, and
:math:`Q_\psi(t \mid \tau)` the lognormal family of :mod:`phylo.vi.branches`.

The topology part starts uniform within the support (:math:`\phi = 0`), as in VBPI.  Its
score :math:`\nabla_\phi \log Q_\phi(\tau)` is the expected parameter counts over the
rootings of :math:`\tau` minus :math:`\theta` times their group totals
(:meth:`phylo.sbn.SBNModel.grad_log_prob`); the estimators only ever need weighted sums
:math:`\sum_j c_j \nabla_\phi \log Q_\phi(\tau_j)`, which :meth:`VariationalFamily.score_sum`
computes with one E-step pass over the drawn trees (the sum is linear in the counts).

A fitted family is saved as an ordinary SBN model file (``"kind": "sbn"``, ``"method":
"vi"``) that ``sbn top``, ``sbn prob``, ``sbn sample`` and ``sbn kl`` read as they are, with
the branch-length parameters in a ``"branch_lengths"`` object beside it
(:meth:`BranchLengthModel.to_dict <phylo.vi.branches.BranchLengthModel.to_dict>`), which
:func:`load_family` reads back.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..sbn import rootings
from ..sbn.io import model_from_dict
from ..sbn.model import SBNModel
from ..sbn.support import index_sample
from .branches import BranchLengthModel, LognormalBranches

#: The ``"method"`` a VI model file records.
METHOD = "vi"
#: How the topology distribution may start (the first is the default).
INITS = ("em-alpha", "uniform")
#: Starting logits lie at most this far below the largest of their group (a probability
#: of about 1e-13 relative to it), so that none is infinite.
LOGIT_FLOOR = 30.0


class SupportWarning(UserWarning):
    """The tree sample gives a support with a single topology: only branch lengths are
    learnt."""


def group_log_softmax(phi: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``log softmax`` of ``phi`` within each group ``offsets[k]:offsets[k+1]``,
    vectorised (empty groups hold nothing)."""
    sizes = np.diff(offsets)
    starts = offsets[:-1][sizes > 0]
    sizes = sizes[sizes > 0]
    mx = np.maximum.reduceat(phi, starts)
    shifted = phi - np.repeat(mx, sizes)
    lse = np.log(np.add.reduceat(np.exp(shifted), starts))
    return shifted - np.repeat(lse, sizes)


def _floored(log_theta: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    sizes = np.diff(offsets)
    starts = offsets[:-1][sizes > 0]
    top = np.repeat(np.maximum.reduceat(log_theta, starts), sizes[sizes > 0])
    return np.maximum(log_theta, top - LOGIT_FLOOR)


@dataclass
class TopologyDraws:
    """Unrooted topologies with what the family needs of them.

    Attributes
    ----------
    parents : ndarray, int32, (K, 2n-2)
        Canonical parent arrays.
    table : ndarray, int32, (K, 2n-3, 7)
        SBN parameter ids of every edge (:meth:`phylo.sbn.SBNModel.param_table`).
    log_q : ndarray, (K,)
        :math:`\\log Q_\\phi(\\tau)` (sum over rootings).
    rooting : ndarray, (K, 2n-3)
        Posterior probability of the root on each edge (for the score).
    index : ndarray, (K, 2n-3, 3)
        Branch-length parameter slots (:meth:`BranchLengthModel.index`).
    """

    parents: np.ndarray
    table: np.ndarray
    log_q: np.ndarray
    rooting: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return self.parents.shape[0]


class VariationalFamily:
    """An SBN over topologies and lognormal branch lengths given the topology.

    Parameters
    ----------
    sbn : phylo.sbn.SBNModel
        An unrooted SBN with parent-child subsplit conditioning: the support, and the
        topology distribution (its ``log_theta`` are the starting logits).
    branches : BranchLengthModel, optional
        Default: a new one on the SBN's support, with PSPs when ``psp``.
    psp : bool
        Whether a new branch-length model has PSP parameters.
    """

    def __init__(self, sbn: SBNModel, branches: BranchLengthModel | None = None, psp=True):
        if getattr(sbn, "kind", None) != "sbn":
            raise InputError("variational inference needs an SBN (not a table of frequencies)")
        if sbn.rooted:
            raise InputError("variational inference here is over unrooted topologies")
        if sbn.conditioning != "pcsp":
            raise InputError("the SBN must condition on parent subsplits (not a CCD)")
        self.sbn = sbn
        self.branches = branches if branches is not None else BranchLengthModel(sbn.support, psp)
        if self.branches.support is not sbn.support:
            raise InputError("the branch-length model belongs to another support")
        self._phi = sbn.log_theta.copy()
        sizes = np.diff(sbn.offsets)
        self._starts = sbn.offsets[:-1][sizes > 0]
        self._sizes = sizes[sizes > 0]

    @classmethod
    def from_sample(cls, sample, psp: bool = True, init: str = "em-alpha") -> VariationalFamily:
        """The family whose SBN support is that of an unrooted tree sample
        (:class:`phylo.trees.TreeSample`).

        ``init="em-alpha"``: the topology distribution starts at the sample's SBN-EM-alpha
        estimate (:func:`phylo.sbn.fit`, logits floored at :data:`LOGIT_FLOOR` below the
        largest of their group); ``"uniform"``: uniform over each parent's children, as
        VBPI starts.  A sample with one topology gives a :class:`SupportWarning` (the
        topology is then fixed and only branch lengths are learnt)."""
        if sample.rooted:
            raise InputError("the tree sample must be unrooted (VBPI's SBN is over unrooted trees)")
        if sample.n_topologies == 0:
            raise InputError("the tree sample is empty")
        if init not in INITS:
            raise InputError(f"unknown initialisation {init!r}: expected one of {', '.join(INITS)}")
        if sample.n_topologies == 1:
            warnings.warn(
                "the tree sample holds a single topology: the SBN support is that one tree, "
                "so only its branch lengths are learnt",
                SupportWarning,
                stacklevel=2,
            )
        if init == "em-alpha":
            from ..sbn.estimators import fit

            fitted = fit(sample, "em-alpha")
            support = fitted.support
            log_theta = group_log_softmax(
                _floored(fitted.log_theta, support.offsets), support.offsets
            )
        else:
            support, _ = index_sample(sample.parents, sample.n_taxa, False, "pcsp")
            sizes = np.diff(support.offsets)
            log_theta = -np.log(np.repeat(sizes, sizes).astype(float))
        sbn = SBNModel(sample.taxa, support, log_theta, METHOD, {})
        return cls(sbn, psp=psp)

    # -- parameters -----------------------------------------------------------------------
    @property
    def taxa(self):
        return self.sbn.taxa

    @property
    def n_taxa(self) -> int:
        return self.sbn.n_taxa

    @property
    def phi(self) -> np.ndarray:
        """The logits :math:`\\phi` (a copy)."""
        return self._phi.copy()

    def set_logits(self, phi) -> None:
        """Set :math:`\\phi`; the SBN's ``log_theta`` becomes ``log softmax(phi)`` per
        group (in place, so the SBN keeps its tree index)."""
        phi = np.asarray(phi, dtype=float)
        if phi.shape != self._phi.shape:
            raise InputError(f"expected {self._phi.shape[0]} logits, got shape {phi.shape}")
        self._phi = phi.copy()
        self.sbn.log_theta = group_log_softmax(phi, self.sbn.offsets)

    @property
    def n_topology_params(self) -> int:
        return self._phi.shape[0]

    @property
    def n_branch_params(self) -> int:
        return 2 * self.branches.n

    # -- topologies ---------------------------------------------------------------------------
    def topologies(self, trees) -> TopologyDraws:
        """:class:`TopologyDraws` of given trees (anything :meth:`SBNModel.topologies` reads)."""
        parents, table = self.sbn.param_table(trees)
        log_q, q = rootings.posterior(parents, table, self.sbn._logtheta_ext(), self.n_taxa)
        return TopologyDraws(parents, table, log_q, q, self.branches.index(table))

    def draw_topologies(self, k: int, rng: np.random.Generator) -> TopologyDraws:
        """``k`` exact, independent draws from :math:`Q_\\phi`."""
        parents, _ = self.sbn.sample(int(k), rng)
        return self.topologies(parents)

    def logits_gradient(self, counts: np.ndarray) -> np.ndarray:
        """:math:`c - \\theta \\odot` (group totals of :math:`c`): the derivative with respect
        to :math:`\\phi` of a function whose derivative with respect to :math:`\\log\\theta`
        (taken as free coordinates) is ``counts``."""
        c = np.asarray(counts, dtype=float)
        tot = np.add.reduceat(c, self._starts)
        return c - np.exp(self.sbn.log_theta) * np.repeat(tot, self._sizes)

    def score_sum(self, draws: TopologyDraws, weights) -> np.ndarray:
        """:math:`\\sum_j w_j \\nabla_\\phi \\log Q_\\phi(\\tau_j)` over ``draws``."""
        counts = rootings.weighted_counts(
            draws.parents,
            draws.table,
            draws.rooting,
            np.asarray(weights, dtype=float),
            self.n_taxa,
            self.n_topology_params + 1,
        )
        return self.logits_gradient(counts[:-1])

    def derivation_score_sum(self, derivations, weights) -> np.ndarray:
        """:math:`\\sum_j w_j \\nabla_\\phi \\log Q_\\phi(\\tau_j, r_j)` for rooted
        derivations (sequences of SBN parameter ids, root split first)."""
        counts = np.zeros(self.n_topology_params)
        for ids, w in zip(derivations, np.asarray(weights, dtype=float)):
            np.add.at(counts, np.asarray(ids, dtype=np.int64), w)
        return self.logits_gradient(counts)

    # -- branch lengths -----------------------------------------------------------------------
    def branch_distribution(self, tree) -> LognormalBranches:
        """The learnt branch-length distribution :math:`Q_\\psi(t \\mid \\tau)` of one
        topology (a :class:`~phylo.trees.Tree`, Newick string or canonical parent array on
        the family's taxa), in the branch order of
        :class:`~phylo.likelihood.TreeLikelihood` for that tree's canonical parent
        array."""
        parents, table = self.sbn.param_table(tree)
        if parents.shape[0] != 1:
            raise InputError("branch_distribution takes one topology")
        return self.branches.distribution(table[0])

    def branch_lengths(self, trees, rng: np.random.Generator | None = None) -> np.ndarray:
        """Branch lengths for topologies from the learnt distribution: ``(T, N)`` per node of
        each canonical parent array (the root's entry 0), the lognormals' medians
        :math:`e^{\\mu}` or, with ``rng``, one draw from :math:`Q_\\psi(t \\mid \\tau)` each (so
        that topologies drawn from the SBN and lengths drawn here are exact draws from the
        joint :math:`Q(\\tau, t)`)."""
        parents, table = self.sbn.param_table(trees)
        mu, log_sigma = self.branches.moments(self.branches.index(table))
        x = mu if rng is None else mu + np.exp(log_sigma) * rng.standard_normal(mu.shape)
        out = np.zeros(parents.shape)
        out[:, : mu.shape[1]] = np.exp(x)
        return out

    # -- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """An SBN model file's content with ``"branch_lengths"`` beside it."""
        data = self.sbn.to_dict()
        data["branch_lengths"] = self.branches.to_dict()
        return data

    def save(self, path: str, provenance: dict | None = None) -> None:
        """Write the family as an SBN model file, atomically."""
        from ..outputs import atomic_open
        from ..provenance import record

        data = self.to_dict()
        if provenance is not None:
            data["provenance"] = provenance
        if data.get("provenance") is None:
            data["provenance"] = record(parameters={"method": METHOD})
        text = json.dumps(data, indent=1, allow_nan=False)
        with atomic_open(path) as fh:
            fh.write(text + "\n")

    @classmethod
    def from_dict(cls, data: dict, path: str = "<model>") -> VariationalFamily:
        sbn = model_from_dict(data, path)
        if not isinstance(sbn, SBNModel):
            raise InputError("not a VI model file (not an SBN)", path)
        branches = data.get("branch_lengths")
        if branches is None:
            raise InputError(
                "not a VI model file: no \"branch_lengths\" (written by 'sbn vi')", path
            )
        try:
            bl = BranchLengthModel.from_dict(branches, sbn.support)
        except InputError as exc:
            raise exc.located(path) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"corrupted model file: {exc}", path) from None
        family = cls(sbn, bl)
        return family


def load_family(path: str) -> VariationalFamily:
    """Read a model file written by ``sbn vi`` (:meth:`VariationalFamily.save`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read model file: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError:
        raise InputError("not a model file (not UTF-8 text)", path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not a model file: invalid JSON ({exc.msg})", path, exc.lineno, exc.colno
        ) from None
    return VariationalFamily.from_dict(data, path)
