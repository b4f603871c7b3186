"""Sample relative frequencies (SRF): the empirical distribution of a tree sample.

``p(T) = (number of sampled trees with topology T) / (number of sampled trees)``, pooled over
runs as :meth:`phylo.trees.TreeSample.frequencies` does; topologies never sampled have
probability zero.  The baseline of Zhang & Matsen (NeurIPS 2018), Table 1.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..trees import Taxa, Tree, TreeSample, parse_newick
from .distribution import Entropy, TopTrees, TreeDistribution, numbers, taxa_from


class SRFModel(TreeDistribution):
    """The empirical distribution of sampled topologies.

    Parameters
    ----------
    taxa, rooted
    parents
        ``(T, N)`` canonical parent arrays of the sampled topologies.
    probs
        Their frequencies (summing to 1).
    """

    kind = "srf"
    method = "srf"

    def __init__(
        self,
        taxa,
        rooted: bool,
        parents: np.ndarray,
        probs: np.ndarray,
        fit_info: dict | None = None,
        provenance: dict | None = None,
    ):
        self.taxa = taxa if isinstance(taxa, Taxa) else Taxa(list(taxa))
        self.rooted = bool(rooted)
        probs = np.asarray(probs, dtype=float)
        order = np.argsort(-probs, kind="stable")
        self.parents = np.ascontiguousarray(parents, dtype=np.int32)[order]
        self.probs = probs[order]
        self.fit_info = dict(fit_info or {})
        self.provenance = provenance
        self._index = {row.tobytes(): i for i, row in enumerate(self.parents)}

    def __repr__(self) -> str:
        return f"<SRFModel: {self.n_taxa} taxa, {len(self.probs)} topologies>"

    def prob(self, trees) -> np.ndarray:
        """The sample frequency of each topology (0 for topologies never sampled)."""
        parents = self.topologies(trees)
        return np.array(
            [
                self.probs[self._index[r.tobytes()]] if r.tobytes() in self._index else 0.0
                for r in parents
            ],
            float,
        )

    def log_prob(self, trees) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.prob(trees))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws from the empirical distribution, with their log probabilities."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        cum = np.cumsum(self.probs)
        idx = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
        idx = np.minimum(idx, len(self.probs) - 1)
        return self.parents[idx].copy(), np.log(self.probs[idx])

    def top(self, k: int = 10, **_) -> TopTrees:
        k = max(0, min(k, len(self.probs)))
        return TopTrees(self.parents[:k].copy(), np.log(self.probs[:k]), self.taxa, self.rooted, k)

    def entropy(self, rng=None, **_) -> Entropy:
        p = self.probs[self.probs > 0]
        return Entropy(
            float(-(p * np.log(p)).sum()) + 0.0, 0.0, True, f"enumeration of {len(p)} topologies"
        )

    def to_dict(self) -> dict:
        return {
            **self._header(),
            "topologies": [
                Tree(self.taxa, p, None, self.rooted).to_newick(lengths=False) for p in self.parents
            ],
            "probabilities": [float(x) for x in self.probs],
            "fit": self.fit_info,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SRFModel:
        """The model of :meth:`to_dict`'s output (``ValueError``, ``KeyError``,
        ``TypeError`` or :class:`~phylo.errors.InputError` when it is not valid)."""
        taxa = taxa_from(data)
        rooted = data["rooted"]
        if not isinstance(rooted, bool):
            raise ValueError("bad 'rooted'")
        topologies = data["topologies"]
        if not isinstance(topologies, list) or not all(isinstance(t, str) for t in topologies):
            raise ValueError("'topologies' must be a list of Newick strings")
        trees = [parse_newick(t, taxa=taxa, rooted=rooted) for t in topologies]
        probs = numbers(data["probabilities"], "probabilities")
        if len(trees) != len(probs) or not trees:
            raise ValueError("'topologies' and 'probabilities' differ in length or are empty")
        if np.any(~np.isfinite(probs)) or np.any(probs < 0) or abs(probs.sum() - 1) > 1e-9:
            raise ValueError("probabilities must be non-negative and sum to 1")
        parents = np.stack([t.parent for t in trees])
        if len({p.tobytes() for p in parents}) != len(parents):
            raise InputError("a topology is listed twice")
        return cls(taxa, rooted, parents, probs, data.get("fit") or {}, data.get("provenance"))


def fit_srf(sample: TreeSample) -> SRFModel:
    """The sample relative frequencies of a tree sample."""
    f = sample.frequencies()
    keep = f > 0
    return SRFModel(
        sample.taxa,
        sample.rooted,
        sample.parents[keep],
        f[keep] / f[keep].sum(),
        {"n_topologies": int(keep.sum())},
    )
