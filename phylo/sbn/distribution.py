"""What every fitted tree distribution offers: the common interface, the results of its
summaries, and how it is written to a model file.

A fitted distribution (:class:`~phylo.sbn.SBNModel`, :class:`~phylo.sbn.SRFModel`) gives every
topology on its taxa a probability ``q(T)``, can be sampled exactly, lists its most probable
topologies and knows its entropy.  Topologies may be given in any form that
:func:`phylo.sbn.topologies.topology_arrays` reads (a TreeSample, Trees, Newick strings,
canonical parent arrays).

Model files are JSON: ``{"format": "phylo-sbn-model", "format_version": 1, "kind": ...,
"method": ..., "taxa": [...], "rooted": ..., <the kind's own fields>, "fit": {...},
"provenance": {...}}``.  Each kind writes its own fields (``to_dict``) and reads them back
(``from_dict``); :func:`phylo.sbn.io.load_model` reads a file of either kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..outputs import atomic_open, refuse_inputs
from ..provenance import record
from ..trees import Taxa, Tree
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

    def newick(self, i: int, lengths=None) -> str:
        """Newick of topology ``i``, with the given branch lengths (per node) if any."""
        tree = Tree(self.taxa, self.parents[i], lengths, self.rooted)
        return tree.to_newick(lengths=lengths is not None)


class TreeDistribution:
    """The interface of a fitted distribution over topologies.

    Subclasses set ``kind`` (the model file's ``"kind"``), ``method``, ``taxa``
    (:class:`~phylo.trees.Taxa`), ``rooted``, ``fit_info`` and ``provenance``, and implement
    :meth:`log_prob`, :meth:`sample`, :meth:`top`, :meth:`entropy` and :meth:`to_dict`.
    """

    kind: str = ""
    method: str = ""
    taxa: Taxa
    rooted: bool
    fit_info: dict
    provenance: dict | None

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    def topologies(self, trees) -> np.ndarray:
        """Canonical parent arrays of ``trees`` on the model's taxa (see
        :func:`phylo.sbn.topologies.topology_arrays`)."""
        return topology_arrays(trees, self.taxa, self.rooted)

    def log_prob(self, trees) -> np.ndarray:
        """``log q(T)`` of each topology (``-inf`` for those the model cannot produce)."""
        raise NotImplementedError

    def prob(self, trees) -> np.ndarray:
        """``q(T)`` of each topology."""
        return np.exp(self.log_prob(trees))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` exact draws: canonical parent arrays and their log probabilities."""
        raise NotImplementedError

    def sample_trees(self, n: int, rng: np.random.Generator) -> list[Tree]:
        """``n`` exact draws as :class:`~phylo.trees.Tree` objects."""
        parents, _ = self.sample(n, rng)
        return [Tree(self.taxa, p, None, self.rooted) for p in parents]

    def top(self, k: int = 10, **options) -> TopTrees:
        """The ``k`` most probable topologies, best first."""
        raise NotImplementedError

    def entropy(self, rng: np.random.Generator | None = None, **options) -> Entropy:
        """``-sum_T q(T) log q(T)`` in nats."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        """The model file's content (see the module docstring)."""
        raise NotImplementedError

    def save(self, path: str) -> None:
        """Write the model as JSON, atomically (``"-"`` is standard output).

        A model without provenance (fitted in Python) gets a record of this process
        (:func:`phylo.provenance.record`) with its method and fitting settings.
        """
        data = self.to_dict()
        if data.get("provenance") is None:
            settings = {
                k: v
                for k, v in data.get("fit", {}).items()
                if k not in ("objective",) and not isinstance(v, (list, dict))
            }
            data["provenance"] = record(parameters={"method": self.method, **settings})
        text = json.dumps(data, indent=1, allow_nan=False)
        refuse_inputs(path, [item["path"] for item in data["provenance"].get("inputs", [])])
        with atomic_open(path) as fh:
            fh.write(text + "\n")

    def _header(self) -> dict:
        """The fields every model file starts with."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "method": self.method,
            "taxa": list(self.taxa.names),
            "rooted": self.rooted,
        }


def taxa_from(data: dict) -> Taxa:
    """The ``taxa`` field of a model file: a list of at least 3 distinct names (strings)."""
    names = data["taxa"]
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ValueError("'taxa' must be a list of names")
    if len(names) < 3:
        raise ValueError("a model needs at least 3 taxa")
    if any(not x.strip() for x in names):
        raise ValueError("a taxon name in 'taxa' is empty")
    return Taxa(names)


def numbers(values, what: str) -> np.ndarray:
    """A list of JSON numbers (``null`` for ``-inf``) as floats; strings and booleans are
    refused."""
    if not isinstance(values, list) or not all(
        x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in values
    ):
        raise ValueError(f"'{what}' must be a list of numbers")
    return np.array([-np.inf if x is None else float(x) for x in values], float)
