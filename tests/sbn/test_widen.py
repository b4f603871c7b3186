"""Widening an SBN's support to the NNI neighbours of the sampled topologies.

NNI neighbours are checked against their definition through splits computed here from the
parent arrays in plain Python: a binary unrooted tree of n taxa has exactly 2(n-3)
topologies that share all but one of its n-3 internal splits (contracting one internal edge
leaves a node of degree four with three resolutions), and those are its NNI neighbours.
"""

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.sbn import fit
from phylo.sbn.widen import fit_widened, nni_neighbours, widened_training
from phylo.trees import parse_newick, read_trees

from ..trees.randomtrees import random_rooted, to_newick, unrooted_splits


def splits_of(parent, n):
    below = [set() for _ in parent]
    for leaf in range(n):
        u = leaf
        while u >= 0:
            below[u].add(leaf)
            u = parent[u]
    out = set()
    for s in below:
        side = frozenset(s) if 0 not in s else frozenset(set(range(n)) - s)
        if 1 < len(side) < n - 1:
            out.add(side)
    return out


@pytest.mark.parametrize("n", [4, 5, 6, 9, 17, 70])
def test_nni_neighbours_are_the_trees_one_split_away(n):
    rng = np.random.default_rng(n)
    names = [f"t{i}" for i in range(n)]
    nodes = [random_rooted(rng, names) for _ in range(4)]
    trees = [parse_newick(to_newick(node, rng), taxa=names) for node in nodes]
    parents = np.stack([t.parent for t in trees])
    nb = nni_neighbours(parents, n, chunk=3)  # chunks smaller than the batch
    per = 2 * (n - 3)
    assert nb.shape == (4 * per, 2 * n - 2)
    for t, (tree, node) in enumerate(zip(trees, nodes)):
        base = splits_of(tree.parent, n)
        assert base == {frozenset(names.index(x) for x in s) for s in unrooted_splits(node, names)}
        rows = nb[t * per : (t + 1) * per]
        assert len({r.tobytes() for r in rows}) == per  # all distinct
        for r in rows:
            s = splits_of(r, n)
            assert len(s) == n - 3 and len(s & base) == n - 4
            # canonical: equal to what parsing the same topology gives
            assert np.array_equal(r, parse_newick(_newick(r, names), taxa=names).parent)


def _newick(parent, names):
    n = len(names)
    kids = {}
    for v, p in enumerate(parent):
        kids.setdefault(int(p), []).append(v)

    def text(v):
        return names[v] if v < n else "(" + ",".join(text(c) for c in kids[v]) + ")"

    return text(len(parent) - 1) + ";"


def test_four_taxa_neighbours_are_the_other_two_topologies():
    names = ["a", "b", "c", "d"]
    t = parse_newick("((a,b),(c,d));", taxa=names)
    others = {
        parse_newick(x, taxa=names).parent.tobytes() for x in ("((a,c),(b,d));", "((a,d),(b,c));")
    }
    assert {r.tobytes() for r in nni_neighbours(t.parent, 4)} == others


def _sample(tmp_path, newicks):
    path = tmp_path / "trees.nwk"
    path.write_text("".join(x + "\n" for x in newicks))
    return read_trees(str(path), burnin=0)


def test_widened_weights(tmp_path):
    sample = _sample(tmp_path, ["((a,b),(c,(d,e)));"] * 3 + ["((a,c),(b,(d,e)));"])
    parents, w = widened_training(sample, 0.02)
    assert abs(w.sum() - 1) < 1e-12 and len({r.tobytes() for r in parents}) == len(parents)
    key = {r.tobytes(): x for r, x in zip(parents, w)}
    first = sample.parents[np.argmax(sample.frequencies())]
    # the first topology: 3/4 of the sample plus 1/4 * 0.02 / 4 as a neighbour of the second
    # (they are one NNI apart), normalised by 1.02
    assert key[first.tobytes()] == pytest.approx((0.75 + 0.25 * 0.02 / 4) / 1.02)
    nb = nni_neighbours(first, 5)
    assert all(r.tobytes() in key for r in nb)
    with pytest.raises(InputError):
        widened_training(sample, 0.0)


def test_widened_sbn_reaches_the_neighbours(tmp_path):
    sample = _sample(tmp_path, ["((a,b),(c,(d,(e,f))));"] * 5)
    nb = nni_neighbours(sample.parents[0], 6)
    plain = fit(sample)
    assert np.all(plain.prob(nb) == 0)  # one topology: the SBN has nothing else
    wide = fit_widened(sample, 0.01)
    p = wide.prob(nb)
    assert np.all(p > 0)
    assert wide.prob(sample.parents)[0] > 0.9 and p.sum() < 0.05
    assert wide.fit_info["nni_pseudo_count"] == 0.01
