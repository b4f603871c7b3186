"""Split frequencies and ASDSF, checked against MrBayes's own summary of the example runs.

``data/example.tstat`` and ``data/example.parts`` were written by MrBayes ``sumt`` (25%
burn-in) on ``data/example.run{1,2}.t``; MrBayes printed ASDSF 0.006124 and maximum SDSF
0.024497 for them.
"""

from __future__ import annotations

import numpy as np
import pytest

from phylo.trees import bitsets, read_trees, split_table

from ..conftest import DATA
from .test_sample import TOPOLOGIES, write


def mrbayes_table():
    parts = {}
    for line in (DATA / "example.parts").read_text().splitlines()[2:]:
        ident, pattern = line.split()
        parts[int(ident)] = pattern
    rows = {}
    for line in (DATA / "example.tstat").read_text().splitlines():
        if not line or not line[0].isdigit():
            continue
        f = line.split()
        rows[parts[int(f[0])]] = dict(
            obs=int(f[1]), prob=float(f[2]), sd=float(f[3]), lo=float(f[4]), hi=float(f[5])
        )
    return rows


@pytest.fixture(scope="module")
def sample():
    return read_trees([str(DATA / "example.run1.t"), str(DATA / "example.run2.t")])


def test_split_frequencies_match_mrbayes(sample):
    expected = mrbayes_table()
    table = split_table(sample, min_freq=0.1)
    ours = {}
    for bits, f, pooled, sd in zip(table.bits, table.freq, table.pooled, table.sd()):
        # MrBayes draws the side with taxon 1 as '.', the other as '*', like to_string
        ours[bitsets.to_string(bits, sample.n_taxa)] = (f, pooled, sd)
    assert set(ours) == set(expected)
    for key, row in expected.items():
        f, pooled, sd = ours[key]
        assert pooled == pytest.approx(row["prob"], rel=1e-6)
        assert pooled * sample.n_trees == pytest.approx(row["obs"])
        assert f.min() == pytest.approx(row["lo"], rel=1e-6)
        assert f.max() == pytest.approx(row["hi"], rel=1e-6)
        assert sd == pytest.approx(row["sd"], rel=1e-5, abs=1e-9)


def test_asdsf_matches_mrbayes(sample):
    assert sample.asdsf() == pytest.approx(0.006124, abs=5e-7)
    assert split_table(sample, min_freq=0.1).sd().max() == pytest.approx(0.024497, abs=5e-7)


def test_split_counts_by_hand(tmp_path):
    # runs: r1 = [T0, T0, T1, T2], r2 = [T1, T1, T1, T0]
    r1 = write(tmp_path, "r1.nwk", "\n".join(TOPOLOGIES[i] for i in (0, 0, 1, 2)))
    r2 = write(tmp_path, "r2.nwk", "\n".join(TOPOLOGIES[i] for i in (1, 1, 1, 0)))
    s = read_trees([r1, r2], burnin=0)
    t = split_table(s)
    got = {
        tuple(s.taxa.names[i] for i in bitsets.to_indices(b)): tuple(f)
        for b, f in zip(t.bits, t.freq)
    }
    # splits (side without A): T0 ((A,B),(C,D),E): CD|ABE = {C,D}, AB|CDE = {C,D,E};
    # T1 ((A,C),(B,D),E): {B,D}, {B,D,E}; T2 ((A,B),(C,E),D): {C,E}, {C,D,E}
    assert got == {
        ("C", "D"): (0.5, 0.25),
        ("C", "D", "E"): (0.75, 0.25),
        ("B", "D"): (0.25, 0.75),
        ("B", "D", "E"): (0.25, 0.75),
        ("C", "E"): (0.25, 0.0),
    }
    sd = {k: np.std(v, ddof=1) for k, v in got.items()}
    expected = np.mean([v for v in sd.values()])  # all five reach 0.1 in some run
    assert s.asdsf() == pytest.approx(expected)
    assert s.asdsf(min_freq=0.3) == pytest.approx(
        np.mean([sd[k] for k in got if max(got[k]) >= 0.3])
    )


def test_single_run_has_no_asdsf(tmp_path):
    s = read_trees(write(tmp_path, "r.nwk", "\n".join(TOPOLOGIES)), burnin=0)
    assert np.isnan(s.asdsf())
