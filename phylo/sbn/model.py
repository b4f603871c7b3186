"""A fitted subsplit Bayesian network: a probability distribution over all topologies.

Zhang & Matsen, "Generalizing tree probability estimation via Bayesian networks", NeurIPS
2018.  A rooted topology ``T`` with root split ``s_1`` and, at every other internal node, a
subsplit ``s`` whose *parent key* is ``pa(s)`` (the parent subsplit and which of its clades is
split, or just the clade under clade conditioning) has probability

.. math::

    p(T) = p(s_1) \\prod_{s \\in T,\\, s \\ne s_1} p(s \\mid pa(s)),

and an unrooted topology is the sum over its ``2n-3`` rootings,
``p(T^u) = \\sum_e p(T^u_e)``.  A tree that needs a root split or subsplit outside the
support has probability zero (log probability ``-inf``).

The parameters are one vector ``log_theta`` of log conditional probabilities, grouped by
parent key (``support.offsets``), so that ``theta = softmax(phi)`` within each group is the
natural parameterisation for gradient methods; :meth:`SBNModel.grad_log_prob` gives
``d log p(T) / d phi`` (and ``d log p(T) / d log theta``), :meth:`SBNModel.sample` exact draws
with their log probabilities, :meth:`SBNModel.rooting_param_ids` the parameter ids of every
rooting (for automatic differentiation elsewhere).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, ModelError
from ..outputs import atomic_open
from ..trees import Taxa, Tree, canonical
from ..trees.bitsets import n_words
from . import _kernels as K
from . import rootings
from .reference import KL_FLOOR, kl_divergence
from .support import CONDITIONINGS, Indexer, Support
from .topologies import topology_arrays

FORMAT = "phylo-sbn-model"
FORMAT_VERSION = 1


@dataclass
class Entropy:
    """An entropy (nats) with its standard error (0 when exact) and how it was obtained."""

    value: float
    stderr: float
    exact: bool
    how: str

    def __str__(self) -> str:
        if self.exact:
            return f"{self.value:.6g} nats (exact, {self.how})"
        return f"{self.value:.6g} +- {self.stderr:.2g} nats ({self.how})"


@dataclass
class TopTrees:
    """The most probable topologies: canonical parent arrays, log probabilities, and the
    taxa and rooting needed to write them."""

    parents: np.ndarray
    log_prob: np.ndarray
    taxa: Taxa
    rooted: bool
    examined: int = 0

    def __len__(self) -> int:
        return self.parents.shape[0]

    def newick(self, i: int) -> str:
        return Tree(self.taxa, self.parents[i], None, self.rooted).to_newick(lengths=False)


def logsumexp_groups(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``log sum exp`` of ``values`` within each group."""
    out = np.empty(offsets.shape[0] - 1)
    for g in range(out.shape[0]):
        seg = values[offsets[g] : offsets[g + 1]]
        if seg.size == 0:
            out[g] = -np.inf
            continue
        mx = seg.max()
        out[g] = mx if mx == -np.inf else mx + math.log(np.exp(seg - mx).sum())
    return out


def group_log_softmax(phi: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Normalise logits ``phi`` within each parameter group: ``log softmax`` per group."""
    phi = np.asarray(phi, dtype=float)
    lse = logsumexp_groups(phi, offsets)
    sizes = np.diff(offsets)
    return phi - np.repeat(lse, sizes)


class SBNModel:
    """A subsplit Bayesian network fitted to a tree sample (or built from parameters).

    Parameters
    ----------
    taxa
        Taxon ``i`` is leaf ``i`` of every topology.
    support
        Root splits, subsplits, parent keys and parameters (:class:`~phylo.sbn.Support`).
    log_theta
        ``(M,)`` log conditional probabilities, normalised within each parent key's group.
    method
        How the model was fitted (``"sa"``, ``"em"``, ``"em-alpha"``, ``"ccd"``, ...).
    fit_info
        Estimator settings and diagnostics (alpha, iterations, objective trace).
    provenance
        Where it came from (see :func:`phylo.provenance.record`).
    """

    kind = "sbn"

    def __init__(
        self,
        taxa,
        support: Support,
        log_theta: np.ndarray,
        method: str = "",
        fit_info: dict | None = None,
        provenance: dict | None = None,
    ):
        self.taxa = taxa if isinstance(taxa, Taxa) else Taxa(list(taxa))
        if len(self.taxa) != support.n_taxa:
            raise ValueError("taxa and support disagree on the number of taxa")
        self.support = support
        lt = np.asarray(log_theta, dtype=np.float64)
        if lt.shape != (support.n_params,):
            raise ValueError(f"log_theta must have {support.n_params} entries")
        self.log_theta = lt
        self.method = method
        self.fit_info = dict(fit_info or {})
        self.provenance = provenance
        self._indexer = None

    # -- basic properties ----------------------------------------------------------------
    @property
    def n_taxa(self) -> int:
        return self.support.n_taxa

    @property
    def rooted(self) -> bool:
        return self.support.rooted

    @property
    def conditioning(self) -> str:
        return self.support.conditioning

    @property
    def n_params(self) -> int:
        return self.support.n_params

    @property
    def offsets(self) -> np.ndarray:
        """Group ``k`` (parent key ``k``; key 0 = root splits) is ``offsets[k]:offsets[k+1]``."""
        return self.support.offsets

    def _logtheta_ext(self) -> np.ndarray:
        return np.append(self.log_theta, -np.inf)

    def __repr__(self) -> str:
        kind = "rooted" if self.rooted else "unrooted"
        return (
            f"<SBNModel {self.method or '?'}: {self.n_taxa} taxa, {kind}, "
            f"{self.support.n_rootsplits} root splits, {self.n_params} parameters>"
        )

    # -- indexing trees ----------------------------------------------------------------
    @property
    def indexer(self) -> Indexer:
        if self._indexer is None:
            self._indexer = Indexer.from_support(self.support)
        return self._indexer

    def topologies(self, trees) -> np.ndarray:
        """Canonical parent arrays of ``trees`` on the model's taxa (see
        :func:`phylo.sbn.topologies.topology_arrays`)."""
        return topology_arrays(trees, self.taxa, self.rooted)

    def param_table(self, trees) -> tuple[np.ndarray, np.ndarray]:
        """``(parents, table)``: the trees' parent arrays and the parameter ids they use
        (layout in :mod:`phylo.sbn._kernels`; ``n_params`` marks ids outside the support)."""
        parents = self.topologies(trees)
        return parents, self.indexer.lookup(parents, self.n_params)

    # -- probabilities -----------------------------------------------------------------
    def log_prob(self, trees) -> np.ndarray:
        """Log probability of each topology (``-inf`` where it needs a root split or subsplit
        outside the support).  ``trees``: a TreeSample (its unique topologies), Tree(s),
        Newick string(s) or parent arrays."""
        parents, table = self.param_table(trees)
        out = np.empty(parents.shape[0])
        if parents.shape[0] == 0:
            return out
        lt = self._logtheta_ext()
        if self.rooted:
            K.rooted_logprob(table, lt, out)
            return out
        return rootings.log_likelihood(parents, table, lt, self.n_taxa)

    def prob(self, trees) -> np.ndarray:
        """Probability of each topology."""
        return np.exp(self.log_prob(trees))

    def rooting_posterior(self, trees) -> np.ndarray:
        """``(T, 2n-3)``: for each unrooted topology, ``p(root on edge v | T)`` for the edge
        above each node ``v`` of its canonical parent array."""
        if self.rooted:
            raise ModelError("a rooted model has no rooting to infer")
        parents, table = self.param_table(trees)
        return rootings.posterior(parents, table, self._logtheta_ext(), self.n_taxa)[1]

    def rooting_param_ids(self, trees) -> np.ndarray:
        """``(T, R, n-1)`` parameter ids of every rooting of every tree (``R = 2n-3`` for an
        unrooted model, 1 for a rooted one): root split first, then one subsplit per internal
        node.  ``log p(T) = logsumexp_r sum_j log_theta[ids[t, r, j]]`` (id ``n_params``
        means "not in the support": use ``-inf``)."""
        parents, table = self.param_table(trees)
        T = parents.shape[0]
        n = self.n_taxa
        if self.rooted:
            col = table[:, :, 0]
            return np.ascontiguousarray(col[col >= 0].reshape(T, 1, n - 1))
        out = np.empty((T, 2 * n - 3, n - 1), np.int32)
        K.rooting_params(parents, table, n, out)
        return out

    def expected_counts(self, trees, weights=None) -> np.ndarray:
        """``sum_t w_t E[number of uses of each parameter | T_t]`` (posterior over rootings
        for unrooted trees): the gradient of ``sum_t w_t log p(T_t)`` with respect to
        ``log_theta`` taken as free coordinates."""
        parents, table = self.param_table(trees)
        T = parents.shape[0]
        w = np.ones(T) if weights is None else np.asarray(weights, dtype=float)
        counts = np.zeros(self.n_params + 1)
        if self.rooted:
            flat = table[:, :, 0]
            mask = flat >= 0
            np.add.at(counts, flat[mask], np.repeat(w, mask.sum(axis=1)))
        else:
            counts = rootings.estep(parents, table, self._logtheta_ext(), w, self.n_taxa)[0]
        return counts[:-1]

    def grad_log_prob(self, trees, wrt: str = "logits", per_tree: bool = True) -> np.ndarray:
        """Gradient of ``log p(T)`` for each tree (``per_tree``) or of their sum.

        With ``wrt="logits"`` the parameters are ``phi`` with ``theta = softmax(phi)`` within
        each group (``phi = log_theta`` is one choice):
        ``d log p(T) / d phi_m = c_m(T) - theta_m sum_{m' in group(m)} c_m'(T)``, where
        ``c(T)`` are the expected counts of :meth:`expected_counts`.  With
        ``wrt="log_theta"`` it is ``c(T)`` itself.
        """
        if wrt not in ("logits", "log_theta"):
            raise ValueError("wrt must be 'logits' or 'log_theta'")
        parents = self.topologies(trees)
        rows = (
            [self.expected_counts(parents[t : t + 1]) for t in range(parents.shape[0])]
            if per_tree
            else [self.expected_counts(parents)]
        )
        c = np.array(rows).reshape(len(rows), self.n_params)
        if wrt == "log_theta":
            return c if per_tree else c[0]
        theta = np.exp(self.log_theta)
        sizes = np.diff(self.offsets)
        tot = np.add.reduceat(c, self.offsets[:-1], axis=1) if c.shape[1] else c
        tot = np.where(sizes[None, :] > 0, tot, 0.0)
        g = c - theta[None, :] * np.repeat(tot, sizes, axis=1)
        return g if per_tree else g[0]

    def with_logits(self, phi: np.ndarray) -> SBNModel:
        """The same support with parameters ``softmax(phi)`` within each group."""
        lt = group_log_softmax(phi, self.offsets)
        return SBNModel(self.taxa, self.support, lt, self.method, self.fit_info, None)

    def parameters(self) -> list[dict]:
        """One dict per parameter group: its key (``"root"`` or clade strings) and the
        child subsplits with their probabilities (for people; arrays are in ``support``)."""
        s = self.support
        out = []
        for k in range(s.n_keys):
            a, b = s.offsets[k], s.offsets[k + 1]
            sib, clade = s.keys[k]
            rows = [
                (
                    s.clade_string(s.subsplits[s.param_sub[m], 0]),
                    s.clade_string(s.subsplits[s.param_sub[m], 1]),
                    float(np.exp(self.log_theta[m])),
                )
                for m in range(a, b)
            ]
            out.append(
                {
                    "key": k,
                    "sibling": None if sib < 0 else s.clade_string(sib),
                    "clade": s.clade_string(clade),
                    "children": rows,
                }
            )
        return out

    # -- sampling ------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` topologies exactly from the model.

        Returns canonical parent arrays ``(n, N)`` and their log probabilities (for an
        unrooted model, of the unrooted topology: the sum over all its rootings).
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        s = self.support
        nt = self.n_taxa
        theta = np.exp(self.log_theta)
        cum = np.empty_like(theta)
        K.group_cumsum(theta, s.offsets, cum)
        u = rng.random((n, nt - 1))
        par = np.empty((n, 2 * nt - 1), np.int32)
        chosen = np.empty((n, nt - 1), np.int64)
        bad = K.sample_rooted(
            cum,
            s.offsets,
            s.param_sub.astype(np.int64),
            s.subsplits.astype(np.int64),
            s.sub_keys,
            s.clade_leaf,
            0,
            nt,
            u,
            par,
            chosen,
        )
        if bad:
            raise ModelError(
                "the model's support has subsplits that cannot be completed "
                "into trees; it cannot be sampled"
            )
        parents = canonical(par, nt, self.rooted)
        if self.rooted:
            logp = self.log_theta[chosen].sum(axis=1)
        else:
            logp = self.log_prob(parents)
        return parents, logp

    def sample_trees(self, n: int, rng: np.random.Generator) -> list[Tree]:
        """``n`` exact draws as :class:`~phylo.trees.Tree` objects."""
        parents, _ = self.sample(n, rng)
        return [Tree(self.taxa, p, None, self.rooted) for p in parents]

    # -- summaries -----------------------------------------------------------------------
    def top(self, k: int = 10, max_derivations: int = 2_000_000) -> TopTrees:
        """The ``k`` most probable topologies with their probabilities, found exactly by
        dynamic programming over the subsplit graph (see :mod:`phylo.sbn.derivations`)."""
        from . import derivations as D

        if k <= 0:
            N = 2 * self.n_taxa - (1 if self.rooted else 2)
            return TopTrees(np.empty((0, N), np.int32), np.empty(0), self.taxa, self.rooted)
        if self.rooted:
            par, logp = D.top_rooted(self.support, self.log_theta, k)
            return TopTrees(canonical(par, self.n_taxa, True), logp, self.taxa, True, len(logp))
        par, logp, examined = D.top_unrooted(self, k, max_derivations)
        return TopTrees(par, logp, self.taxa, False, examined)

    def entropy(
        self,
        rng: np.random.Generator | None = None,
        n_samples: int = 20000,
        exact_limit: int = 1_000_000,
    ) -> Entropy:
        """Entropy ``-sum_T p(T) log p(T)`` in nats.

        Rooted models: exact, by dynamic programming.  Unrooted models: exact by listing
        every rooted derivation and adding up rootings when there are at most
        ``exact_limit`` of them (see :func:`phylo.sbn.derivations.unrooted_probabilities`);
        otherwise a Monte Carlo estimate ``-mean log p(T_i)`` over
        ``n_samples`` exact draws ``T_i`` (``rng`` required) with exact log probabilities,
        reported with its standard error.
        """
        from . import derivations as D

        if self.rooted:
            info = D.inside(self.support, self.log_theta)
            return Entropy(float(info["entropy"][0]), 0.0, True, "dynamic programming")
        p = D.unrooted_probabilities(self, exact_limit)
        if p is not None:
            p = p[p > 0]
            return Entropy(
                float(-(p * np.log(p)).sum()), 0.0, True, f"enumeration of {len(p)} topologies"
            )
        if rng is None:
            raise ModelError(
                "the model has too many topologies for an exact entropy; give a "
                "random generator for a Monte Carlo estimate"
            )
        _, logp = self.sample(n_samples, rng)
        return Entropy(
            float(-logp.mean()),
            float(logp.std(ddof=1) / math.sqrt(n_samples)),
            False,
            f"Monte Carlo, {n_samples} exact draws",
        )

    def kl_from(self, parents: np.ndarray, probs: np.ndarray, floor: float = KL_FLOOR) -> float:
        """``KL(p || q) = sum p log p - sum p log max(q, floor)`` for a reference
        distribution ``p`` given as topologies and probabilities."""
        return kl_divergence(probs, self.prob(parents), floor)

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        s = self.support
        lt = [None if x == -np.inf else float(x) for x in self.log_theta]
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "method": self.method,
            "taxa": list(self.taxa.names),
            "rooted": self.rooted,
            "conditioning": self.conditioning,
            "clades": [_bits_to_str(row, s.n_taxa) for row in s.clades],
            "subsplits": s.subsplits.tolist(),
            "keys": s.keys.tolist(),
            "params": {
                "key": s.param_key.tolist(),
                "subsplit": s.param_sub.tolist(),
                "log_prob": lt,
            },
            "fit": _jsonable(self.fit_info),
            "provenance": self.provenance,
        }

    def save(self, path: str) -> None:
        """Write the model as JSON (atomically; ``"-"`` is standard output)."""
        save_model(self, path)


# ----------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------


def _bits_to_str(row: np.ndarray, n: int) -> str:
    chars = ["0"] * n
    for w, word in enumerate(row):
        x = int(word)
        while x:
            low = x & -x
            chars[64 * w + low.bit_length() - 1] = "1"
            x ^= low
    return "".join(chars)


def _str_to_bits(text: str, n: int) -> np.ndarray:
    if len(text) != n or set(text) - {"0", "1"}:
        raise ValueError(f"clade {text[:20]!r} is not a string of {n} 0/1 characters")
    out = np.zeros(n_words(n), np.uint64)
    for i, c in enumerate(text):
        if c == "1":
            out[i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    return out


def _jsonable(obj: Any):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def save_model(model, path: str) -> None:
    """Write a fitted model (SBN or SRF) as JSON, atomically.

    A model without provenance (fitted in Python) gets a record of this process
    (:func:`phylo.provenance.record`) with its method and fitting settings.
    """
    from ..provenance import record

    data = model.to_dict()
    if data.get("provenance") is None:
        settings = {
            k: v
            for k, v in data.get("fit", {}).items()
            if k not in ("objective",) and not isinstance(v, (list, dict))
        }
        data["provenance"] = record(parameters={"method": model.method, **settings})
    text = json.dumps(data, indent=1, allow_nan=False)
    with atomic_open(path) as fh:
        fh.write(text + "\n")


def load_model(path: str):
    """Read a model written by :func:`save_model`; an :class:`InputError` for anything that is
    not a valid model file."""
    try:
        if path == "-":
            import sys

            text = sys.stdin.read()
        else:
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
    return model_from_dict(data, path)


def model_from_dict(data: Any, path: str = "<model>"):
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f'not a phylo model file (no "format": "{FORMAT}")', path)
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(f"unsupported model format version {data.get('format_version')!r}", path)
    kind = data.get("kind")
    try:
        if kind == "sbn":
            return _sbn_from_dict(data)
        if kind == "srf":
            from .srf import SRFModel

            return SRFModel.from_dict(data)
    except InputError as exc:
        raise exc.located(path) from None
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"corrupted model file: {what}", path) from None
    raise InputError(f"unknown model kind {kind!r}", path)


def _sbn_from_dict(data: dict) -> SBNModel:
    taxa = Taxa([str(x) for x in data["taxa"]])
    n = len(taxa)
    if n < 3:
        raise ValueError("a model needs at least 3 taxa")
    rooted = data["rooted"]
    conditioning = data["conditioning"]
    if not isinstance(rooted, bool) or conditioning not in CONDITIONINGS:
        raise ValueError("bad 'rooted' or 'conditioning'")
    clades = np.array([_str_to_bits(c, n) for c in data["clades"]], np.uint64).reshape(
        -1, n_words(n)
    )
    subs = np.array(data["subsplits"], np.int64).reshape(-1, 2)
    keys = np.array(data["keys"], np.int64).reshape(-1, 2)
    params = data["params"]
    pk = np.array(params["key"], np.int64)
    ps = np.array(params["subsplit"], np.int64)
    lt = np.array([-np.inf if x is None else float(x) for x in params["log_prob"]], float)
    C, S, Kn, M = clades.shape[0], subs.shape[0], keys.shape[0], pk.shape[0]
    full = np.zeros(n_words(n), np.uint64)
    for i in range(n):
        full[i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    if C == 0 or not np.array_equal(clades[0], full):
        raise ValueError("clade 0 must be the full taxon set")
    if np.any(clades & ~full) or np.any(~clades.any(axis=1)):
        raise ValueError("a clade is empty or names taxa beyond the taxon list")
    if S and (subs.min() < 0 or subs.max() >= C):
        raise ValueError("a subsplit refers to an unknown clade")
    for a, b in subs:
        if np.any(clades[a] & clades[b]):
            raise ValueError("a subsplit's clades overlap")
    if Kn == 0 or keys[0, 0] != -1 or keys[0, 1] != 0:
        raise ValueError("key 0 must be the root")
    if (
        keys[:, 1].min() < 0
        or keys[:, 1].max() >= C
        or keys[:, 0].min() < -1
        or keys[:, 0].max() >= C
    ):
        raise ValueError("a parent key refers to an unknown clade")
    if ps.shape != (M,) or lt.shape != (M,):
        raise ValueError("parameter arrays have different lengths")
    if M and (pk.min() < 0 or pk.max() >= Kn or ps.min() < 0 or ps.max() >= S):
        raise ValueError("a parameter refers to an unknown key or subsplit")
    if np.any(np.diff(pk) < 0):
        raise ValueError("parameters are not sorted by parent key")
    for m in range(M):
        a, b = subs[ps[m]]
        union = clades[a] | clades[b]
        if not np.array_equal(union, clades[keys[pk[m], 1]]):
            raise ValueError(f"parameter {m}: the subsplit does not split its key's clade")
    if np.any(np.isnan(lt)) or np.any(lt > 1e-9):
        raise ValueError("log probabilities must be <= 0")
    support = Support(n, rooted, conditioning, clades, subs, keys, pk, ps)
    lse = logsumexp_groups(lt, support.offsets)
    # a group sums to 1, or is entirely zero (unreachable: EM can drive a parent to zero)
    live = np.diff(support.offsets) > 0
    live &= np.isfinite(lse)
    if np.any(np.abs(lse[live]) > 1e-9) or not np.isfinite(lse[0]):
        raise ValueError("the probabilities of a parameter group do not sum to 1")
    fit = data.get("fit") or {}
    return SBNModel(taxa, support, lt, str(data.get("method", "")), fit, data.get("provenance"))
