"""SBN estimators: simple averaging (SBN-SA), EM (SBN-EM) and regularised EM (SBN-EM-alpha).

Zhang & Matsen, "Generalizing tree probability estimation via Bayesian networks", NeurIPS
2018, section 4.  Notation: the training sample is unique topologies ``T_1..T_N`` with
frequencies ``w_t`` (summing to 1); ``E = 2n-3`` is the number of rootings of an unrooted tree.

Rooted samples
    A rooted tree determines all its subsplits, so the maximum-likelihood SBN is the
    normalised counts ``theta_{s|t} = m_{s,t} / sum_s' m_{s',t}`` with
    ``m_{s,t} = sum_t w_t [T_t uses (t, s)]``.  Methods ``sa`` and ``em`` both give it;
    ``em-alpha`` adds the pseudo-counts described below (one step: nothing is latent).

SBN-SA (unrooted)
    Every tree is counted in all of its rootings with weight ``1/E``.  Because a parameter's
    parent key fixes the size of its parent clade ``C``, and a PCSP under ``C`` appears in the
    same number of rootings (``2(n-|C|)-1``) of every tree that has it, counting each
    parameter *once* per tree gives the same normalised estimate:
    ``m~_{s,t} = sum_t (w_t / E) [T_t uses (t, s) in some rooting]`` and
    ``theta^SA = m~`` normalised within each parent key.  These ``m~`` are the counts of the
    paper's code and of bito.

SBN-EM (unrooted)
    The rooting is latent.  E-step: with the current ``theta``, the posterior over the
    rootings of each tree, ``q_t(e) = p(T_t rooted at e) / p(T_t)``, computed for all ``E``
    rootings in O(n) by an upward and a downward pass (:mod:`phylo.sbn.rootings`);
    the expected counts ``m_{s,t} = sum_t w_t P_{q_t}(the rooting uses (t, s))``.
    M-step: ``theta = m`` normalised.  Objective: ``L(theta) = sum_t w_t log p(T_t)``,
    which EM never lowers.  The paper's stopping rule: start from SBN-SA; at iteration ``k``
    (``k = 0, 1, ...``) evaluate ``L`` at the current parameters and update them; stop when
    ``k > min_iter`` and ``|L_k - L_{k-1}| < tol`` or after ``max_iter`` iterations (its
    notebook used ``max_iter=1000, tol=1e-5, min_iter=50``).

SBN-EM-alpha (unrooted)
    Maximum a posteriori EM with Dirichlet priors of strength ``alpha`` centred on SBN-SA:
    ``theta = (m + beta)`` normalised, objective ``L(theta) + sum_m beta_m log theta_m``.

    * ``alpha_form="paper"`` (default; the paper's code): root splits get ``beta_r = alpha
      m~_r``; the parameters under parent key ``t`` share ``alpha M~_t`` equally,
      ``beta_{s,t} = alpha M~_t / K_t``, where ``M~_t = sum_s m~_{s,t}`` is the SA count of the
      parent and ``K_t`` the number of child subsplits seen under it.  EM starts from
      ``(m~ + beta)`` normalised.
    * ``alpha_form="bito"`` (the ``bito`` library): ``beta_{s,t} = alpha m^u_{s,t}`` with
      ``m^u`` the expected counts under uniformly distributed rootings (each PCSP weighted by
      the fraction of rootings that use it), for root splits as well.  EM starts from SBN-SA.

    Both only smooth within the support: subsplits never seen keep probability zero.
    Weights are frequencies, so ``alpha`` means the same whatever the sample size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError
from ..trees import TreeSample
from . import _kernels as K
from . import rootings
from .methods import ALPHA_FORMS, DEFAULT_ALPHA, SBN_METHODS
from .model import SBNModel
from .support import index_sample


class Training:
    """A sample indexed for SBN estimation: support, per-tree parameter tables, weights.

    Parameters
    ----------
    sample
        The training topologies.
    conditioning
        ``"pcsp"`` (SBN) or ``"clade"`` (CCD).
    weights
        Frequencies of the topologies (default: ``sample.frequencies()``).
    """

    def __init__(
        self, sample: TreeSample, conditioning: str = "pcsp", weights: np.ndarray | None = None
    ):
        self.sample = sample
        self.n_taxa = sample.n_taxa
        self.rooted = sample.rooted
        self.parents = sample.parents
        w = sample.frequencies() if weights is None else np.asarray(weights, dtype=float)
        keep = w > 0
        if not keep.all():
            self.parents = self.parents[keep]
            w = w[keep]
        if self.parents.shape[0] == 0:
            raise InputError("no trees with positive weight to fit a model to")
        self.weights = w / w.sum()
        self.support, self.table = index_sample(
            self.parents, self.n_taxa, self.rooted, conditioning
        )
        self.M = self.support.n_params
        self._sa = None

    @property
    def n_rootings(self) -> int:
        return 1 if self.rooted else 2 * self.n_taxa - 3

    def sa_counts(self) -> np.ndarray:
        """``m~`` (length ``M + 1``; the last entry is the unused sentinel)."""
        if self._sa is None:
            c = np.zeros(self.M + 1)
            K.once_counts(self.table, self.weights / self.n_rootings, c)
            self._sa = c
        return self._sa

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """``log`` of ``values`` normalised within groups, with the ``-inf`` sentinel."""
        out = np.empty(self.M + 1)
        K.normalise_groups(values, self.support.offsets, out)
        out[-1] = -np.inf
        return out

    def estep(self, log_theta_ext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected counts and per-tree log likelihoods at the given parameters."""
        counts = np.zeros(self.M + 1)
        ll = np.empty(self.parents.shape[0])
        if self.rooted:
            K.rooted_logprob(self.table, log_theta_ext, ll)
            flat = self.table[:, :, 0]
            mask = flat >= 0
            np.add.at(counts, flat[mask], np.repeat(self.weights, mask.sum(axis=1)))
        else:
            counts, ll = rootings.estep(
                self.parents, self.table, log_theta_ext, self.weights, self.n_taxa
            )
        return counts, ll

    def log_likelihoods(self, log_theta_ext: np.ndarray) -> np.ndarray:
        """``log p(T_t)`` of every training tree."""
        if self.rooted:
            ll = np.empty(self.parents.shape[0])
            K.rooted_logprob(self.table, log_theta_ext, ll)
            return ll
        return rootings.log_likelihood(self.parents, self.table, log_theta_ext, self.n_taxa)

    def uniform_rooting_counts(self) -> np.ndarray:
        """Expected counts when every rooting of every tree is equally likely."""
        zero = np.zeros(self.M + 1)
        zero[-1] = -np.inf
        return self.estep(zero)[0]

    def prior(self, alpha: float, form: str) -> np.ndarray:
        """Dirichlet pseudo-counts ``beta`` (see the module docstring)."""
        beta = np.zeros(self.M + 1)
        if alpha <= 0:
            return beta
        if form == "bito":
            beta[:] = alpha * (
                self.uniform_rooting_counts() if not self.rooted else self.sa_counts()
            )
        else:
            m = self.sa_counts()
            off = self.support.offsets
            r = int(off[1])
            beta[:r] = alpha * m[:r]
            sizes = np.diff(off)[1:]
            tot = np.add.reduceat(m[r : self.M], off[1:-1] - r) if self.M > r else np.empty(0)
            beta[r : self.M] = alpha * np.repeat(tot / sizes, sizes)
        beta[-1] = 0.0
        return beta


def _objective(weights, ll, beta, lt) -> float:
    obj = float(weights @ ll)
    b = beta[:-1]
    if np.any(b > 0):
        obj += float(np.sum(b[b > 0] * lt[:-1][b > 0]))
    return obj


def expectation_maximization(
    training: Training,
    log_theta0: np.ndarray,
    beta: np.ndarray | None = None,
    max_iter: int = 1000,
    min_iter: int = 50,
    tol: float = 1e-5,
    progress: Callable[[int, float], None] | None = None,
):
    """Run (MAP) EM from ``log_theta0`` (length ``M + 1``, sentinel last).

    Returns ``(log_theta, objective trace)``; the trace has one entry per iteration, the
    objective at the parameters that iteration started from (see the module docstring).
    """
    beta = np.zeros(training.M + 1) if beta is None else beta
    lt = log_theta0.copy()
    trace: list[float] = []
    for k in range(max_iter):
        counts, ll = training.estep(lt)
        trace.append(_objective(training.weights, ll, beta, lt))
        lt = training.normalise(counts + beta)
        if progress is not None:
            progress(k + 1, trace[-1])
        if k > min_iter and abs(trace[-1] - trace[-2]) < tol:
            break
    return lt, trace


def fit_sbn(
    sample: TreeSample,
    method: str = "em-alpha",
    alpha: float = DEFAULT_ALPHA,
    alpha_form: str = "paper",
    max_iter: int = 1000,
    min_iter: int = 50,
    tol: float = 1e-5,
    conditioning: str = "pcsp",
    progress: Callable[[int, float], None] | None = None,
    training: Training | None = None,
) -> SBNModel:
    """Fit an SBN (``method`` ``"sa"``, ``"em"`` or ``"em-alpha"``) to a tree sample.

    Parameters
    ----------
    sample
        Topologies with counts (:func:`phylo.trees.read_trees`); rooted samples give a rooted
        SBN.
    method, alpha, alpha_form
        See the module docstring; ``alpha`` is used by ``em-alpha`` only.
    max_iter, min_iter, tol
        EM stopping rule (the paper's: 1000, 50, 1e-5).  ``tol=0`` runs ``max_iter``
        iterations.
    conditioning
        ``"pcsp"`` (the paper's parent-child subsplit conditioning) or ``"clade"``.
    progress
        Called after each EM iteration with the iteration number and the objective.
    training
        A :class:`Training` of the same sample to reuse.
    """
    if method not in SBN_METHODS:
        raise InputError(f"unknown SBN method {method!r}; expected one of {', '.join(SBN_METHODS)}")
    if alpha_form not in ALPHA_FORMS:
        raise InputError(
            f"unknown alpha form {alpha_form!r}; expected one of {', '.join(ALPHA_FORMS)}"
        )
    if not (alpha >= 0 and np.isfinite(alpha)):
        raise InputError(f"alpha must be a finite number >= 0, got {alpha}")
    tr = training or Training(sample, conditioning)
    sa = tr.normalise(tr.sa_counts())
    info: dict = {"n_topologies": int(tr.parents.shape[0])}
    if method == "sa" or (method == "em" and tr.rooted):
        lt = sa
        info["log_likelihood"] = float(tr.weights @ tr.log_likelihoods(lt))
    elif method == "em":
        lt, trace = expectation_maximization(tr, sa, None, max_iter, min_iter, tol, progress)
        info.update(
            iterations=len(trace), objective=trace, max_iter=max_iter, min_iter=min_iter, tol=tol
        )
    else:
        beta = tr.prior(alpha, alpha_form)
        info.update(alpha=alpha, alpha_form=alpha_form)
        if tr.rooted:
            lt = tr.normalise(tr.sa_counts() + beta)
        else:
            start = tr.normalise(tr.sa_counts() + beta) if alpha_form == "paper" else sa
            lt, trace = expectation_maximization(tr, start, beta, max_iter, min_iter, tol, progress)
            info.update(
                iterations=len(trace),
                objective=trace,
                max_iter=max_iter,
                min_iter=min_iter,
                tol=tol,
            )
    return SBNModel(sample.taxa, tr.support, lt[:-1], method, info)
