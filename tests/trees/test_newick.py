"""Parsing single Newick trees: syntax, canonical form, round trips, corruptions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phylo.errors import InputError
from phylo.trees import Taxa, Tree, parse_newick

from .randomtrees import random_rooted, to_newick, unrooted_splits


def split_sets(tree: Tree) -> set[frozenset]:
    """Nontrivial splits of a parsed tree as frozensets of names."""
    out = set()
    n = tree.n_taxa
    for bits in tree.splits():
        members = frozenset(tree.names[i] for i in range(n) if (int(bits[i >> 6]) >> (i & 63)) & 1)
        if 1 < len(members) < n - 1:
            out.add(members)
    return out


def test_canonical_form_of_a_small_tree():
    t = parse_newick("((A:0.1,B:0.2):0.05,C:0.3,D:0.4);")
    # leaves 0..3 = A B C D; root (node 5) is next to A and holds A, B and the (C,D) node
    assert t.names == ("A", "B", "C", "D")
    assert t.parent.tolist() == [5, 5, 4, 4, 5, -1]
    assert t.branch_lengths.tolist() == [0.1, 0.2, 0.3, 0.4, 0.05, 0.0]
    assert t.children.tolist() == [[2, 3, -1], [0, 1, 4]]


def test_every_rooting_and_order_gives_the_same_unrooted_topology():
    a = parse_newick("((A:0.1,B:0.2):0.05,C:0.3,D:0.4);")
    texts = [
        "(C:0.3,(D:0.4,(B:0.2,A:0.1):0.05));",  # rooted on C's edge, no length above
        "((C:0.3,D:0.4):0.02,(A:0.1,B:0.2):0.03);",  # rooted on the inner edge
        "(B:0.2,A:0.1,(D:0.4,C:0.3):0.05);",
        "(A:0.1,(B:0.2,(C:0.3,D:0.4):0.05));",
    ]
    for text in texts:
        t = parse_newick(text, taxa=a.taxa)
        assert np.array_equal(t.parent, a.parent), text
    # the inner edge of the rooted-on-edge version joins 0.02 + 0.03
    t = parse_newick(texts[1], taxa=a.taxa)
    assert t.branch_lengths[4] == pytest.approx(0.05)


def test_rooted_trees_keep_their_root():
    r1 = parse_newick("((A,B),(C,D));", rooted=True)
    r2 = parse_newick("(A,(B,(C,D)));", taxa=r1.taxa, rooted=True)
    assert r1.n_nodes == 7 and r2.n_nodes == 7
    assert not np.array_equal(r1.parent, r2.parent)
    u1 = parse_newick("((A,B),(C,D));", taxa=r1.taxa)
    u2 = parse_newick("(A,(B,(C,D)));", taxa=r1.taxa)
    assert np.array_equal(u1.parent, u2.parent)
    assert np.array_equal(r1.unrooted().parent, u1.parent)


def test_syntax_features():
    t = parse_newick(
        "[&U] ('Homo sapiens'[&rate=1.0]:[&x]0.1,Mus_musculus:1e-3,"
        "('it''s':2.5E-1,'x,y;z':.5)0.95:0.25[note]);"
    )
    assert t.names == ("Homo sapiens", "Mus_musculus", "it's", "x,y;z")
    assert t.branch_lengths[:4].tolist() == [0.1, 1e-3, 0.25, 0.5]
    # an underscore in an unquoted label is a blank: these are the same taxa
    u = parse_newick("('Mus musculus',Homo_sapiens,(its_not_quoted,'x,y;z'));", taxa=None)
    assert u.taxa.index("Mus_musculus") == 0
    assert t.taxa.index("Homo_sapiens") == 0


def test_no_lengths_and_partial_lengths():
    assert parse_newick("((A,B),C,D);").branch_lengths is None
    with pytest.raises(InputError, match="some edges"):
        parse_newick("((A:1,B),C:1,D:1);")


def test_taxa_order_given():
    t = parse_newick("((A,B),C,D);", taxa=["D", "C", "B", "A"])
    assert t.names == ("D", "C", "B", "A")
    # D is taxon 0; the root is its neighbour, the (A,B) node sits below it
    assert split_sets(t) == {frozenset({"A", "B"})}
    r = t.reorder_taxa(["A", "B", "C", "D"])
    assert np.array_equal(r.parent, parse_newick("((A,B),C,D);").parent)


def test_large_tree_splits_match_the_generator():
    rng = np.random.default_rng(1)
    names = [f"t{i}" for i in range(150)]
    tree = random_rooted(rng, names)
    t = parse_newick(to_newick(tree, rng) + ";", taxa=names)
    assert t.n_taxa == 150 and t.n_nodes == 298
    assert split_sets(t) == unrooted_splits(tree, names)
    assert t.clades().shape == (298, 3)


@pytest.mark.parametrize(
    "text, message",
    [
        ("((A,B),(C,D);", "unbalanced"),
        ("((A,B)),(C,D));", "unbalanced|single child|unexpected"),
        ("((A,B),C,D", "unbalanced"),
        ("((A,B),(C,A));", "twice"),
        ("(A,B,C,D);", "not binary"),
        ("((A,B,C),D,E);", "not binary"),
        ("((A:x,B),C,D);", "branch length"),
        ("((A:1.2.3,B:1),C:1,D:1);", "branch length"),
        ("(('A,B),C,D);", "quoted"),
        ("((A,B) [comment ,C,D);", "comment"),
        ("((A,(B)),C,D);", "single child"),
        ("((A,B),C,D) x y;", "unexpected"),
        ("(A,B);", "at least 3"),
    ],
)
def test_malformed_trees_raise_input_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_newick(text)


def test_unknown_and_missing_taxa():
    taxa = Taxa(["A", "B", "C", "D"])
    with pytest.raises(InputError, match="unknown taxon 'E'"):
        parse_newick("((A,B),C,E);", taxa=taxa)
    with pytest.raises(InputError, match="missing: 'D'"):
        parse_newick("((A,B),C);", taxa=taxa)


def test_rooted_reading_needs_a_bifurcating_root():
    with pytest.raises(InputError, match="not rooted"):
        parse_newick("((A,B),C,D);", rooted=True)


name_chars = st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_categories=("Cs",))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(3, 40),
    seed=st.integers(0, 2**32 - 1),
    lengths=st.booleans(),
    rooted=st.booleans(),
    names=st.lists(
        st.text(name_chars, min_size=1, max_size=8),
        min_size=40,
        max_size=40,
        unique_by=lambda s: s.replace("_", " "),
    ),
)
def test_random_trees_round_trip(n, seed, lengths, rooted, names):
    """Random trees written (independently) and read back are identical; our own writer
    round-trips exactly too."""
    names = names[:n]
    rng = np.random.default_rng(seed)
    tree = random_rooted(rng, names)
    text = to_newick(tree, rng, lengths=lengths) + ";"
    t = parse_newick(text, taxa=names, rooted=rooted)
    assert split_sets(t) == unrooted_splits(tree, names)
    again = parse_newick(t.to_newick(), taxa=names, rooted=rooted)
    assert np.array_equal(again.parent, t.parent)
    if lengths:
        assert np.array_equal(again.branch_lengths, t.branch_lengths)
    else:
        assert again.branch_lengths is None


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_random_corruptions_raise_input_errors_only(seed, data):
    """A corrupted tree either still parses or raises InputError; nothing else."""
    rng = np.random.default_rng(seed)
    names = [f"T{i}" for i in range(8)]
    text = "[&U] " + to_newick(random_rooted(rng, names), rng) + ";"
    n_edits = data.draw(st.integers(1, 4))
    chars = list(text)
    for _ in range(n_edits):
        kind = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate", "dup"]))
        pos = data.draw(st.integers(0, max(0, len(chars) - 1)))
        junk = data.draw(st.sampled_from(list("(),:;[]'_ .e-xT0123456789&") + ["\n", "é"]))
        if kind == "delete" and chars:
            del chars[pos]
        elif kind == "insert":
            chars.insert(pos, junk)
        elif kind == "replace" and chars:
            chars[pos] = junk
        elif kind == "truncate":
            chars = chars[:pos]
        elif kind == "dup":
            chars[pos:pos] = chars[pos : pos + 5]
    bad = "".join(chars)
    try:
        parse_newick(bad, taxa=names)
    except InputError:
        pass
    try:
        parse_newick(bad)
    except InputError:
        pass
