"""Taxon names match between alignments and trees as they match between tree files.

A FASTA ``>Genus species`` or a NEXUS ``'Genus species'`` is the taxon a Newick label
``Genus_species`` names (NEXUS reads an underscore in an unquoted token as a blank).  The
files below are written the way real programs write them: the alignment with blanks (as
GenBank-derived FASTA has them), the trees with underscores (as MrBayes and BEAST write
them); the values must equal those of the same files with consistent names.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.marglik import main
from phylo.errors import InputError
from phylo.execution import read_table
from phylo.likelihood import HKY, TreeLikelihood, random_tree, read_alignment, simulate_alignment
from phylo.tables import parse_table
from phylo.trees import Tree, parse_newick

SPECIES = [
    "Homo sapiens",
    "Pan troglodytes",
    "Gorilla gorilla",
    "Pongo abelii",
    "Hylobates lar",
    "Macaca mulatta",
    "Papio anubis",
]
MODEL = HKY(2.0, [0.3, 0.2, 0.2, 0.3])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(19)
    under = [s.replace(" ", "_") for s in SPECIES]
    tree = random_tree(under, rng, 0.1, 1e-3)
    aln = simulate_alignment(tree, MODEL, 200, rng)
    seqs = dict(zip(under, aln.sequences()))
    order = [under[i] for i in rng.permutation(len(under))]  # the alignment in another order
    text = tree.to_newick()
    assert "Homo_sapiens" in text and "'" not in text
    (d / "tree.nwk").write_text(text + "\n")
    (d / "set.tsv").write_text(f"1.0\t{text}\n")
    (d / "under.fasta").write_text("".join(f">{n}\n{seqs[n]}\n" for n in order))
    (d / "blank.fasta").write_text("".join(f">{n.replace('_', ' ')}\n{seqs[n]}\n" for n in order))
    rows = "\n".join(f"  '{n.replace('_', ' ')}'  {seqs[n]}" for n in order)
    (d / "quoted.nex").write_text(
        "#NEXUS\nbegin data;\n  dimensions ntax=7 nchar=200;\n"
        f"  format datatype=dna missing=? gap=-;\n  matrix\n{rows}\n  ;\nend;\n"
    )
    return d, tree


def test_the_alignments_are_written_as_intended(files):
    d, _ = files
    assert ">Homo sapiens\n" in (d / "blank.fasta").read_text()
    assert "'Homo sapiens'" in (d / "quoted.nex").read_text()
    assert read_alignment(str(d / "blank.fasta")).taxa[0].count(" ") == 1
    assert read_alignment(str(d / "quoted.nex")).keys == read_alignment(str(d / "blank.fasta")).keys


@pytest.mark.parametrize("name", ["blank.fasta", "quoted.nex"])
def test_tree_likelihood_matches_names_with_blanks(files, name):
    d, tree = files
    ref = TreeLikelihood(read_alignment(str(d / "under.fasta")), tree, MODEL).log_likelihood()
    other = read_alignment(str(d / name))
    lik = TreeLikelihood(other, tree, MODEL)
    assert lik.log_likelihood() == pytest.approx(ref, rel=1e-13)
    # the rows were put in the tree's order: the first row is the tree's taxon 0
    assert lik.alignment.taxa == tree.taxa.names
    k = other.keys.index(tree.taxa.keys[0])
    assert np.array_equal(lik.alignment.codes[0], other.codes[k])
    # a tree written with blanks (quoted) is the same tree on the same taxa
    blanks = Tree(SPECIES, tree.parent, tree.branch_lengths).to_newick()
    assert "'Homo sapiens'" in blanks
    again = parse_newick(blanks, taxa=SPECIES)
    assert again.taxa == tree.taxa and np.array_equal(again.parent, tree.parent)
    assert TreeLikelihood(other, again, MODEL).log_likelihood() == pytest.approx(ref, rel=1e-13)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("name", ["blank.fasta", "quoted.nex"])
def test_marglik_loglik(files, name):
    d, _ = files
    ref = run("loglik", d / "under.fasta", d / "tree.nwk", "--model", "HKY")
    r = run("loglik", d / name, d / "tree.nwk", "--model", "HKY")
    assert ref.exit_code == 0 and r.exit_code == 0, r.output
    a = float(parse_table(ref.output)[2][0]["log_likelihood"])
    b = float(parse_table(r.output)[2][0]["log_likelihood"])
    assert b == pytest.approx(a, rel=1e-13)


def test_marglik_estimate(files):
    d, _ = files
    out = []
    for name in ("under.fasta", "blank.fasta"):
        r = run("estimate", d / name, d / "tree.nwk", "--method", "gl", "--seed", 3)
        assert r.exit_code == 0, r.output
        out.append(float(parse_table(r.output)[2][0]["log_ml"]))
    assert np.isfinite(out[0]) and out[1] == pytest.approx(out[0], rel=1e-12)


def test_marglik_compare(files, tmp_path):
    d, _ = files
    tables = []
    for name in ("under.fasta", "quoted.nex"):
        o = tmp_path / f"{name}.tsv"
        r = run(
            "compare", d / name, "--trees", d / "set.tsv", "--methods", "gl", "--seed", 3,
            "--reference", d / "set.tsv", "-o", o, "-q",
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        rows = read_table(str(o))[2]
        tables.append([float(row["log_ml"]) for row in rows])
    assert len(tables[0]) == 1 and np.isfinite(tables[0][0])
    assert tables[1] == pytest.approx(tables[0], rel=1e-12)


def test_other_taxa_still_differ(files, tmp_path):
    d, tree = files
    text = (d / "blank.fasta").read_text().replace(">Papio anubis", ">Papio hamadryas")
    (tmp_path / "other.fasta").write_text(text)
    with pytest.raises(InputError) as info:
        TreeLikelihood(read_alignment(str(tmp_path / "other.fasta")), tree, MODEL)
    assert "only in the tree: 'Papio_anubis'" in info.value.message
    assert f"only in {tmp_path / 'other.fasta'}: 'Papio hamadryas'" in info.value.message


def test_simulated_trees_are_canonical_trees_that_quote_their_names():
    rng = np.random.default_rng(2)
    t = random_tree(["Homo sapiens", "it's", "x,y", "T3", "T4", "T5"], rng, 0.1)
    assert isinstance(t, Tree)
    same = Tree.from_parents(t.taxa, t.parent, t.branch_lengths)
    assert np.array_equal(same.parent, t.parent)
    text = t.to_newick()
    assert "'Homo sapiens'" in text and "'it''s'" in text and "'x,y'" in text
    back = parse_newick(text, taxa=t.taxa)
    assert np.array_equal(back.parent, t.parent)
    assert np.array_equal(back.branch_lengths, t.branch_lengths)
