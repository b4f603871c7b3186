"""Exact tests on genotype matrices checked against brute-force definitions."""

from itertools import permutations, product

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.ml.tumour import phylogeny as ph


def _rooted_trees(m):
    """Every rooted tree on mutation nodes 1..m below a root 0, as parent vectors."""
    for parents in product(range(m + 1), repeat=m):
        par = (0,) + parents
        ok = True
        for v in range(1, m + 1):
            seen, u = set(), v
            while u != 0:
                if u in seen or par[u] == u:
                    ok = False
                    break
                seen.add(u)
                u = par[u]
            if not ok:
                break
        if ok:
            yield par


def _brute_perfect_phylogeny(a, trees):
    """Some mutation tree explains every cell: each row is the mutation set of a root path."""
    m = a.shape[1]
    rows = {tuple(r) for r in a}
    for par in trees:
        paths = {tuple([0] * m)}
        for v in range(1, m + 1):
            s, u = [0] * m, v
            while u != 0:
                s[u - 1] = 1
                u = par[u]
            paths.add(tuple(s))
        if rows <= paths:
            return True
    return False


def _brute_linear(a):
    """Some ordering of the mutations makes every cell's mutation set a prefix."""
    m = a.shape[1]
    rows = {tuple(r) for r in a}
    for order in permutations(range(m)):
        prefixes = set()
        for k in range(m + 1):
            s = [0] * m
            for j in order[:k]:
                s[j] = 1
            prefixes.add(tuple(s))
        if rows <= prefixes:
            return True
    return False


@pytest.mark.parametrize("n,m", [(3, 3), (4, 3), (3, 4)])
def test_three_gametes_and_linear_tests_match_brute_force_on_all_small_matrices(n, m):
    trees = list(_rooted_trees(m))
    assert len(trees) == (m + 1) ** (m - 1)  # Cayley: rooted trees on m+1 labelled nodes
    n_pp = n_lin = 0
    all_mats = np.array(list(product((0, 1), repeat=n * m)), dtype=np.int8).reshape(-1, n, m)
    batch = ph.batch_is_perfect_phylogeny(all_mats)
    for a, b in zip(all_mats, batch):
        pp = _brute_perfect_phylogeny(a, trees)
        lin = _brute_linear(a)
        assert ph.is_perfect_phylogeny(a) == pp == b
        assert ph.is_linear(a) == lin
        if pp:
            assert ph.is_branching(a) == (not lin)
        n_pp += pp
        n_lin += lin
    # both classes are well represented, so the comparison is not vacuous
    assert 0 < n_lin < n_pp < len(all_mats)


def test_branching_is_undefined_without_perfect_phylogeny():
    a = np.array([[1, 1], [1, 0], [0, 1]])
    assert not ph.is_perfect_phylogeny(a)
    assert ph.conflict_pairs(a)[0, 1]
    with pytest.raises(InputError):
        ph.is_branching(a)
    with pytest.raises(InputError):
        ph.is_perfect_phylogeny(np.array([[0, 2]]))
    with pytest.raises(InputError, match="too large"):
        ph.min_flip_correction(np.zeros((20, 20), dtype=int), max_flips=4)


def test_min_flip_correction_matches_exhaustive_search_over_all_matrices():
    rng = np.random.default_rng(5)
    n, m = 3, 3
    all_mats = np.array(list(product((0, 1), repeat=n * m)), dtype=np.int8).reshape(-1, n, m)
    feasible = all_mats[ph.batch_is_perfect_phylogeny(all_mats)]
    for _ in range(40):
        a = rng.integers(0, 2, size=(n, m)).astype(np.int8)
        corrected, k = ph.min_flip_correction(a, max_flips=4)
        dist = np.abs(feasible - a).sum(axis=(1, 2))
        assert k == dist.min()
        assert ph.is_perfect_phylogeny(corrected)
        assert np.abs(corrected - a).sum() == k


def test_min_flip_correction_breaks_ties_by_likelihood():
    # one conflict, fixable by one false-negative (0 -> 1) or one false-positive (1 -> 0)
    # correction;
    # with a high false-negative rate, filling in a 0 is the likelier explanation
    a = np.array([[1, 1], [1, 0], [0, 1]])
    fixed, k = ph.min_flip_correction(a, fp_rate=0.001, fn_rate=0.3)
    assert k == 1
    assert fixed.sum() == a.sum() + 1
    fixed, k = ph.min_flip_correction(a, fp_rate=0.3, fn_rate=0.001)
    assert k == 1 and fixed.sum() == a.sum() - 1
