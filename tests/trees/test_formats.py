"""Reading what programs write: RevBayes tree traces (with sampled ancestors), BEAST 2 trees
without [&R], IQ-TREE ultrafast-bootstrap trees, and the notes on burn-in and rooting.

Files written by the programs are in ``tests/data`` (sources in the README next to them) or
made by running the program here (skipped when it is not installed).
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.trees import bitsets, parse_newick, read_trees
from phylo.trees.splits import split_table

from ..conftest import DATA, ROOT, require_program

REVBAYES = ROOT / "tests" / "data" / "revbayes"
ALL = str(REVBAYES / "bears_FBD_all.trees")
EXTANT = str(REVBAYES / "bears_FBD_extant.trees")
OLD_FBD = str(REVBAYES / "bears_tefbd_2018.trees")
PRIMATES = str(REVBAYES / "primates_cytb_GTR.trees")
BEAST2 = str(ROOT / "tests" / "data" / "beast2" / "small.trees.gz")

# fnPruneTree(timetree, prune=extinct_sp) in RevBayes's tests/test_FBD/scripts/FBD_dating.Rev
PRUNED_BY_REVBAYES = [
    "Agriarctos_spp",
    "Ailurarctos_lufengensis",
    "Ballusia_elmensis",
    "Indarctos_arctoides",
    "Indarctos_punjabiensis",
    "Indarctos_vireti",
    "Kretzoiarctos_beatrix",
    "Parictis_montanus",
    "Ursavus_brevirhinus",
    "Ursavus_primaevus",
    "Ursus_abstrusus",
    "Zaragocyon_daamsi",
]
# the taxa of age 0 in RevBayes's tests/data/bears_taxa.tsv (the other 14 are fossils)
LIVING_BEARS = {
    "Ailuropoda_melanoleuca",
    "Helarctos_malayanus",
    "Melursus_ursinus",
    "Tremarctos_ornatus",
    "Ursus_americanus",
    "Ursus_arctos",
    "Ursus_maritimus",
    "Ursus_thibetanus",
}


def rows_of(path):
    """The data rows of a RevBayes trace as lists of cells."""
    lines = open(path).read().splitlines()
    return [ln.split("\t") for ln in lines[1:] if ln.strip()]


# -- RevBayes tree traces -------------------------------------------------------------------


def test_a_revbayes_trace_is_an_mcmc_sample_with_its_iterations():
    s = read_trees(ALL, rooted=True)
    run = s.runs[0]
    assert run.format == "revbayes" and run.mcmc
    assert run.n_trees == 21 and run.states == (0, 10)  # Iteration 0, 10, ..., 200
    assert run.burnin == 5 and run.n_used == 16  # the MCMC default, 25%
    assert s.n_taxa == 22 and not s.notes
    # every row's tree, as dendropy-free text: the tree column is the fifth
    rows = rows_of(ALL)
    thin = read_trees(ALL, rooted=True, burnin=0, thin=4)
    expected = [parse_newick(rows[i][4], taxa=s.taxa, rooted=True) for i in range(0, 21, 4)]
    got = [thin.topology(t) for t in thin.traces[0]]
    assert [np.array_equal(a.parent, b.parent) for a, b in zip(got, expected)] == [True] * 6


def test_pruning_taxa_gives_what_revbayes_fnprunetree_gives():
    """The same run wrote its trees whole and pruned of 12 fossils by RevBayes itself: the
    topologies agree tree by tree, and the branch lengths to RevBayes's 6 decimals."""
    mine = read_trees(ALL, rooted=True, burnin=0, lengths=True, drop=PRUNED_BY_REVBAYES)
    theirs = read_trees(EXTANT, rooted=True, burnin=0, lengths=True, taxa=mine.taxa)
    assert mine.n_taxa == 10 and mine.n_trees == theirs.n_trees == 21
    for j in range(21):
        a = mine.topology(mine.traces[0][j])
        b = theirs.topology(theirs.traces[0][j])
        assert np.array_equal(a.parent, b.parent), j
        # each pruned branch adds up to 3 lengths printed with 6 decimals
        assert np.abs(mine.lengths[0][j] - theirs.lengths[0][j]).max() <= 2e-6, j


def test_extant_only_keeps_the_living_taxa_of_each_tree():
    ext = read_trees(ALL, rooted=True, burnin=0, lengths=True, extant_only=True)
    assert set(ext.taxa.names) == LIVING_BEARS
    fossils = [x for x in read_trees(ALL, burnin=0).taxa.names if x not in LIVING_BEARS]
    same = read_trees(ALL, rooted=True, burnin=0, lengths=True, drop=fossils, taxa=ext.taxa)
    assert np.array_equal(ext.parents, same.parents)
    assert [t.tolist() for t in ext.traces] == [t.tolist() for t in same.traces]
    assert np.array_equal(ext.lengths[0], same.lengths[0])
    # unrooted topologies of the extant taxa: the rooted ones with their roots dropped
    un = read_trees(ALL, burnin=0, extant_only=True)
    assert un.n_taxa == 8 and not un.rooted
    for j in range(21):
        r = ext.topology(ext.traces[0][j]).unrooted()
        assert np.array_equal(un.topology(un.traces[0][j]).parent, r.parent)


def test_extant_only_refuses_trees_without_lengths_and_unrooted_trees(tmp_path):
    p = tmp_path / "t.nwk"
    p.write_text("((A,B),(C,D));\n")
    with pytest.raises(InputError, match="needs branch lengths"):
        read_trees(str(p), extant_only=True)
    p.write_text("(A:1,B:1,(C:1,D:1):1);\n")
    with pytest.raises(InputError, match="rooted time trees"):
        read_trees(str(p), extant_only=True)
    # a tip extant in the first tree and a fossil in the second: an error naming it
    p.write_text("((A:1,B:1):1,(C:2,D:2):0);\n((A:1,B:1):1,(C:1.5,D:2):0);\n")
    with pytest.raises(InputError, match="'C' is not extant in this tree") as err:
        read_trees(str(p), extant_only=True)
    assert err.value.line == 2


def test_sampled_ancestors_as_nodes_with_one_child(tmp_path):
    """Older RevBayes wrote a sampled ancestor as a node with one child labelled with its
    name; it is read as that taxon on a branch of length zero.  dendropy reads the label as
    a taxon on the internal node: the clades (the taxa at and below each node) agree."""
    dendropy = pytest.importorskip("dendropy")
    s = read_trees(OLD_FBD, rooted=True, burnin=0, lengths=True)
    assert s.n_trees == 11 and s.n_taxa == 20
    rows = rows_of(OLD_FBD)
    names = list(s.taxa.names)
    for j, row in enumerate(rows):
        text = re.sub(r"\[&[^]]*\]", "", row[4])
        tree = dendropy.Tree.get(
            data=text, schema="newick", suppress_internal_node_taxa=False, rooting="force-rooted"
        )
        expected = {frozenset([x]) for x in names}  # every taxon is a leaf of ours
        for nd in tree.postorder_node_iter():
            below = {x.taxon.label.replace(" ", "_") for x in nd.preorder_iter() if x.taxon}
            expected.add(frozenset(below))
        mine = s.topology(s.traces[0][j]).clades()
        got = {frozenset(names[i] for i in bitsets.to_indices(c)) for c in mine}
        assert got == expected, j
    # the ancestor's branch has length 0 and its parent keeps the written length
    t = parse_newick("((A:2)B:1,(C:1,D:1):2);", rooted=True)
    u = parse_newick("((A:2,B:0):1,(C:1,D:1):2);", taxa=t.taxa, rooted=True)
    assert np.array_equal(t.parent, u.parent)
    assert np.array_equal(t.branch_lengths, u.branch_lengths)


def test_sampled_ancestors_as_zero_length_tips_are_leaves():
    """RevBayes today writes a sampled ancestor as a tip on a branch of length zero: a leaf
    of the topology like any other (the zero length tells it apart)."""
    s = read_trees(ALL, rooted=True, burnin=0, lengths=True)
    text = rows_of(ALL)[1][4]
    zero = set(re.findall(r"([A-Za-z_]+)\[&index=\d+\]:0\.000000", text))
    assert zero  # this tree has sampled ancestors
    lengths = s.lengths[0][1]
    assert {s.taxa.names[i] for i in range(s.n_taxa) if lengths[i] == 0.0} == zero


def test_iterations_must_increase_and_rows_match_the_header(tmp_path):
    head = "Iteration\tPosterior\ttree\n"
    p = tmp_path / "x.trees"
    p.write_text(head + "0\t-1\t((A,B),(C,D));\n10\t-1\t((A,C),(B,D));\n5\t-1\t((A,B),(C,D));\n")
    with pytest.raises(InputError, match="iteration goes from 10 to 5") as err:
        read_trees(str(p))
    assert err.value.line == 4
    p.write_text(head + "0\t-1\t((A,B),(C,D));\n10\t((A,C),(B,D));\n")
    with pytest.raises(InputError, match="number of tab-separated cells") as err:
        read_trees(str(p))
    assert err.value.line == 3
    p.write_text(head + "0\t-1\t((A,B),(C,D));\nten\t-1\t((A,C),(B,D));\n")
    with pytest.raises(InputError, match="whole number") as err:
        read_trees(str(p))
    assert (err.value.line, err.value.column) == (3, 1)
    p.write_text(head + "0\t-1\t((A,B),(C,D)); junk\n")
    with pytest.raises(InputError) as err:
        read_trees(str(p))
    assert (err.value.line, err.value.column) == (2, 21)


def test_replicates_in_one_file_are_noted():
    s = read_trees(PRIMATES)
    assert s.n_trees == 6 and s.n_taxa == 23 and s.runs[0].states == (0, 1)
    assert any("Replicate_ID" in n for n in s.notes)


def test_a_table_that_is_not_a_trace_says_so(tmp_path):
    p = tmp_path / "top.tsv"
    p.write_text("rank\tprobability\tnewick\n1\t0.5\t((A,B),(C,D));\n")
    with pytest.raises(InputError, match="a table, not trees"):
        read_trees(str(p))


# -- BEAST and ultrametric trees without [&R] -----------------------------------------------


def test_beast2_trees_get_a_note_suggesting_rooted():
    s = read_trees(BEAST2)
    assert s.runs[0].mcmc and s.runs[0].states == (0, 4000) and s.runs[0].burnin == 125
    notes = [n for n in s.notes if "--rooted" in n]
    assert len(notes) == 1 and "BEAST" in notes[0]
    assert not [n for n in read_trees(BEAST2, rooted=True).notes if "--rooted" in n]


def test_ultrametric_trees_get_a_note_suggesting_rooted(tmp_path):
    p = tmp_path / "u.nwk"
    p.write_text("((A:1,B:1):2,(C:2,D:2):1);\n((A:1,C:1):2,(B:2,D:2):1);\n")
    assert any("ultrametric" in n and "--rooted" in n for n in read_trees(str(p)).notes)
    p.write_text("((A:1,B:1.5):2,(C:2,D:2):1);\n")  # not ultrametric: no note
    assert not [n for n in read_trees(str(p)).notes if "--rooted" in n]
    p.write_text("[&U] ((A:1,B:1):2,(C:2,D:2):1);\n")  # marked unrooted: no note
    assert not [n for n in read_trees(str(p)).notes if "--rooted" in n]


# -- samples without MCMC state numbers -----------------------------------------------------


def test_samples_without_state_numbers_get_no_burnin_by_default(tmp_path):
    trees = ["((A,B),(C,D),E);", "((A,C),(B,D),E);"] * 4
    plain = tmp_path / "boot.nwk"
    plain.write_text("\n".join(trees) + "\n")
    s = read_trees(str(plain))
    assert s.runs[0].burnin == 0 and s.n_trees == 8 and not s.runs[0].mcmc
    assert any("no burn-in by default" in n for n in s.notes)
    assert read_trees(str(plain), burnin=0.25).runs[0].burnin == 2  # asked: no note
    assert not read_trees(str(plain), burnin=0.25).notes
    named = tmp_path / "named.tre"
    body = "".join(f"tree PAUP_{i} = {t}\n" for i, t in enumerate(trees))
    named.write_text(f"#NEXUS\nbegin trees;\n{body}end;\n")
    assert read_trees(str(named)).runs[0].burnin == 0
    mcmc = tmp_path / "run.t"
    body = "".join(f"tree gen.{100 * i} = {t}\n" for i, t in enumerate(trees))
    mcmc.write_text(f"#NEXUS\nbegin trees;\n{body}end;\n")
    assert read_trees(str(mcmc)).runs[0].burnin == 2


@pytest.mark.parametrize("chunk_size", [60, 1 << 20])
def test_the_first_tree_name_decides_and_state_numbers_cross_chunks(tmp_path, chunk_size):
    """A sample is an MCMC sample when its first tree's name carries a state number; the
    sampling interval comes from the first two trees, wherever the file is cut into chunks
    (60 bytes: one tree per chunk)."""
    trees = ["((A,B),(C,D),E);", "((A,C),(B,D),E);"] * 4

    def nexus(names):
        body = "".join(f"tree {n} = {t}\n" for n, t in zip(names, trees))
        p = tmp_path / "t.nex"
        p.write_text(f"#NEXUS\nbegin trees;\n{body}end;\n")
        return str(p)

    run = read_trees(nexus([f"STATE_{1000 * i}" for i in range(8)]), chunk_size=chunk_size)
    run = run.runs[0]
    assert run.mcmc and run.states == (0, 1000) and run.burnin == 2
    # a consensus tree first, then state numbers: not a sample of a chain
    run = read_trees(nexus(["con"] + [f"gen.{i}" for i in range(7)]), chunk_size=chunk_size)
    assert not run.runs[0].mcmc and run.runs[0].burnin == 0
    # one state number, then names without: a chain, but no sampling interval
    run = read_trees(nexus(["gen.5"] + [f"t{i}" for i in range(7)]), chunk_size=chunk_size)
    assert run.runs[0].mcmc and run.runs[0].states is None and run.runs[0].burnin == 2


def test_iqtree_ufboot_trees(tmp_path):
    """IQ-TREE's 1000 ultrafast-bootstrap trees are all used (no burn-in), and their split
    frequencies are IQ-TREE's own supports on its consensus tree (as percentages, rounded)."""
    exe = require_program("iqtree2")
    aln = tmp_path / "example.fasta"
    aln.write_bytes((DATA / "example.fasta").read_bytes())
    subprocess.run(
        [exe, "-s", str(aln), "-m", "JC", "-B", "1000", "-wbt", "-seed", "1", "-nt", "1",
         "-quiet", "-redo"],
        check=True,
        capture_output=True,
        timeout=600,
    )  # fmt: skip
    s = read_trees(str(aln) + ".ufboot")
    assert s.n_trees == 1000 and s.runs[0].burnin == 0 and s.runs[0].format == "newick"
    assert any("no burn-in by default" in n for n in s.notes)
    table = split_table(s)
    freq = {tuple(bitsets.to_indices(b)): f for b, f in zip(table.bits, table.pooled)}
    consensus = open(str(aln) + ".contree").read()
    supports = re.findall(r"\)(\d+):", consensus)
    # the supports in the order of the consensus tree's labelled inner nodes
    order = _postorder_splits(consensus, s.taxa)
    assert len(order) == len(supports) > 10
    for split, label in zip(order, supports):
        assert abs(100 * freq.get(split, 0.0) - int(label)) <= 0.5, (split, label)


def _postorder_splits(newick: str, taxa) -> list[tuple[int, ...]]:
    """The split of each labelled inner node of a Newick string, in the order written."""
    n = len(taxa)
    stack: list[set[int]] = [set()]
    out = []
    i = 0
    text = newick.strip()
    while i < len(text):
        c = text[i]
        if c == "(":
            stack.append(set())
            i += 1
        elif c == ")":
            inside = stack.pop()
            stack[-1] |= inside
            m = re.match(r"\)(\d+)", text[i:])
            if m:
                side = inside if 0 not in inside else set(range(n)) - inside
                out.append(tuple(sorted(side)))
            i += 1
        elif c in ",;:":
            i += 1
            if c == ":":
                while i < len(text) and text[i] not in ",();":
                    i += 1
        else:
            m = re.match(r"[^,():;]+", text[i:])
            label = m.group(0)
            if not label.isdigit() or taxa.index(label) >= 0:
                stack[-1].add(taxa.index(label))
            i += len(label)
    return out


# -- labels, byte-order marks, taxa blocks --------------------------------------------------


def test_unquoted_labels_with_an_apostrophe_read_as_dendropy_reads_them(tmp_path):
    dendropy = pytest.importorskip("dendropy")
    text = "((Brown's_rat:1,B:2):1,'D''s':1,(O'Brien:1,E:1):1);"
    t = parse_newick(text)
    assert t.names == ("Brown's_rat", "B", "D's", "O'Brien", "E")
    d = dendropy.Tree.get(data=text, schema="newick", preserve_underscores=True)
    assert sorted(x.taxon.label for x in d.leaf_node_iter()) == sorted(t.names)
    p = tmp_path / "a.t"
    p.write_text(
        "#NEXUS\nbegin trees;\ntranslate 1 Brown's_rat, 2 B, 3 'D''s', 4 O'Brien, 5 E;\n"
        "tree gen.1 = ((1:1,2:2):1,3:1,(4:1,5:1):1);\nend;\n"
    )
    s = read_trees(str(p), burnin=0)
    assert s.taxa.names == ("Brown's_rat", "B", "D's", "O'Brien", "E")
    assert np.array_equal(s.parents[0], t.parent)


@pytest.mark.parametrize("kind", ["nexus", "newick", "revbayes"])
def test_a_byte_order_mark_is_ignored(tmp_path, kind):
    body = {
        "nexus": "#NEXUS\nbegin trees;\ntree gen.1 = ((A,B),(C,D),E);\nend;\n",
        "newick": "((A,B),(C,D),E);\n",
        "revbayes": "Iteration\ttree\n0\t((A,B),(C,D),E);\n",
    }[kind]
    p = tmp_path / "bom.trees"
    p.write_bytes(b"\xef\xbb\xbf" + body.encode())
    s = read_trees(str(p), burnin=0)
    assert s.taxa.names == ("A", "B", "C", "D", "E") and s.runs[0].format == kind
    # an error is placed as in the file without the mark (it is no character of line 1)
    bad = body.replace("(A,B)", "(A,B:x)")
    where = []
    for mark in (b"", b"\xef\xbb\xbf"):
        p.write_bytes(mark + bad.encode())
        with pytest.raises(InputError, match="branch length") as err:
            read_trees(str(p), burnin=0)
        where.append((err.value.line, err.value.column))
    assert where[0] == where[1]
    assert bad.splitlines()[where[0][0] - 1][where[0][1] - 1] == "x"


def test_a_translate_table_that_contradicts_the_taxa_block_is_an_error(tmp_path):
    p = tmp_path / "x.trees"
    p.write_text(
        "#NEXUS\nbegin taxa;\ndimensions ntax=4;\ntaxlabels A B C D;\nend;\n"
        "begin trees;\ntranslate\n1 A,\n2 B,\n3 C,\n4 X;\ntree gen.1 = ((1,2),(3,4));\nend;\n"
    )
    with pytest.raises(InputError, match="taxa block does not list: 'X'") as err:
        read_trees(str(p))
    assert err.value.line == 7  # the translate command
    # a table naming a subset: the other taxa of the block are written by name
    p.write_text(
        "#NEXUS\nbegin taxa;\ndimensions ntax=4;\ntaxlabels A B C D;\nend;\n"
        "begin trees;\ntranslate\n1 A,\n2 B;\ntree gen.1 = ((1,2),(C,D));\nend;\n"
    )
    assert read_trees(str(p), burnin=0).taxa.names == ("A", "B", "C", "D")


def test_errors_on_a_one_line_file_of_36_kb_give_the_column_and_the_text(tmp_path):
    """DendroPy's GEBA.tree.newick: one tree of 720 taxa on one line."""
    text = (ROOT / "tests" / "data" / "dendropy" / "GEBA.tree.newick").read_text()
    assert len(text) > 36000 and text.count("\n") <= 1
    assert read_trees(str(ROOT / "tests" / "data" / "dendropy" / "GEBA.tree.newick")).n_taxa == 720
    at = text.index(":", 30000) + 1
    damaged = text[:at] + "x" + text[at + 1 :]  # a branch length that is no number
    bad = tmp_path / "bad.nwk"
    bad.write_text(damaged)
    with pytest.raises(InputError) as err:
        read_trees(str(bad))
    e = err.value
    assert (e.line, e.column) == (1, at + 1)
    assert "branch length" in e.message and "<HERE>x" in e.message
    assert len(str(e)) < 300  # an excerpt, not the line
    near = e.message.split("near: ")[1]
    assert near.startswith("...") and near.endswith("...")
    assert near[3:-3].replace("<HERE>", "") in damaged


def test_a_huge_label_is_cut_in_messages(tmp_path):
    name = "x" * 100_000
    p = tmp_path / "big.nwk"
    p.write_text(f"((A,B),(C,D),E);\n((A,B),(C,D),{name});\n")
    with pytest.raises(InputError, match="unknown taxon") as err:
        read_trees(str(p))
    assert len(str(err.value)) < 300 and "100000 characters" in str(err.value)
    assert err.value.line == 2 and err.value.column == len("((A,B),(C,D),") + 1
