"""Reading tree files into a TreeSample: formats, runs, burn-in, thinning, taxa."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.trees import parse_burnin, parse_newick, read_trees

from ..conftest import DATA, ROOT
from .randomtrees import random_rooted, to_newick

RUN1 = str(DATA / "example.run1.t")
RUN2 = str(DATA / "example.run2.t")
TRPROBS = str(DATA / "example.trprobs")

TOPOLOGIES = ["((A,B),(C,D),E);", "((A,C),(B,D),E);", "((A,B),(C,E),D);"]


def nexus(
    trees, names, translate=None, rooted_flag="[&U]", weights=None, end=True, taxa_block=False
):
    """A NEXUS tree file; ``translate`` maps key -> name (keys used in the trees)."""
    out = ["#NEXUS", "[comment with the word tree; and begin trees;]"]
    if taxa_block:
        out += [
            "begin taxa;",
            f"  dimensions ntax={len(names)};",
            "  taxlabels " + " ".join(names) + ";",
            "end;",
        ]
    out.append("begin trees;")
    if translate:
        items = list(translate.items())
        out.append("  translate")
        for i, (k, v) in enumerate(items):
            out.append(f"    {k} {v}{';' if i == len(items) - 1 else ','}")
    for i, t in enumerate(trees):
        w = f"[&W {weights[i]}] " if weights is not None else ""
        out.append(f"  tree t{i} [p = 0.1, P = 0.2] = {w}{rooted_flag} {t}")
    if end:
        out.append("end;")
    return "\n".join(out) + "\n"


def write(tmp_path, name, text, gz=False):
    path = tmp_path / name
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return str(path)


def test_counts_and_order(tmp_path):
    trees = [TOPOLOGIES[i] for i in (0, 1, 0, 2, 0, 1, 0, 0)]
    p = write(tmp_path, "a.nwk", "\n".join(trees) + "\n")
    s = read_trees(p, burnin=0)
    assert s.n_topologies == 3 and s.n_trees == 8
    assert s.counts[:, 0].tolist() == [5, 2, 1]  # sorted by frequency
    assert s.frequencies().tolist() == [5 / 8, 2 / 8, 1 / 8]
    ref = parse_newick(TOPOLOGIES[1], taxa=s.taxa)
    assert s.index_of(ref) == 1
    assert s.traces[0].tolist() == [0, 1, 0, 2, 0, 1, 0, 0]


def test_burnin_and_thinning(tmp_path):
    trees = [TOPOLOGIES[(i // 2) % 3] for i in range(20)]
    p = write(tmp_path, "a.nwk", "\n".join(trees) + "\n")
    # MCMC state numbers in the tree names: the default burn-in is 25% of 20 = 5 trees
    mcmc = "".join(f"tree gen.{100 * i} = {t}\n" for i, t in enumerate(trees))
    t = write(tmp_path, "a.t", f"#NEXUS\nbegin trees;\n{mcmc}end;\n")
    s = read_trees(t)
    assert s.runs[0].burnin == 5 and s.runs[0].n_used == 15
    assert s.runs[0].mcmc and s.runs[0].states == (0, 100) and not s.notes
    assert read_trees(p, burnin=7).runs[0].n_used == 13
    assert read_trees(p, burnin="10%").runs[0].burnin == 2
    s = read_trees(p, burnin=0, thin=3)  # trees 0, 3, ..., 18
    assert s.runs[0].n_used == 7
    kept = [TOPOLOGIES[(i // 2) % 3] for i in range(0, 20, 3)]
    expected = [parse_newick(t, taxa=s.taxa) for t in kept]
    assert [s.index_of(t) for t in expected] == s.traces[0].tolist()
    assert s.counts[:, 0].tolist() == [4, 3]
    s = read_trees(p, burnin=4, thin=5)  # trees 4, 9, 14, 19
    assert s.traces[0].tolist() == [
        s.index_of(parse_newick(TOPOLOGIES[(i // 2) % 3], taxa=s.taxa)) for i in (4, 9, 14, 19)
    ]
    with pytest.raises(InputError, match="leaves none"):
        read_trees(p, burnin=20)


@pytest.mark.parametrize(
    "text, expected",
    [("0.25", 0.25), ("25%", 0.25), ("100", 100), ("0", 0), (None, None), (0.1, 0.1), (7, 7)],
)
def test_parse_burnin(text, expected):
    assert parse_burnin(text) == expected


@pytest.mark.parametrize("bad", ["1.0", "-1", "abc", "1.5", "-0.1"])
def test_parse_burnin_rejects(bad):
    with pytest.raises(InputError):
        parse_burnin(bad)


def test_translate_tables_in_different_orders_are_the_same_taxa(tmp_path):
    names = ["Alpha", "Beta", "Gamma", "Delta", "Eps_ilon"]
    t1 = {str(i + 1): n for i, n in enumerate(names)}
    t2 = {str(i + 1): n for i, n in enumerate(reversed(names))}
    tree = "((Alpha,Beta),(Gamma,Delta),Eps_ilon);"

    def keyed(table):
        inv = {v: k for k, v in table.items()}
        out = tree
        for n in sorted(names, key=len, reverse=True):
            out = out.replace(n, inv[n])
        return out

    p1 = write(tmp_path, "r1.t", nexus([keyed(t1)] * 4, names, t1))
    p2 = write(tmp_path, "r2.t", nexus([keyed(t2)] * 4, names, t2))
    p3 = write(tmp_path, "r3.nwk", "('Eps ilon',(Delta,Gamma),(Beta,Alpha));\n" * 4)
    s = read_trees([p1, p2, p3], burnin=0)
    assert s.taxa.names == tuple(names)
    assert s.n_topologies == 1 and s.n_runs == 3
    assert s.counts[0].tolist() == [4, 4, 4]


def test_translate_tables_that_differ_are_an_error(tmp_path):
    names = ["A", "B", "C", "D", "E"]
    p1 = write(
        tmp_path,
        "r1.t",
        nexus(["((1,2),(3,4),5);"], names, {str(i + 1): n for i, n in enumerate(names)}),
    )
    other = ["A", "B", "C", "D", "F"]
    p2 = write(
        tmp_path,
        "r2.t",
        nexus(["((1,2),(3,4),5);"], other, {str(i + 1): n for i, n in enumerate(other)}),
    )
    with pytest.raises(InputError, match="translate table differ") as e:
        read_trees([p1, p2], burnin=0)
    assert e.value.path == p2 and e.value.line == 4  # the translate command


def test_weighted_trprobs(tmp_path):
    names = ["A", "B", "C", "D", "E"]
    table = {str(i + 1): n for i, n in enumerate(names)}
    p = write(
        tmp_path,
        "x.trprobs",
        nexus(
            ["((1,2),(3,4),5);", "((1,3),(2,4),5);", "((2,1),5,(4,3));"],
            names,
            table,
            weights=[0.5, 0.3, 0.2],
        ),
    )
    s = read_trees(p)
    assert s.weighted and s.runs[0].burnin == 0
    assert s.n_topologies == 2
    assert s.frequencies() == pytest.approx([0.7, 0.3])
    with pytest.raises(InputError, match="no burn-in"):
        read_trees(p, burnin=0.25)


def test_taxa_block_and_no_translate_and_missing_end(tmp_path):
    names = ["A", "B", "C", "D", "E"]
    text = nexus(TOPOLOGIES, names, taxa_block=True, end=False)
    s = read_trees(write(tmp_path, "x.nex", text), burnin=0)
    assert s.taxa.names == tuple(names) and s.n_trees == 3
    assert any("no 'end;'" in n for n in s.notes)


def test_beast_metadata_and_rooted(tmp_path):
    text = (
        "#NEXUS\nBegin trees;\n\tTranslate\n\t\t1 A,\n\t\t2 B,\n\t\t3 C,\n\t\t4 D\n\t\t;\n"
        "tree STATE_0 [&lnP=-1.5,joint=-2] = [&R] ((1:[&rate=1.0]0.1,2:[&rate=0.9]0.1)"
        ":[&rate=1.1]0.2,(3:[&rate=1.0]0.2,4:[&rate=1.0]0.2):[&rate=1.0]0.1):0.0;\n"
        "tree STATE_1 [&lnP=-1.4] = [&R] ((1:0.1,3:0.1):0.2,(2:0.2,4:0.2):0.1);\n"
        "tree STATE_2 [&lnP=-1.4] = [&R] (1:0.3,(2:0.2,(3:0.1,4:0.1):0.1):0.1);\n"
        "End;\n"
    )
    p = write(tmp_path, "x.trees", text)
    rooted = read_trees(p, burnin=0, rooted=True)
    assert rooted.n_topologies == 3 and rooted.rooted
    unrooted = read_trees(p, burnin=0)
    assert unrooted.n_topologies == 2  # ((A,B),(C,D)) and (A,(B,(C,D))) are one unrooted tree
    assert any("[&R]" in n for n in unrooted.notes)
    assert unrooted.runs[0].marked_rooted == 3


def test_gzip_and_stdin(tmp_path):
    text = "\n".join(TOPOLOGIES) + "\n"
    p = write(tmp_path, "x.nwk.gz", text, gz=True)
    assert read_trees(p, burnin=0).n_topologies == 3
    code = (
        "import sys; from phylo.trees import read_trees; "
        "s = read_trees('-', burnin=0); print(s.n_topologies, s.n_trees)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=gzip.compress(text.encode()),
        capture_output=True,
        check=True,
    )
    assert out.stdout.split() == [b"3", b"3"]


def test_more_than_100_taxa(tmp_path):
    rng = np.random.default_rng(5)
    names = [f"taxon{i:03d}" for i in range(130)]
    tops = [random_rooted(rng, names) for _ in range(3)]
    lines = [to_newick(tops[i % 3], rng) + ";" for i in range(12)]
    s = read_trees(write(tmp_path, "big.nwk", "\n".join(lines)), burnin=0)
    assert s.n_taxa == 130 and s.n_topologies == 3
    assert s.clades().shape == (3, 258, 3)
    assert sorted(s.counts[:, 0].tolist()) == [4, 4, 4]


def test_example_runs_match_mrbayes_trprobs():
    """MrBayes's own .trprobs of the example runs (25% burn-in) lists the same topologies
    with the same frequencies (to its 6 printed decimals)."""
    raw = read_trees([RUN1, RUN2])
    summary = read_trees(TRPROBS)
    assert raw.n_topologies == summary.n_topologies == 645
    f_raw = raw.frequencies()
    f_mb = summary.frequencies()
    for i in range(summary.n_topologies):
        j = raw.index_of(summary.topology(i))
        assert j >= 0
        assert f_raw[j] == pytest.approx(f_mb[i], abs=1e-6)


def test_tiny_chunks_give_the_same_sample(tmp_path):
    """Reading in chunks of a few bytes gives what one big chunk gives."""
    from phylo.trees.reader import ReadState, read_file

    big = read_trees([RUN1], burnin=0)
    state = ReadState(rooted=False)
    ft = read_file(RUN1, state, chunk_size=777)
    assert ft.n_trees == big.n_trees
    assert state.index.count == big.n_topologies


def test_a_tree_of_weight_zero_is_a_topology_of_the_sample(tmp_path):
    """[&W 0] once gave topology id -1, which callers used as an index (the last topology)."""
    from phylo.trees import read_trees

    text = (
        "#NEXUS\nbegin trees;\n"
        "tree a = [&W 0.75] ((A,B),(C,D),E);\n"
        "tree b = [&W 0.25] ((A,C),(B,D),E);\n"
        "tree c = [&W 0] ((A,D),(B,C),E);\n"
        "end;\n"
    )
    path = tmp_path / "w.trprobs"
    path.write_text(text)
    sample = read_trees(str(path))
    assert sample.n_topologies == 3
    assert list(sample.traces[0]) == [0, 1, 2]
    assert list(sample.frequencies()) == [0.75, 0.25, 0.0]
    third = sample.topology(2)
    assert third.same_topology(sample.topology(sample.index_of(third)))
    assert sample.index_of(third) == 2


def test_a_run_whose_weights_are_all_zero_is_an_error(tmp_path):
    from phylo.errors import InputError
    from phylo.trees import read_trees

    path = tmp_path / "w.trprobs"
    path.write_text("#NEXUS\nbegin trees;\ntree a = [&W 0] ((A,B),(C,D),E);\nend;\n")
    with pytest.raises(InputError, match="weight 0") as err:
        read_trees(str(path))
    assert err.value.path == str(path)


@pytest.mark.parametrize(
    "paths, rooted",
    [([RUN1, RUN2], False), ([str(ROOT / "tests/data/beast2/small.trees.gz")] * 2, True)],
)
def test_chunks_parsed_while_scanning_give_the_same_sample_and_lengths(paths, rooted):
    """After the first chunk, topologies are parsed while the statements are found; chunks
    of a few hundred bytes (many trees parsed that way, and trees cut by the end of a chunk)
    give the topologies, traces and branch lengths of one big chunk."""
    big = read_trees(paths, rooted=rooted, lengths=True)
    for size in (300, 777, 5000):
        small = read_trees(paths, rooted=rooted, lengths="stream", chunk_size=size)
        assert np.array_equal(small.parents, big.parents)
        assert np.array_equal(small.counts, big.counts)
        for a, b in zip(small.traces, big.traces):
            assert np.array_equal(a, b)
        got = [(r, pos, ids, L) for r, pos, ids, L in small.iter_lengths(chunk=50)]
        for r in range(2):
            mine = [b for b in got if b[0] == r]
            assert [b[1] for b in mine] == list(np.cumsum([0] + [len(b[2]) for b in mine])[:-1])
            ids = np.concatenate([b[2] for b in mine])
            L = np.concatenate([b[3] for b in mine])
            assert np.array_equal(ids, big.traces[r])
            assert np.array_equal(L, big.lengths[r], equal_nan=True)
        assert np.array_equal(small.tree_lengths(1, 7), big.tree_lengths(1, 7))


def test_an_error_after_the_first_chunk_is_found_where_one_big_chunk_finds_it(tmp_path):
    """A bad tree read by the kernel that parses while scanning is read again the usual
    way: the same message, line and column as with one chunk."""
    from phylo.trees.reader import ReadState, read_file

    lines = open(RUN1).read().splitlines()
    k = len(lines) - 5  # a late tree
    assert lines[k].strip().startswith("tree")
    lines[k] = lines[k].replace(",", ",,", 1)
    p = tmp_path / "bad.t"
    p.write_text("\n".join(lines) + "\n")
    errors = []
    for size in (400, 1 << 25):
        with pytest.raises(InputError) as err:
            read_file(str(p), ReadState(rooted=False), chunk_size=size)
        errors.append((err.value.message, err.value.line, err.value.column))
    assert errors[0] == errors[1] and errors[0][1] == k + 1


def test_lengths_read_again_past_skipped_trees_with_a_byte_order_mark(tmp_path):
    """Reading lengths again seeks past the trees not kept (burn-in, thinning): the offsets
    count from after a byte-order mark, so a file that starts with one gives the lengths of
    the same trees (a seek that forgot the mark would land three bytes early)."""
    p = tmp_path / "bom.t"
    p.write_bytes(b"\xef\xbb\xbf" + open(RUN1, "rb").read())
    big = read_trees(RUN1, burnin=0.5, thin=3, lengths=True)
    small = read_trees(str(p), burnin=0.5, thin=3, lengths="stream", chunk_size=300)
    L = np.concatenate([b[3] for b in small.iter_lengths()])
    assert np.array_equal(L, big.lengths[0], equal_nan=True)
    last = small.runs[0].n_used - 1
    assert np.array_equal(small.tree_lengths(0, last), big.lengths[0][last])


def test_rows_permuted_in_place_equal_fancy_indexing():
    from phylo.trees import _kernels_index as KI

    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 100):
        rows = rng.integers(0, 1000, size=(n, 9)).astype(np.int32)
        order = rng.permutation(n).astype(np.int64)
        want = rows[order]
        KI.permute_rows(rows, order)
        assert np.array_equal(rows, want)
