"""MCC trees and their annotations against TreeAnnotator (BEAST 2.7, Debian ``beast2-mcmc``).

TreeAnnotator summarises the BEAST 2 tree log of ``tests/data/beast2`` (10 taxa, 501 trees,
10% burn-in) with ``-heights keep``, ``mean`` and ``median``; ``sbn tree --type mcc
--rooted`` does the same.  Both NEXUS files are read with dendropy, and for every clade of
the tree:

* the clade sets are equal (the same MCC topology);
* every attribute TreeAnnotator writes (``posterior``, ``height``, ``height_median``,
  ``height_95%_HPD``, ``height_range``, ``length``, ``length_median``, ``length_95%_HPD``,
  ``length_range``) is written by us with the same name and value, to 1e-12 (heights are
  differences of sums of branch lengths, computed in the same order as BEAST, so they agree
  to rounding);
* the printed branch lengths agree.

Exceptions, both rounding: the leaves' heights are rounding noise around 0 (1e-17), whose
medians and ranges may appear in one file and not the other; and TreeAnnotator gives the root
a ``length`` of 0, which has no branch.  Skipped when TreeAnnotator is not installed.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from tests.conftest import ROOT

from .annotated_trees import read_annotated

LOG = ROOT / "tests" / "data" / "beast2" / "small.trees.gz"


def treeannotator() -> str:
    for name in ("treeannotator2", "treeannotator"):
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip("TreeAnnotator (treeannotator2 or treeannotator) is not installed")


@pytest.fixture(scope="module")
def trees_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beast2")
    path = folder / "small.trees"
    with gzip.open(LOG, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def _close(a, b):
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return abs(a - b) <= 1e-12 + 1e-9 * abs(b)


@pytest.mark.parametrize("heights", ["keep", "mean", "median"])
def test_mcc_tree_equals_treeannotator(trees_file, tmp_path, heights):
    exe = treeannotator()
    theirs_path = tmp_path / f"ta_{heights}.tre"
    out = subprocess.run(
        [exe, "-burnin", "10", "-heights", heights, str(trees_file), str(theirs_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0 and theirs_path.exists(), out.stderr[-2000:]
    ours_path = tmp_path / f"ours_{heights}.tre"
    r = CliRunner().invoke(
        main,
        ["tree", str(LOG), "--type", "mcc", "--rooted", "--burnin", "0.1"]
        + ["--heights", heights, "-o", str(ours_path), "-q"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    theirs = read_annotated(theirs_path, rooted=True)
    ours = read_annotated(ours_path, rooted=True)
    assert set(ours) == set(theirs)
    n = max(len(c) for c in theirs)
    compared = 0
    for clade, (ann, length) in theirs.items():
        mine, my_length = ours[clade]
        leaf = len(clade) == 1
        root = len(clade) == n
        for name, value in ann.items():
            if root and name.startswith("length"):
                continue  # TreeAnnotator's root "length" is 0: there is no branch
            if leaf and name.startswith("height") and name != "height":
                continue  # medians and ranges of rounding noise
            assert name in mine, (sorted(clade), name)
            assert _close(mine[name], value), (sorted(clade), name, mine[name], value)
            compared += 1
        if not leaf:
            extra = set(mine) - set(ann)
            assert not extra, (sorted(clade), extra)
        if not root:
            assert abs(my_length - length) <= 1e-12, (sorted(clade), my_length, length)
    # 19 nodes with 4-9 attributes each
    assert compared > 100
