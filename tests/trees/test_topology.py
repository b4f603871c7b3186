"""The one topology core: canonical form, relabelling, lengths that follow their splits.

Random binary trees of 4-70 taxa are drawn as parent arrays with shuffled internal numbering
and a random root, written as Newick by the test itself, and read by dendropy, whose
bipartition encoding is the independent oracle for the topology and for the length of every
split.  The canonical form is checked against a brute-force numbering written from its
definition.
"""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.trees import Taxa, Tree, parse_newick, read_trees
from phylo.trees.taxa import check_same_taxa
from phylo.trees.topology import canonical, canonical_map, permutation, relabel

dendropy = pytest.importorskip("dendropy")

SIZES = [4, 5, 6, 9, 17, 33, 70]


# -- random trees as parent arrays, written independently of phylo -------------------------


def random_parents(rng, n, bifurcating_root):
    """A random binary tree on leaves ``0..n-1``: parent array with internal ids shuffled,
    random branch lengths (root entry 0).  The root has two children when
    ``bifurcating_root``, else three."""
    M = 2 * n - 1 if bifurcating_root else 2 * n - 2
    parent = np.full(M, -1, np.int64)
    nodes = list(range(n))
    nxt = n
    stop = 1 if bifurcating_root else 3
    while len(nodes) > stop:
        i, j = sorted(rng.choice(len(nodes), size=2, replace=False))
        b = nodes.pop(j)
        a = nodes.pop(i)
        parent[a] = parent[b] = nxt
        nodes.append(nxt)
        nxt += 1
    if not bifurcating_root:
        for v in nodes:
            parent[v] = nxt
    # shuffle the internal ids
    ids = np.arange(M)
    ids[n:] = n + rng.permutation(M - n)
    out = np.full(M, -1, np.int64)
    for v in range(M):
        if parent[v] >= 0:
            out[ids[v]] = ids[parent[v]]
    lengths = rng.uniform(0.01, 1.0, size=M)
    lengths[out == -1] = 0.0
    return out, lengths


def reroot(parent, lengths, new_root):
    """The same unrooted tree (trifurcating root) re-oriented from internal ``new_root``."""
    M = parent.shape[0]
    adj = {v: [] for v in range(M)}
    for v in range(M):
        if parent[v] >= 0:
            adj[v].append((int(parent[v]), lengths[v]))
            adj[int(parent[v])].append((v, lengths[v]))
    out = np.full(M, -1, np.int64)
    bl = np.zeros(M)
    seen = {new_root}
    stack = [new_root]
    while stack:
        v = stack.pop()
        for w, t in adj[v]:
            if w not in seen:
                seen.add(w)
                out[w] = v
                bl[w] = t
                stack.append(w)
    return out, bl


def newick_of(parent, lengths, names, rng):
    """Newick text of a parent array, children in random order, lengths in full."""
    M = parent.shape[0]
    kids = {v: [] for v in range(M)}
    root = int(np.flatnonzero(parent == -1)[0])
    for v in range(M):
        if parent[v] >= 0:
            kids[int(parent[v])].append(v)

    def text(v):
        if not kids[v]:
            s = "'" + names[v].replace("'", "''") + "'"
        else:
            order = list(kids[v])
            rng.shuffle(order)
            s = "(" + ",".join(text(c) for c in order) + ")"
        return s if v == root else f"{s}:{float(lengths[v])!r}"

    return text(root) + ";"


def dendropy_lengths(newick, names, rooted):
    """dendropy's map from each split (unrooted: the side without ``names[0]``; rooted: the
    clade) to its length, summing edges with the same split (the two edges at a root of an
    unrooted tree)."""
    ns = dendropy.TaxonNamespace(names)
    tree = dendropy.Tree.get(
        data=newick,
        schema="newick",
        taxon_namespace=ns,
        rooting="force-rooted" if rooted else "force-unrooted",
        preserve_underscores=True,
    )
    tree.encode_bipartitions()
    out = {}
    everything = frozenset(names)
    for edge in tree.postorder_edge_iter():
        if edge.tail_node is None:
            continue
        side = frozenset(t.label for t in edge.bipartition.leafset_taxa(ns))
        if not rooted and names[0] in side:
            side = everything - side
        out[side] = out.get(side, 0.0) + edge.length
    return out


def our_lengths(parent, lengths, names, rooted):
    """The same map from a (canonical) parent array of ours."""
    n = len(names)
    below = [frozenset([names[v]]) if v < n else frozenset() for v in range(parent.shape[0])]
    for v in range(parent.shape[0] - 1):  # canonical: children before parents
        below[parent[v]] = below[parent[v]] | below[v]
    out = {}
    everything = frozenset(names)
    for v in range(parent.shape[0] - 1):
        side = below[v]
        if not rooted and names[0] in side:
            side = everything - side
        out[side] = out.get(side, 0.0) + lengths[v]
    return out


def same_map(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-15), sorted(k)


def brute_canonical(parent, n, rooted):
    """The canonical numbering, written from its definition with recursion and sets: the
    undirected tree rooted at the neighbour of taxon 0 (unrooted, a bifurcating root
    suppressed) or at its root (rooted); internal nodes in postorder, children by their
    smallest taxon."""
    M = parent.shape[0]
    nbr = {v: set() for v in range(M)}
    root = int(np.flatnonzero(parent == -1)[0])
    for v in range(M):
        if parent[v] >= 0:
            nbr[v].add(int(parent[v]))
            nbr[int(parent[v])].add(v)
    if not rooted and len(nbr[root]) == 2:
        a, b = nbr.pop(root)
        nbr[a] = (nbr[a] - {root}) | {b}
        nbr[b] = (nbr[b] - {root}) | {a}
    start = root if rooted else next(iter(nbr[0]))

    def smallest(v, up):
        if v < n:
            return v
        return min(smallest(w, v) for w in nbr[v] if w != up)

    out = {}
    counter = [n]

    def number(v, up):
        if v < n:
            return v
        kids = sorted((w for w in nbr[v] if w != up), key=lambda w: smallest(w, v))
        ids = [number(w, v) for w in kids]
        me = counter[0]
        counter[0] += 1
        for i in ids:
            out[i] = me
        return me

    top = number(start, None)
    out[top] = -1
    return np.array([out[v] for v in range(len(out))], np.int64)


def names_for(n):
    # blanks and underscores, quotes and commas: names as real files have them
    base = ["Homo sapiens", "Mus_musculus", "it's", "x,y"]
    return [base[i] if i < len(base) else f"T{i:02d}" for i in range(n)]


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rooted", [False, True])
@pytest.mark.parametrize("n", SIZES)
def test_canonical_matches_dendropy_and_the_definition(n, rooted):
    rng = np.random.default_rng(1000 * n + rooted)
    names = names_for(n)
    for _ in range(4):
        bifurcating = rooted or bool(rng.integers(2))
        parent, lengths = random_parents(rng, n, bifurcating)
        out, bl = canonical(parent, n, rooted, lengths)
        assert out.shape == (2 * n - 1 if rooted else 2 * n - 2,)
        assert np.array_equal(out, brute_canonical(parent, n, rooted))
        text = newick_of(parent, lengths, names, rng)
        same_map(our_lengths(out, bl, names, rooted), dendropy_lengths(text, names, rooted))
        # the parser reaches the same array and lengths from the text
        parsed = parse_newick(text, taxa=names, rooted=rooted)
        assert np.array_equal(parsed.parent, out)
        assert np.allclose(parsed.branch_lengths, bl, rtol=1e-12, atol=0)


@pytest.mark.parametrize("n", SIZES)
def test_every_encoding_of_an_unrooted_tree_has_one_canonical_form(n):
    rng = np.random.default_rng(n)
    parent, lengths = random_parents(rng, n, bifurcating_root=False)
    ref, ref_bl = canonical(parent, n, False, lengths)
    for new_root in rng.choice(np.arange(n, parent.shape[0]), size=5):
        p2, l2 = reroot(parent, lengths, int(new_root))
        out, bl = canonical(p2, n, False, l2)
        assert np.array_equal(out, ref)
        assert np.allclose(bl, ref_bl, rtol=1e-15, atol=0)
    # and a new root placed on an edge (v, up): its two halves are joined again
    up = int(rng.integers(n, parent.shape[0]))
    p4, l4 = reroot(parent, lengths, up)
    v = int(rng.choice(np.flatnonzero(p4 == up)))
    root = p4.shape[0]
    p4 = np.append(p4, -1)
    l4 = np.append(l4, 0.0)
    total = l4[v]
    p4[v] = p4[up] = root
    l4[v], l4[up] = 0.3 * total, 0.7 * total
    out, bl = canonical(p4, n, False, l4)
    assert np.array_equal(out, ref)
    assert np.allclose(bl, ref_bl, rtol=1e-12, atol=0)


@pytest.mark.parametrize("rooted", [False, True])
@pytest.mark.parametrize("n", SIZES)
def test_relabel_renames_taxa_and_lengths_follow(n, rooted):
    """canonical(relabel(x)) is the canonical form of the renamed tree, and every split of
    the renamed tree keeps its length (dendropy reads the tree under the source names)."""
    rng = np.random.default_rng(7 * n + rooted)
    source = names_for(n)
    for _ in range(3):
        parent, lengths = random_parents(rng, n, rooted or bool(rng.integers(2)))
        x, xl = canonical(parent, n, rooted, lengths)
        perm = rng.permutation(n)
        target = [None] * n
        for i in range(n):
            target[perm[i]] = source[i]
        y, yl = relabel(x, perm, rooted, xl)
        # the renamed raw array, canonicalised by the brute force
        moved = parent.copy()
        moved[perm] = parent[:n]
        assert np.array_equal(y, brute_canonical(moved, n, rooted))
        assert np.array_equal(canonical(y, n, rooted), y)  # already canonical
        text = newick_of(parent, lengths, source, rng)
        same_map(our_lengths(y, yl, target, rooted), dendropy_lengths(text, target, rooted))
        # without lengths, the same arrays
        assert np.array_equal(relabel(x, perm, rooted), y)


def test_batches_keep_their_shape_and_name_the_bad_row():
    rng = np.random.default_rng(3)
    rows = [random_parents(rng, 12, True) for _ in range(6)]
    P = np.stack([p for p, _ in rows])
    L = np.stack([b for _, b in rows])
    out, bl = canonical(P, 12, False, L)
    assert out.shape == (6, 22) and bl.shape == (6, 22)
    for k, (p, b) in enumerate(rows):
        one, one_bl = canonical(p, 12, False, b)
        assert np.array_equal(out[k], one) and np.array_equal(bl[k], one_bl)
    P[4, 3] = 5  # taxon 5 as a parent
    with pytest.raises(ValueError, match="parent array 4 is not one tree"):
        canonical(P, 12, False)
    src = canonical_map(P[:4], 12, False)[1]
    assert src.shape == (4, 22, 2)


@pytest.mark.parametrize(
    "parent, rooted, message",
    [
        ([4, 4, 5, 5, 5, -1], False, None),  # fine: ((0,1),2,3) with 4 below the root 5
        ([4, 4, 5, 5, 5, 4], False, "not one tree"),  # no root (a cycle 4 <-> 5)
        ([4, 4, 5, 5, -1, -1], False, "not one tree"),  # two roots
        ([5, 5, 6, 2, 6, 6, -1], True, "not one tree"),  # taxon 2 has a child
        ([4, 4, 4, 4, -1, 4], False, "not binary"),  # five children at the root
        ([4, 4, 4, 5, 6, 6, -1], True, "not binary"),  # node 4 has three children
        ([4, 4, 4, 5, 5, -1], False, "not binary"),  # unrooted, ((0,1,2),3) is a star
        ([4, 4, 6, 6, 5, 6, -1], False, "single child"),  # 5 has only 4 below it
        ([4, 4, 6, 6, 5, 6, -1], True, "not rooted"),  # the root has three children
        ([4, 4, 4, 5, -1, 4], True, "cannot be binary rooted trees on 4 taxa"),  # 6 nodes
        ([4, 4, 5, 5, -1, 6, 5], False, "."),  # a cycle 5 <-> 6 beside the root
        ([4, 4, 5, 5, -1, 9, 4], False, "not one tree"),  # a parent out of range
    ],
)
def test_bad_parent_arrays_are_refused(parent, rooted, message):
    parent = np.array(parent)
    if message is None:
        assert canonical(parent, 4, rooted).tolist() == [5, 5, 4, 4, 5, -1]
        return
    with pytest.raises(ValueError, match=message):
        canonical(parent, 4, rooted)


# -- Tree: renaming and unrooting as array operations ---------------------------------------


def test_unrooted_sums_the_two_root_edges():
    t = parse_newick("((A:1,B:2):0.5,(C:3,D:4):0.25);", rooted=True)
    u = t.unrooted()
    assert not u.rooted and u.n_nodes == 6
    # A is taxon 0: the root is its neighbour; the (C,D) node hangs below with 0.5 + 0.25
    assert u.parent.tolist() == [5, 5, 4, 4, 5, -1]
    assert u.branch_lengths.tolist() == [1.0, 2.0, 3.0, 4.0, 0.75, 0.0]
    same = parse_newick("((A:1,B:2):0.5,(C:3,D:4):0.25);", taxa=t.taxa)
    assert np.array_equal(u.parent, same.parent)
    assert np.array_equal(u.branch_lengths, same.branch_lengths)
    assert u.unrooted() is u
    assert t.unrooted().to_newick() == "(A:1.0,B:2.0,(C:3.0,D:4.0):0.75);"


@pytest.mark.parametrize("n", [4, 11, 40, 70])
def test_reorder_taxa_and_unrooted_keep_every_split_length(n):
    rng = np.random.default_rng(n + 50)
    names = names_for(n)
    parent, lengths = random_parents(rng, n, True)
    text = newick_of(parent, lengths, names, rng)
    rooted = parse_newick(text, taxa=names, rooted=True)
    shuffled = [names[i] for i in rng.permutation(n)]
    # the new order writes blanks as underscores: the same taxa, shown as it writes them
    order = [x.replace(" ", "_") for x in shuffled]
    r2 = rooted.reorder_taxa(order)
    assert r2.names == tuple(order) and r2.rooted
    assert np.array_equal(r2.parent, brute_canonical(r2.parent, n, True))
    same_map(
        our_lengths(r2.parent, r2.branch_lengths, shuffled, True),
        dendropy_lengths(text, shuffled, True),
    )
    u = r2.unrooted()
    same_map(
        our_lengths(u.parent, u.branch_lengths, shuffled, False),
        dendropy_lengths(text, shuffled, False),
    )
    # the parser, given the order, gives the same unrooted tree
    direct = parse_newick(text, taxa=order)
    assert np.array_equal(direct.parent, u.parent)
    assert np.allclose(direct.branch_lengths, u.branch_lengths, rtol=1e-12, atol=0)
    # reordering the unrooted tree back gives the unrooted original
    back = u.reorder_taxa(names)
    ref = rooted.unrooted()
    assert np.array_equal(back.parent, ref.parent)
    assert np.allclose(back.branch_lengths, ref.branch_lengths, rtol=1e-12, atol=0)


def test_from_parents_and_reorder_without_lengths():
    t = Tree.from_parents(["A", "B", "C", "D"], np.array([5, 5, 4, 4, -1, 4]))
    assert t.parent.tolist() == [5, 5, 4, 4, 5, -1] and t.branch_lengths is None
    r = t.reorder_taxa(["C", "A", "D", "B"])
    assert r.branch_lengths is None
    assert r.to_newick() == "(C,D,(A,B));"
    with pytest.raises(InputError, match="only in the tree: 'B'; only in the given order: 'E'"):
        t.reorder_taxa(["A", "C", "D", "E"])


def test_index_of_reorders_and_unroots(tmp_path):
    p = tmp_path / "t.nwk"
    p.write_text("((A,B),C,(D,E));\n((A,C),B,(D,E));\n((A,C),B,(D,E));\n")
    s = read_trees(str(p), burnin=0)
    assert s.index_of(parse_newick("((E,D),(B,A),C);", taxa=["E", "D", "C", "B", "A"])) == 1
    rooted = parse_newick("((C,A),(B,(D,E)));", rooted=True)
    assert s.index_of(rooted) == 0
    assert s.index_of(parse_newick("((A,D),B,(C,E));")) == -1


# -- one check of taxon sets ---------------------------------------------------------------


def test_check_same_taxa_names_the_taxa_and_both_sources():
    mine = Taxa(["Homo_sapiens", "Pan", "Gorilla"], source="run1.t")
    check_same_taxa(mine, ["Gorilla", "Homo sapiens", "Pan"])  # '_' is a blank
    with pytest.raises(InputError) as info:
        check_same_taxa(mine, ["Pan", "Gorilla", "Pongo"], second_name="run2.t", path="run2.t")
    assert info.value.path == "run2.t"
    assert info.value.message == (
        "taxa differ between run1.t and run2.t: only in run1.t: 'Homo_sapiens'; "
        "only in run2.t: 'Pongo'"
    )
    many = Taxa([f"t{i}" for i in range(20)])
    shown = r"only in the first: 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8' \.\.\. \(11 more\);"
    with pytest.raises(InputError, match=shown + " only in the second: 't99'$"):
        check_same_taxa(many, ["t0", "t99"])
    with pytest.raises(InputError, match="only in b.nwk: 'x'"):
        permutation(Taxa(["a", "b", "x"]), Taxa(["a", "b", "c"]), "b.nwk", "the model")


def test_runs_with_other_taxa_name_both_files(tmp_path):
    a = tmp_path / "a.nwk"
    b = tmp_path / "b.nwk"
    a.write_text("((A,B),C,(D,E));\n")
    b.write_text("#NEXUS\nbegin taxa;\n dimensions ntax=5;\n taxlabels A B C D F;\nend;\n")
    with open(b, "a") as fh:
        fh.write("begin trees;\n tree t = ((A,B),C,(D,F));\nend;\n")
    with pytest.raises(InputError) as info:
        read_trees([str(a), str(b)], burnin=0)
    assert info.value.path == str(b)
    assert info.value.message == (
        f"taxa differ between {a} and {b}: only in {a}: 'E'; only in {b}: 'F'"
    )


# -- the package's modules form a DAG ------------------------------------------------------


def test_trees_modules_import_each_other_without_loops():
    """Every ``from .x import`` / ``from . import x`` in phylo/trees (also inside
    functions) gives an edge; the graph must have no cycle."""
    pkg = pathlib.Path(__file__).resolve().parents[2] / "phylo" / "trees"
    modules = {p.stem for p in pkg.glob("*.py")} - {"__init__"}
    graph = {m: set() for m in modules}
    for m in modules:
        for node in ast.walk(ast.parse((pkg / f"{m}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    target = node.module.split(".")[0]
                    graph[m].add(target)
                else:
                    graph[m].update(a.name for a in node.names)
    graph = {m: {t for t in ts if t in modules} for m, ts in graph.items()}
    assert "tree" in graph["newick"] or "newick" in graph["tree"]  # the edge the check is about
    state = {}

    def visit(m, path):
        if state.get(m) == 1:
            raise AssertionError("import loop: " + " -> ".join(path + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for t in sorted(graph[m]):
            visit(t, path + [m])
        state[m] = 2

    for m in sorted(modules):
        visit(m, [])
