"""Alignment readers, ambiguity codes, site patterns and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.likelihood import Alignment, parse_alignment, read_alignment
from phylo.trees import Taxa
from tests.conftest import shared_path

SEQS = {"a": "ACGTRYN-", "b": "ACGTACGT", "c": "TTGTACG?"}


def fasta():
    return "".join(f">{k}\n{v[:4]}\n{v[4:]}\n" for k, v in SEQS.items())


def test_fasta_codes_and_ambiguity():
    aln = parse_alignment(fasta())
    assert aln.taxa == ("a", "b", "c")
    # A C G T R=A|G Y=C|T N gap
    assert aln.codes[0].tolist() == [1, 2, 4, 8, 5, 10, 15, 15]
    assert aln.codes[2, -1] == 15  # '?' is missing data: all states


def test_formats_agree():
    nexus = (
        "#NEXUS\n[comment with MATRIX inside]\nBEGIN TAXA; DIMENSIONS NTAX=3;"
        " TAXLABELS a b c; END;\n"
        "BEGIN CHARACTERS; [! Matrix URI MATRIX]\n DIMENSIONS NCHAR=8;\n"
        " FORMAT DATATYPE=DNA MISSING=? GAP=- INTERLEAVE;\nMATRIX\n"
        "[ ruler 1 2 3 ]\n"
        "a ACGT\nb ACGT\n'c' TTGT\n\n"
        "a RYN-\nb ACGT\nc ACG?\n;\nEND;\n"
    )
    phylip_seq = "3 8\na ACGTRYN-\nb ACGTACGT\nc TTGTACG?\n"
    phylip_multi = "3 8\na ACGT\nRYN-\nb ACGT\nACGT\nc TTGT\nACG?\n"
    phylip_inter = "3 8\na ACGT\nb ACGT\nc TTGT\nRYN-\nACGT\nACG?\n"
    phylip_strict = "3 8\na         ACGTRYN-\nb         ACGTACGT\nc         TTGTACG?\n"
    ref = parse_alignment(fasta())
    for text in (nexus, phylip_seq, phylip_multi, phylip_inter, phylip_strict):
        aln = parse_alignment(text)
        assert aln.taxa == ref.taxa
        assert np.array_equal(aln.codes, ref.codes)


def test_nexus_treebase_symbols_and_sequential_tokens():
    # MISSING=- GAP=? as in the TreeBASE files; sequence split across tokens and lines
    text = (
        "#NEXUS\nBEGIN DATA; DIMENSIONS NTAX=2 NCHAR=6;\n"
        "FORMAT DATATYPE=DNA MISSING=- GAP= ?;\nMATRIX\n"
        "x AC- \nG?T\ny {AG}CGTA (CT)\n;\nEND;\n"
    )
    aln = parse_alignment(text)
    assert aln.codes.tolist() == [[1, 2, 15, 4, 15, 8], [5, 2, 4, 8, 1, 10]]


def test_patterns_compress_with_weights():
    aln = Alignment.from_sequences(["a", "b", "c"], ["AAGAT", "AACAT", "CCGCG"])
    pats = aln.patterns()
    assert pats.n_patterns == 3
    assert pats.weights.sum() == 5
    # every site is reproduced by its pattern
    assert np.array_equal(pats.codes[:, pats.site_pattern], aln.codes)
    tips = pats.tip_partials()
    assert tips.shape == (3, 4, 3)
    assert np.array_equal(tips.sum(axis=1), np.ones((3, 3)))


def test_empirical_frequencies_share_ambiguity():
    aln = Alignment.from_sequences(["a", "b"], ["AR", "N-"])
    # A counts 1, R = A|G counts 1/2 each, N and gap count nothing
    assert np.allclose(aln.empirical_frequencies(), [0.75, 0.0, 0.25, 0.0])


@pytest.mark.parametrize(
    "text, message",
    [
        (">a\nACGZ\n>b\nACGT\n", "unknown character 'Z'"),
        (">a\nACGT\n>b\nACG\n", "unequal length"),
        (">a\nACGT\n>a\nACGT\n", "duplicate taxon name"),
        ("3 4\na ACGT\nb ACGT\n", "expected 3 sequences"),
        (
            "#NEXUS\nBEGIN DATA; DIMENSIONS NTAX=2 NCHAR=4; FORMAT DATATYPE=DNA;\nMATRIX\n"
            "a ACGT\nb ACG\n;\nEND;\n",
            "sites",
        ),
        (
            "#NEXUS\nBEGIN DATA; DIMENSIONS NTAX=2 NCHAR=4; FORMAT DATATYPE=PROTEIN;\nMATRIX\n"
            "a ACGT\nb ACGT\n;\nEND;\n",
            "DNA",
        ),
        ("hello\n", "unrecognised alignment format"),
    ],
)
def test_bad_input_is_reported(text, message):
    with pytest.raises(InputError, match=message):
        parse_alignment(text, path="x")


def test_error_has_line_number():
    with pytest.raises(InputError) as info:
        parse_alignment(">a\nACGTAC\n>b\nAC\n  GT  AJ\n", path="f.fasta")
    assert info.value.path == "f.fasta" and info.value.line == 5 and info.value.column == 8


def test_taxa_mismatch_message_names_both_files():
    aln = Alignment.from_sequences(["a", "b", "c"], ["ACGT"] * 3, path="x.fasta")
    with pytest.raises(InputError) as info:
        aln.take_taxa(Taxa(["a", "b", "d"], source="t.nwk"))
    assert str(info.value) == (
        "taxa differ between t.nwk and x.fasta: only in t.nwk: 'd'; only in x.fasta: 'c'"
    )
    # names are keys as in trees: 'a_b' and 'a b' are one taxon, so twice is a duplicate
    with pytest.raises(InputError, match="duplicate"):
        Alignment.from_sequences(["a_b", "a b", "c"], ["ACGT"] * 3)
    with pytest.raises(InputError, match="duplicate"):
        parse_alignment(">a_b\nACGT\n>a b\nACGT\n>c\nACGT\n", path="f.fasta")


def test_ds1_nexus_equals_fasta():
    nex = read_alignment(str(shared_path("marglik/alignments/DS1.nex")))
    fa = read_alignment(str(shared_path("ds/zcrabbit-vbpi/data/hohna_datasets_fasta/DS1.fasta")))
    assert (nex.n_taxa, nex.n_sites) == (27, 1949)
    assert np.array_equal(nex.take_taxa(fa.taxa).codes, fa.codes)


@pytest.mark.parametrize(
    "name, ntax, nchar",
    [("DS2", 29, 2520), ("DS3s", 36, 1832), ("DS4", 41, 1137), ("DS5", 50, 378)],
)
def test_treebase_nexus_files(name, ntax, nchar):
    aln = read_alignment(str(shared_path(f"marglik/alignments/{name}.nex")))
    assert (aln.n_taxa, aln.n_sites) == (ntax, nchar)


@pytest.mark.parametrize(
    "data, message",
    [
        ("é".encode("latin-1"), "byte 0xe9 is not UTF-8 text"),  # Latin-1, not UTF-8
        (b"\xff", "byte 0xff is not UTF-8 text"),
        ("—".encode(), "unknown character '—'"),  # an em dash, valid UTF-8
        ("é".encode(), "unknown character 'é'"),
    ],
)
def test_bytes_that_are_no_state_are_errors_not_missing_data(tmp_path, data, message):
    """Such bytes once became '?' (missing data) and changed the likelihood silently."""
    from phylo.likelihood import read_alignment

    path = tmp_path / "a.fasta"
    path.write_bytes(b">a\nACGT\n>b\nAC" + data + b"T\n")
    with pytest.raises(InputError, match=message) as err:
        read_alignment(str(path))
    assert err.value.line == 4 and err.value.column == 3 and err.value.path == str(path)


def test_a_byte_order_mark_is_ignored(tmp_path):
    from phylo.likelihood import read_alignment

    path = tmp_path / "bom.fasta"
    path.write_bytes(b"\xef\xbb\xbf>a\nACGT\n>b\nACGA\n")
    aln = read_alignment(str(path))
    assert list(aln.taxa) == ["a", "b"]
