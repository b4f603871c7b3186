"""Likelihoods and branch gradients of many topologies at once, in threads.

:class:`~phylo.likelihood.TreeLikelihood` fixes one topology and evaluates many vectors of
branch lengths; variational inference over topologies (:mod:`phylo.vi`) draws a few
*different* topologies at every step, each with its own branch lengths.
:class:`TopologyBatchLikelihood` keeps the alignment and the model once, and evaluates row
``b`` of a batch on topology ``parents[b]`` with branch lengths ``T[b]``:

.. math:: \\log L_b = \\log p(D \\mid \\tau_b, t_b), \\qquad
          \\frac{\\partial \\log L_b}{\\partial t_{b,i}},

by the same compiled kernels as :class:`~phylo.likelihood.TreeLikelihood` (Felsenstein
pruning, then the pre-order pass of Ji et al. 2020 for the gradient), so every value is
the one ``TreeLikelihood(alignment, tree, model, site_repeats=False)`` gives for that tree.
Rows are split between ``threads`` threads, each with buffers of its own large enough
for any topology on the taxa (the kernels release the GIL).  The traversal table of each
topology is built once and kept (up to :data:`CACHE_TOPOLOGIES` of them).

Topologies are canonical *unrooted* parent arrays (:mod:`phylo.trees`: leaves ``0..n-1``
are the taxa in order, every child numbered below its parent, the root last with three
children); branch ``i`` is the edge above node ``i``, as everywhere in the package.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from ..errors import InputError
from . import _kernels as K
from ._buffers import buffer_rows, new_buffer
from ._families import family
from .alignment import Alignment
from .models import Model
from .tree_likelihood import _pattern_blocks, _pool

__all__ = ["TopologyBatchLikelihood", "traversal_table", "CACHE_TOPOLOGIES"]

#: Traversal tables kept per object (least recently used dropped first).
CACHE_TOPOLOGIES = 20_000


def traversal_table(parent: np.ndarray, n_taxa: int) -> np.ndarray:
    """The kernels' traversal table of a canonical unrooted binary tree.

    Internal nodes are visited in index order, which is a post-order because every child
    is numbered below its parent; each row is ``node, number of children, children
    (ascending, -1 padded), the edges above them`` (edge ``c`` is the edge above node
    ``c``), as :func:`phylo.likelihood.tree_likelihood.topology_arrays` writes for the
    tree rooted at its own root.  An :class:`~phylo.errors.InputError` unless ``parent``
    is such a tree.
    """
    parent = np.asarray(parent, dtype=np.int64)
    N = parent.shape[0]
    if N != 2 * n_taxa - 2 or n_taxa < 3:
        raise InputError(
            f"an unrooted binary tree of {n_taxa} taxa has {2 * n_taxa - 2} nodes, not {N}"
        )
    par = parent[:-1]
    nodes = np.arange(N - 1)
    if parent[-1] != -1 or np.any(par <= nodes) or np.any(par >= N) or np.any(par < n_taxa):
        raise InputError("not a canonical parent array (every child numbered below its parent)")
    counts = np.bincount(par, minlength=N)[n_taxa:]
    if np.any(counts[:-1] != 2) or counts[-1] != 3:
        raise InputError("not an unrooted binary tree (internal nodes need 2 children, root 3)")
    order = np.argsort(par, kind="stable")  # children grouped by parent, ascending
    n_int = N - n_taxa
    table = np.full((n_int, 8), -1, dtype=np.int64)
    table[:, 0] = np.arange(n_taxa, N)
    table[:, 1] = counts
    kids = order.reshape(-1)
    two = kids[: 2 * (n_int - 1)].reshape(n_int - 1, 2)
    table[:-1, 2:4] = two
    table[:-1, 5:7] = two
    table[-1, 2:5] = kids[2 * (n_int - 1) :]
    table[-1, 5:8] = kids[2 * (n_int - 1) :]
    return table


class TopologyBatchLikelihood:
    """Log-likelihoods (and gradients) of rows ``(parents[b], T[b])``: one topology and one
    vector of branch lengths per row.

    Parameters
    ----------
    alignment : Alignment
        The data; its taxa must be exactly ``taxa`` (matched by name).
    taxa
        Taxon ``i`` is leaf ``i`` of every topology (e.g. an SBN model's ``taxa``).
    model : Model
        Substitution model, rate categories, invariant sites.
    threads : int, optional
        Threads a batch is split between (default: the number of CPUs); each keeps its
        own buffers.

    Notes
    -----
    One object is not safe to call from several threads at once.  Every evaluation
    counts in :attr:`n_evaluations` (a gradient counts as one).
    """

    def __init__(self, alignment: Alignment, taxa, model: Model, *, threads: int | None = None):
        names = tuple(getattr(taxa, "names", taxa))
        self.alignment = alignment.take_taxa(taxa)  # matched by name, as trees match
        self.taxa = names
        self.n_taxa = len(names)
        if self.n_taxa < 3:
            raise InputError("an unrooted tree needs at least 3 taxa")
        self.model = model.resolve(self.alignment)
        pats = self.alignment.patterns()
        tips = np.ascontiguousarray(pats.tip_partials())
        self._tips2 = tips.reshape(-1, tips.shape[2])
        self._weights = np.ascontiguousarray(pats.weights)
        m = self.model
        lam, v, vinv = m.eigen()
        freqs = m.frequencies
        self._inv = np.ascontiguousarray(np.einsum("s,sp->p", freqs, np.prod(tips, axis=0)))
        self._mv = K.pack_model(
            lam, v, vinv, m.rate_matrix(), freqs, m.pinv, m.category_rates(), m.category_weights()
        )
        self._kernels = family(self._mv)
        self.n_categories = m.n_categories
        self.n_patterns = tips.shape[2]
        self.n_nodes = 2 * self.n_taxa - 2
        self.n_branches = self.n_nodes - 1
        n_int = self.n_nodes - self.n_taxa
        kc = self.n_categories
        # every node its own slot, for the partials and for the pre-order partials (a
        # topology's own shared pre-order slots take a Python walk to find; the values do
        # not depend on where they are stored)
        self._slot = np.arange(n_int, dtype=np.int64)
        per_pattern = 8 * 4 * (kc * 2 * n_int + self.n_taxa)
        self._bounds = _pattern_blocks(self.n_patterns, per_pattern, 1)
        self._rows_grad = buffer_rows(n_int, n_int, kc)
        self._rows_lik = buffer_rows(n_int, 0, kc)
        self.threads = max(1, int(threads or os.cpu_count() or 1))
        self._buffers: list[dict] = []
        self._tables: OrderedDict = OrderedDict()
        self._no_ncols = np.zeros((0, 5), dtype=np.int64)
        self._no_cmap = np.zeros(0, dtype=np.int32)
        self.n_evaluations = 0

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_buffers=[], _tables=OrderedDict(), _kernels=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._kernels = family(self._mv)

    # ------------------------------------------------------------------ helpers
    def _table(self, parent: np.ndarray):
        key = parent.tobytes()
        hit = self._tables.get(key)
        if hit is not None:
            self._tables.move_to_end(key)
            return hit
        hit = traversal_table(parent, self.n_taxa)
        self._tables[key] = hit
        if len(self._tables) > CACHE_TOPOLOGIES:
            self._tables.popitem(last=False)
        return hit

    def _thread_buffers(self, n: int, gradient: bool) -> list[dict]:
        kc, P, E = self.n_categories, self.n_patterns, self.n_branches
        while len(self._buffers) < n:
            self._buffers.append(dict(Pm=np.zeros((E, kc, 4, 4)), site=np.zeros(P)))
        for buf in self._buffers[:n]:
            key = "grad" if gradient else "lik"
            if key not in buf:
                rows = self._rows_grad if gradient else self._rows_lik
                buf[key] = new_buffer(rows, P, kc)
        return self._buffers[:n]

    def _check(self, parents, T) -> tuple[np.ndarray, np.ndarray]:
        parents = np.ascontiguousarray(parents, dtype=np.int64)
        T = np.ascontiguousarray(T, dtype=np.float64)
        if parents.ndim != 2 or parents.shape[1] != self.n_nodes:
            raise InputError(
                f"expected a (B, {self.n_nodes}) matrix of canonical parent arrays, "
                f"got shape {parents.shape}"
            )
        if T.shape != (parents.shape[0], self.n_branches):
            raise InputError(
                f"expected a ({parents.shape[0]}, {self.n_branches}) matrix of branch "
                f"lengths, got shape {T.shape}"
            )
        if T.size and (not T.min() >= 0.0 or not np.isfinite(T).all()):
            raise InputError("branch lengths must be finite and non-negative")
        return parents, T

    def _run(self, parents, T, out, grads):
        B = parents.shape[0]
        if B == 0:
            return
        tables = [self._table(parents[b]) for b in range(B)]
        nt = min(self.threads, B)
        bufs = self._thread_buffers(nt, grads is not None)
        rows = self._kernels.evaluate_rows
        want = grads is not None
        no_grads = np.zeros((0, 0))

        def work(i):
            buf = bufs[i]
            work_buf = buf["grad" if want else "lik"]
            for b in range((B * i) // nt, (B * (i + 1)) // nt):
                rows(
                    self._tips2,
                    self._weights,
                    self._inv,
                    self._mv,
                    tables[b],
                    self._slot,
                    self._slot,
                    self._no_ncols,
                    self._no_cmap,
                    T,
                    b,
                    b + 1,
                    buf["Pm"],
                    work_buf,
                    buf["site"],
                    grads if want else no_grads,
                    out,
                    self._bounds,
                    True,
                    want,
                )

        if nt == 1:
            work(0)
        else:
            jobs = [_pool(nt).submit(work, i) for i in range(1, nt)]
            work(0)
            for job in jobs:
                job.result()
        self.n_evaluations += B

    # ------------------------------------------------------------------ API
    def log_likelihood_batch(self, parents, T) -> np.ndarray:
        """``(B,)`` log-likelihoods of topology ``parents[b]`` with branch lengths ``T[b]``.

        Parameters
        ----------
        parents
            ``(B, 2n-2)`` canonical unrooted parent arrays on :attr:`taxa`.
        T
            ``(B, 2n-3)`` branch lengths; ``T[b, i]`` is the edge above node ``i`` of
            ``parents[b]``.
        """
        parents, T = self._check(parents, T)
        out = np.empty(parents.shape[0])
        self._run(parents, T, out, None)
        return out

    def gradient_batch(self, parents, T) -> tuple[np.ndarray, np.ndarray]:
        """Log-likelihoods ``(B,)`` and their gradients ``(B, 2n-3)`` with respect to the
        branch lengths, one pass per row (arguments as :meth:`log_likelihood_batch`)."""
        parents, T = self._check(parents, T)
        out = np.empty(parents.shape[0])
        grads = np.empty(T.shape)
        self._run(parents, T, out, grads)
        return out, grads

    def __repr__(self):
        return (
            f"TopologyBatchLikelihood({self.n_taxa} taxa, {self.n_patterns} patterns, "
            f"{self.model.describe()}, {self.threads} threads)"
        )
