"""The extended (greedy) consensus against dendropy's SumTrees (``--min-clade-freq 0``).

SumTrees builds the consensus by adding splits in order of decreasing frequency when they
are compatible with those already in the tree: our ``extended`` tree.  On the example MrBayes
runs (unrooted, 500 trees of burn-in per run) and on the BEAST 2 log of ``tests/data``
(rooted, 50 trees of burn-in), both files are read with dendropy and must have the same
splits (clades), SumTrees's ``support`` must equal our ``posterior`` and its ``length_mean``
our ``length``.  Where two candidate splits have the same frequency the two programs may
break the tie differently; these samples have no such tie at a conflict.  Skipped when
dendropy is not installed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from tests.conftest import DATA, ROOT

from .annotated_trees import informative, read_annotated

pytest.importorskip("dendropy")

SUMTREES = "import sys; from dendropy.application.sumtrees import main; sys.exit(main())"


def sumtrees(args, out):
    cmd = [sys.executable, "-c", SUMTREES, *args, "-o", str(out), "-r", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and out.exists(), r.stderr[-2000:]


CASES = {
    "unrooted": (
        [str(DATA / "example.run1.t"), str(DATA / "example.run2.t")],
        ["-b", "500", "--unrooted"],
        ["--burnin", "500"],
        False,
    ),
    "rooted": (
        [str(ROOT / "tests" / "data" / "beast2" / "small.trees.gz")],
        ["-b", "50", "--rooted"],
        ["--burnin", "50", "--rooted"],
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_extended_consensus_equals_sumtrees(case, tmp_path):
    files, their_args, our_args, rooted = CASES[case]
    inputs = list(files)
    if files[0].endswith(".gz"):  # SumTrees reads plain files
        import gzip
        import shutil

        plain = tmp_path / "small.trees"
        with gzip.open(files[0], "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        inputs = [str(plain)]
    theirs_path = tmp_path / "sumtrees.tre"
    sumtrees(["-f", "0", *their_args, *inputs], theirs_path)
    ours_path = tmp_path / "ours.tre"
    r = CliRunner().invoke(
        main,
        ["tree", *files, "--type", "extended", *our_args, "-o", str(ours_path), "-q"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    first = None if rooted else "T01"
    theirs = read_annotated(theirs_path, rooted=rooted, first=first)
    ours = read_annotated(ours_path, rooted=rooted, first=first)
    n = max(len(c) for c in theirs) + (0 if rooted else 1)
    assert informative(ours, n, rooted) == informative(theirs, n, rooted)
    # fully resolved here: n - 2 (rooted) or n - 3 (unrooted) informative splits
    assert len(informative(ours, n, rooted)) == n - (2 if rooted else 3)
    for clade, (ann, _) in theirs.items():
        mine = ours[clade][0]
        if clade in informative(theirs, n, rooted):
            assert mine["posterior"] == pytest.approx(ann["support"], rel=1e-12)
        if "length" in mine:
            assert mine["length"] == pytest.approx(ann["length_mean"], rel=1e-9, abs=1e-15)
