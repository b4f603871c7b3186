"""Summary trees on small samples, against definitions written independently with frozensets
(split frequencies, greedy compatibility, clade credibility), and their annotations on a
file small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.trees import bitsets, read_trees
from phylo.trees.consensus import mcc_topology, summary_tree

from ..sbn import brute
from ..sbn.samples import random_training


def splits_of(tree, n, rooted):
    """Informative splits (rooted: clades) of a nested-tuple tree as frozensets (unrooted:
    the side without taxon 0)."""
    out = set()

    def walk(t):
        s = brute.leaves(t)
        if isinstance(t, tuple):
            for c in t:
                walk(c)
        if not rooted and 0 in s:
            s = frozenset(range(n)) - s
        if 1 < len(s) < (n if rooted else n - 1):
            out.add(s)

    walk(tree)
    return out


def compatible(a, b, n, rooted):
    if rooted:
        return not (a & b) or a <= b or b <= a
    everything = frozenset(range(n))
    return any(not (x & y) for x in (a, everything - a) for y in (b, everything - b))


def reference(trees, weights, n, rooted):
    w = np.asarray(weights) / np.sum(weights)
    freq = {}
    for t, x in zip(trees, w):
        for s in splits_of(t, n, rooted):
            freq[s] = freq.get(s, 0.0) + x
    # ties in frequency are taken in the order of the splits' bitsets (as bytes)
    ranked = sorted(freq, key=lambda s: (-freq[s], bitsets.from_indices(sorted(s), n).tobytes()))
    greedy = []
    for s in ranked:
        if all(compatible(s, g, n, rooted) for g in greedy):
            greedy.append(s)
    majority = {s for s in greedy if freq[s] >= 0.5}
    scores = [sum(math.log(freq[s]) for s in splits_of(t, n, rooted)) for t in trees]
    return freq, majority, set(greedy), scores


def as_sets(tree_splits, n):
    return {frozenset(bitsets.to_indices(np.frombuffer(b, np.uint64))) for b in tree_splits}


@pytest.mark.parametrize(
    "n,rooted,seed", [(6, False, 1), (7, False, 2), (8, False, 3), (6, True, 4)]
)
def test_consensus_and_mcc_against_definitions(n, rooted, seed):
    rng = np.random.default_rng(seed)
    trees, w, sample = random_training(n, 25, rng, rooted)
    freq, majority, greedy, scores = reference(trees, w, n, rooted)
    maj = summary_tree(sample, "majority")
    ext = summary_tree(sample, "extended")
    assert as_sets(maj.splits(), n) == majority
    assert as_sets(ext.splits(), n) == greedy
    # posterior annotations are the split frequencies
    for tree in (maj, ext):
        clades = tree.clades[n:-1]
        post = tree.annotations["posterior"][n:-1]
        for c, p in zip(clades, post):
            s = frozenset(bitsets.to_indices(c))
            if not rooted and 0 in s:
                s = frozenset(range(n)) - s
            if 1 < len(s) < (n if rooted else n - 1):
                assert p == pytest.approx(freq[s], rel=1e-12)
    t, _ = mcc_topology(sample)
    best = int(np.argmax(scores))
    assert as_sets(summary_tree_topology(sample, t), n) == splits_of(trees[best], n, rooted)


def summary_tree_topology(sample, t):
    n = sample.n_taxa
    c = sample.clades()[t][n:-1]
    if not sample.rooted:
        c = bitsets.normalise_splits(c, n)
    return {row.tobytes() for row in c}


TREES = """#NEXUS
begin trees;
  tree t1 = ((A:1,B:2):0.5,C:1,(D:1,E:1):2);
  tree t2 = ((A:3,B:2):1.5,C:1,(D:1,E:1):4);
  tree t3 = ((A:1,C:2):0.25,B:1,(D:1,E:1):6);
  tree t4 = ((A:1,B:2):1.0,C:1,(D:1,E:3):2);
end;
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.t"
    path.write_text(TREES)
    return read_trees([str(path)], burnin=0, lengths=True)


def _node(tree, names):
    """The node whose branch is the split of ``names`` (either side of it)."""
    want = bitsets.from_indices([tree.taxa.names.index(x) for x in names], tree.n_taxa)
    other = bitsets.full(tree.n_taxa) ^ want
    for v in range(tree.n_nodes - 1):
        if np.array_equal(tree.clades[v], want) or np.array_equal(tree.clades[v], other):
            return v
    raise AssertionError(names)


def test_annotations_by_hand(small):
    tree = summary_tree(small, "majority")
    a = tree.annotations
    ab = _node(tree, ["A", "B"])  # drawn from A, the split AB|CDE is the clade CDE
    assert a["posterior"][ab] == 0.75
    # AB|CDE in t1, t2, t4 with lengths 0.5, 1.5, 1.0
    assert a["length"][ab] == pytest.approx(1.0)
    assert a["length_median"][ab] == 1.0
    assert tuple(a["length_range"][ab]) == (0.5, 1.5)
    assert tuple(a["length_95%_HPD"][ab]) == (0.5, 1.5)  # d = round(2.85) = 3: all
    assert tree.lengths[ab] == pytest.approx(1.0)
    de = _node(tree, ["D", "E"])
    assert a["posterior"][de] == 1.0 and a["length"][de] == 3.5
    assert a["length_median"][de] == 3.0  # (2 + 4) / 2
    # a leaf: B's branch is 2, 2, 1, 2
    b = _node(tree, ["B"])
    assert np.isnan(a["posterior"][b])
    assert a["length"][b] == 1.75 and a["length_median"][b] == 2.0
    # a length that never varies has no median, HPD or range (as TreeAnnotator)
    d = _node(tree, ["D"])
    assert a["length"][d] == 1.0 and np.isnan(a["length_median"][d])
    assert np.isnan(a["length_95%_HPD"][d]).all()


def test_outgroup_draws_the_tree_from_a_clade(small):
    default = summary_tree(small, "majority")
    drawn = summary_tree(small, "majority", outgroup="D,E")
    assert drawn.splits() == default.splits()
    root = drawn.n_nodes - 1
    kids = [v for v in range(root) if drawn.parent[v] == root]
    sets = {frozenset(bitsets.to_indices(drawn.clades[v])) for v in kids}
    de = frozenset([3, 4])
    assert de in sets  # the outgroup's clade hangs from the root
    text = drawn.to_newick(annotations=False)
    assert "(D:1.0,E:1.5):3.5" in text
    with pytest.raises(InputError, match="not a clade"):
        summary_tree(small, "majority", outgroup="A,D")
    with pytest.raises(InputError, match="'Z' is not among"):
        summary_tree(small, "majority", outgroup="Z")


def test_heights_need_rooted_trees_and_mcc_needs_lengths(small, tmp_path):
    with pytest.raises(InputError, match="--heights needs rooted trees"):
        summary_tree(small, "mcc", heights="mean")
    trprobs = tmp_path / "x.trprobs"
    trprobs.write_text(
        "#NEXUS\nbegin trees;\n tree t1 = [&W 0.6] ((A,B),C,(D,E));\n"
        " tree t2 = [&W 0.4] ((A,C),B,(D,E));\nend;\n"
    )
    weighted = read_trees([str(trprobs)], lengths=True)
    with pytest.raises(InputError, match="weighted topologies without branch lengths"):
        summary_tree(weighted, "mcc")
    # the consensus of weighted topologies has support values and no lengths
    tree = summary_tree(weighted, "majority")
    assert tree.annotations["posterior"][_node(tree, ["D", "E"])] == 1.0
    assert "length" not in tree.annotations
    assert ":" not in tree.to_newick()
