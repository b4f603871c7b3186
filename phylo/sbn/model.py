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

import math
from typing import Any

import numpy as np

from ..errors import ModelError
from ..trees import Taxa, bitsets
from ..trees.bitsets import n_words
from ..trees.topology import canonical
from . import _kernels as K
from . import derivations as D
from . import rootings
from .distribution import Entropy, TopTrees, TreeDistribution, numbers, taxa_from
from .support import CONDITIONINGS, Indexer, Support


def logsumexp_groups(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``log sum exp`` of ``values`` within each group (``-inf`` for an empty group)."""
    values = np.asarray(values, dtype=float)
    offsets = np.asarray(offsets, dtype=np.int64)
    G = offsets.shape[0] - 1
    out = np.full(G, -np.inf)
    sizes = np.diff(offsets)
    live = np.nonzero(sizes > 0)[0]
    if live.size == 0:
        return out
    mx = np.maximum.reduceat(values, offsets[live])
    finite = np.isfinite(mx)
    shift = np.repeat(np.where(finite, mx, 0.0), sizes[live])
    owner = np.repeat(np.arange(live.size), sizes[live])
    with np.errstate(under="ignore"):
        terms = np.exp(values[offsets[0] : offsets[-1]] - shift)
    sums = np.bincount(owner, weights=terms, minlength=live.size)
    with np.errstate(divide="ignore"):
        out[live] = np.where(finite, mx + np.log(sums), mx)
    return out


def group_log_softmax(phi: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Normalise logits ``phi`` within each parameter group: ``log softmax`` per group."""
    phi = np.asarray(phi, dtype=float)
    lse = logsumexp_groups(phi, offsets)
    sizes = np.diff(offsets)
    return phi - np.repeat(lse, sizes)


class SBNModel(TreeDistribution):
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

    # -- summaries -----------------------------------------------------------------------
    def top(self, k: int = 10, max_derivations: int = 2_000_000) -> TopTrees:
        """The ``k`` most probable topologies with their probabilities, found exactly by
        dynamic programming over the subsplit graph (see :mod:`phylo.sbn.derivations`)."""
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

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The model file's content: the common fields (:mod:`phylo.sbn.distribution`), then
        ``conditioning``, ``clades`` (``0``/``1`` strings, taxon ``i`` at position ``i``),
        ``subsplits`` and ``keys`` (clade ids), and ``params``: the parent key, subsplit and
        log probability (``null`` for ``-inf``) of each parameter."""
        s = self.support
        lt = [None if x == -np.inf else float(x) for x in self.log_theta]
        return {
            **self._header(),
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

    @classmethod
    def from_dict(cls, data: dict) -> SBNModel:
        """The model of :meth:`to_dict`'s output, after checking every index, that each
        subsplit splits its parent's clade, and that every parameter group sums to one
        (``ValueError``, ``KeyError`` or ``TypeError`` otherwise)."""
        taxa = taxa_from(data)
        n = len(taxa)
        rooted = data["rooted"]
        conditioning = data["conditioning"]
        if not isinstance(rooted, bool) or conditioning not in CONDITIONINGS:
            raise ValueError("bad 'rooted' or 'conditioning'")
        _check_against_provenance(data, rooted)
        clades = _strings_to_bits(data["clades"], n)
        subs = _int_table(data["subsplits"], 2, "subsplits")
        keys = _int_table(data["keys"], 2, "keys")
        params = data["params"]
        pk = _int_table(params["key"], 1, "params.key").ravel()
        ps = _int_table(params["subsplit"], 1, "params.subsplit").ravel()
        lt = numbers(params["log_prob"], "params.log_prob")
        C, S, Kn, M = clades.shape[0], subs.shape[0], keys.shape[0], pk.shape[0]
        full = bitsets.full(n)
        if C == 0 or not np.array_equal(clades[0], full):
            raise ValueError("clade 0 must be the full taxon set")
        if np.any(~clades.any(axis=1)):
            raise ValueError("a clade is empty")
        if _has_duplicates(clades):
            raise ValueError("a clade is listed twice")
        if S and (subs.min() < 0 or subs.max() >= C):
            raise ValueError("a subsplit refers to an unknown clade")
        if S and np.any((clades[subs[:, 0]] & clades[subs[:, 1]]).any(axis=1)):
            raise ValueError("a subsplit's clades overlap")
        if S and _has_duplicates(np.sort(subs, axis=1)):
            raise ValueError("a subsplit is listed twice")
        if Kn == 0 or keys[0, 0] != -1 or keys[0, 1] != 0:
            raise ValueError("key 0 must be the root")
        if (
            keys[:, 1].min() < 0
            or keys[:, 1].max() >= C
            or keys[:, 0].min() < -1
            or keys[:, 0].max() >= C
        ):
            raise ValueError("a parent key refers to an unknown clade")
        if _has_duplicates(keys):
            raise ValueError("a parent key is listed twice")
        rest = keys[1:]
        if conditioning == "clade" and np.any(rest[:, 0] != -1):
            raise ValueError(
                "clade conditioning, but some parent keys name a parent subsplit "
                "(a PCSP model labelled 'clade'?)"
            )
        if conditioning == "pcsp":
            if np.any(rest[:, 0] < 0):
                raise ValueError(
                    "PCSP conditioning, but some parent keys lack a parent subsplit "
                    "(a clade-conditioned model labelled 'pcsp'?)"
                )
            if np.any((clades[rest[:, 0]] & clades[rest[:, 1]]).any(axis=1)):
                raise ValueError("a parent key's clade overlaps its sibling")
        if ps.shape != (M,) or lt.shape != (M,):
            raise ValueError("parameter arrays have different lengths")
        if M and (pk.min() < 0 or pk.max() >= Kn or ps.min() < 0 or ps.max() >= S):
            raise ValueError("a parameter refers to an unknown key or subsplit")
        if np.any(np.diff(pk) < 0):
            raise ValueError("parameters are not sorted by parent key")
        if M and _has_duplicates(np.stack([pk, ps], axis=1)):
            raise ValueError("a parameter (parent key, subsplit) is listed twice")
        if M:
            union = clades[subs[ps, 0]] | clades[subs[ps, 1]]
            bad = np.nonzero(~np.all(union == clades[keys[pk, 1]], axis=1))[0]
            if bad.size:
                raise ValueError(
                    f"parameter {int(bad[0])}: the subsplit does not split its key's clade"
                )
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
        return cls(taxa, support, lt, str(data.get("method", "")), fit, data.get("provenance"))


def _bits_to_str(row: np.ndarray, n: int) -> str:
    chars = ["0"] * n
    for w, word in enumerate(row):
        x = int(word)
        while x:
            low = x & -x
            chars[64 * w + low.bit_length() - 1] = "1"
            x ^= low
    return "".join(chars)


def _strings_to_bits(texts, n: int) -> np.ndarray:
    """``(C, W)`` bitsets of clades written as ``0``/``1`` strings (taxon ``i`` at position
    ``i``), without a loop over taxa."""
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError("'clades' must be a list of 0/1 strings")
    bad = next((t for t in texts if len(t) != n), None)
    if bad is not None:
        raise ValueError(f"clade {bad[:20]!r} is not a string of {n} 0/1 characters")
    if not texts:
        return np.zeros((0, n_words(n)), np.uint64)
    chars = np.frombuffer("".join(texts).encode("ascii", "replace"), np.uint8).reshape(-1, n)
    if np.any((chars != ord("0")) & (chars != ord("1"))):
        row = int(np.nonzero(((chars != ord("0")) & (chars != ord("1"))).any(axis=1))[0][0])
        raise ValueError(f"clade {texts[row][:20]!r} is not a string of {n} 0/1 characters")
    W = n_words(n)
    bits = np.zeros((chars.shape[0], 64 * W), np.uint8)
    bits[:, :n] = chars == ord("1")
    packed = np.packbits(bits, axis=1, bitorder="little")  # 8 bytes per word
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64).reshape(-1, W)


def _int_table(values, width: int, what: str) -> np.ndarray:
    """An integer table from JSON: a list of ints (``width`` 1) or of ``width``-lists of ints;
    floats, strings and booleans are refused."""
    rows = values if width == 1 else None
    if width > 1:
        if not isinstance(values, list) or not all(
            isinstance(r, list) and len(r) == width for r in values
        ):
            raise ValueError(f"'{what}' must be a list of {width}-lists of integers")
        rows = [x for r in values for x in r]
    if not isinstance(rows, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in rows
    ):
        raise ValueError(f"'{what}' must hold integers only")
    return np.array(rows, np.int64).reshape(-1, width)


def _has_duplicates(rows: np.ndarray) -> bool:
    rows = np.ascontiguousarray(rows)
    if rows.shape[0] < 2:
        return False
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return np.unique(keys).shape[0] != rows.shape[0]


def _check_against_provenance(data: dict, rooted: bool) -> None:
    """A model fitted by ``sbn fit`` records whether it was fitted to rooted trees; the
    ``rooted`` field must agree (flipped by hand it gives nonsense).  The conditioning is
    checked against the parent keys' structure instead (see ``from_dict``)."""
    prov = data.get("provenance")
    params = prov.get("parameters") if isinstance(prov, dict) else None
    if isinstance(params, dict) and isinstance(params.get("rooted"), bool):
        if params["rooted"] != rooted:
            raise ValueError(
                f"'rooted' is {str(rooted).lower()} but the model was fitted to "
                f"{'rooted' if params['rooted'] else 'unrooted'} trees"
            )


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
