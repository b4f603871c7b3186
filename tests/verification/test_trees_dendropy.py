"""Tree input checked against dendropy, an independent reader, on the DS1 benchmark files.

Unique-topology counts and split frequencies must agree; DS1 short-run replicate 1 holds
1278 unique topologies (as the SBN paper's data description says).
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from phylo.trees import bitsets, read_trees, split_table

from ..conftest import shared_path

dendropy = pytest.importorskip("dendropy")

SHORT = "ds/zcrabbit-sbn/data/short_run_data_DS1-8/DS1/rep_{}/DS1.trprobs"


def dendropy_summary(path, schema, weighted):
    """Unique unrooted topologies and split frequencies by dendropy (names -> frozensets)."""
    trees = dendropy.TreeList.get(
        path=str(path),
        schema=schema,
        rooting="force-unrooted",
        store_tree_weights=weighted,
        preserve_underscores=True,
    )
    names = [t.label for t in trees.taxon_namespace]
    topo = collections.Counter()
    splits = collections.Counter()
    total = 0.0
    for tree in trees:
        w = float(tree.weight) if weighted else 1.0
        total += w
        tree.encode_bipartitions()
        key = []
        for b in tree.bipartition_encoding:
            if b.is_trivial():
                continue
            members = frozenset(tx.label for tx in b.leafset_taxa(trees.taxon_namespace))
            side = members if names[0] not in members else frozenset(names) - members
            key.append(side)
            splits[side] += w
        topo[frozenset(key)] += w
    return names, topo, {k: v / total for k, v in splits.items()}


def our_splits(sample):
    table = split_table(sample)
    out = {}
    for bits, f in zip(table.bits, table.pooled):
        side = frozenset(sample.taxa.names[i] for i in bitsets.to_indices(bits))
        out[side] = f
    return out


def side_without(names_first, side, all_names):
    return side if names_first not in side else frozenset(all_names) - side


@pytest.mark.parametrize("rep", [1, 5])
def test_ds1_short_runs_match_dendropy(rep):
    path = shared_path(SHORT.format(rep))
    sample = read_trees(str(path))
    names, topo, splits = dendropy_summary(path, "nexus", weighted=True)
    assert sample.n_topologies == len(topo)
    ours = our_splits(sample)
    first = sample.taxa.names[0]
    theirs = {side_without(first, k, names): v for k, v in splits.items()}
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert ours[k] == pytest.approx(v, abs=1e-9)
    # topology frequencies agree as multisets
    assert sorted(np.round(sample.frequencies() * sum(topo.values()), 9)) == pytest.approx(
        sorted(topo.values())
    )


def test_ds1_replicate_1_has_1278_unique_topologies():
    assert read_trees(str(shared_path(SHORT.format(1)))).n_topologies == 1278


def test_ds1_raw_mrbayes_and_newick_match_dendropy():
    for rel, schema in [
        ("ds/phylovi-bito/data/DS1.subsampled_10.t", "nexus"),
        ("ds/phylovi-bito/data/DS1.100_topologies.nwk", "newick"),
    ]:
        path = shared_path(rel)
        sample = read_trees(str(path), burnin=0)
        names, topo, splits = dendropy_summary(path, schema, weighted=False)
        assert sample.n_topologies == len(topo)
        first = sample.taxa.names[0]
        theirs = {side_without(first, k, names): v for k, v in splits.items()}
        ours = our_splits(sample)
        assert set(ours) == set(theirs)
        for k, v in theirs.items():
            assert ours[k] == pytest.approx(v, abs=1e-12)
