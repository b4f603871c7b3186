"""Branch lengths for any topology from a sample: the mean length of each split."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.tables import parse_table
from phylo.trees import parse_newick, read_trees
from phylo.trees.splits import SplitLengths

TREES = [
    "((A:1,B:2):3,C:4,(D:5,E:6):7);",
    "((A:2,B:2):1,C:4,(D:1,E:2):3);",
    "((A:3,C:1):2,B:4,(D:3,E:4):5);",
]


def _split_map(newick, taxa):
    """{frozenset of the side without A: length} of a tree, by hand from the Newick."""
    tree = parse_newick(newick, taxa=taxa)
    out = {}
    for b, length in zip(tree.splits(), tree.branch_lengths[:-1]):
        side = frozenset(i for i in range(len(taxa)) if (int(b[0]) >> i) & 1)
        out[side] = length
    return out


def test_each_split_gets_its_mean_and_unseen_splits_the_overall_mean(tmp_path):
    path = tmp_path / "t.nwk"
    path.write_text("\n".join(TREES) + "\n")
    sample = read_trees(str(path), burnin=0, lengths=True)
    taxa = sample.taxa
    maps = [_split_map(t, taxa) for t in TREES]
    sides = set().union(*maps)
    mean = {s: np.mean([m[s] for m in maps if s in m]) for s in sides}
    overall = np.mean([v for m in maps for v in m.values()])
    sl = SplitLengths(sample)
    assert sl.default == pytest.approx(overall)
    # a topology seen in the sample, and one with the unseen split {A, D}
    for newick in (TREES[0], "((A,D),C,(B,E));"):
        tree = parse_newick(newick, taxa=taxa)
        got = sl.lengths(tree.parent)[0]
        for b, value in zip(tree.splits(), got[:-1]):
            side = frozenset(i for i in range(len(taxa)) if (int(b[0]) >> i) & 1)
            assert value == pytest.approx(mean.get(side, overall))
    assert mean[frozenset({3, 4})] == pytest.approx(5.0)  # (7 + 3 + 5) / 3, by hand


def test_sbn_top_with_lengths_feeds_marglik_loglik(tmp_path):
    from phylo.cli.marglik import main as marglik

    from ..conftest import DATA

    runs = [str(DATA / "example.run1.t"), str(DATA / "example.run2.t")]
    model = tmp_path / "m.json"
    assert CliRunner().invoke(main, ["fit", *runs, "-o", str(model), "-q"]).exit_code == 0
    top = tmp_path / "top.tsv"
    args = ["top", str(model), "-k", "2", "-o", str(top)]
    r = CliRunner().invoke(main, args + ["--lengths-from", runs[0], "--lengths-from", runs[1]])
    assert r.exit_code == 0, r.output
    _, _, rows = parse_table(top.read_text())
    sl = SplitLengths(read_trees(runs, lengths=True))
    for row in rows:
        tree = parse_newick(row["newick"], taxa=sl.taxa)
        assert np.allclose(tree.branch_lengths, sl.lengths(tree.parent)[0], rtol=1e-12)
    r = CliRunner().invoke(marglik, ["loglik", str(DATA / "example.fasta"), str(top)])
    assert r.exit_code == 0, r.output
    assert len(parse_table(r.output)[2]) == 2
