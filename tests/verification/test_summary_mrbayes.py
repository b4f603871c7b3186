"""Majority-rule consensus and split tables against MrBayes ``sumt`` (``contype=halfcompat``).

MrBayes 3.2.7 runs in a temporary folder: ``sumt`` on the example runs of ``data/``, and a
short MCMC on the DS1 alignment followed by ``sumt``.  Its outputs are the reference:

* ``.con.tre``: the consensus tree (read with dendropy): every split, its ``prob`` and
  ``length_mean`` (printed with 9 significant digits) equal our majority-rule tree's
  ``posterior`` and ``length`` annotations, read back from our NEXUS file;
* ``.parts``/``.tstat``: every split with frequency >= 0.1 in a run, its number of trees,
  probability, standard deviation, minimum and maximum across runs (7 digits);
* ``.vstat``: mean and variance of every such split's branch length (7 digits), and the
  median where the number of values is odd (MrBayes takes the upper middle value for even
  counts, TreeAnnotator, whom we follow, the mean of the two middle values).

MrBayes's HPD intervals are not compared: its scan compares intervals of ``d + 1`` values
while it reports ``d`` of them; ours are TreeAnnotator's, checked against TreeAnnotator.
Skipped when ``mb`` is not installed (DS1: also when the benchmark data is absent).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.trees import bitsets, read_trees, split_table
from tests.conftest import DATA, require_program, shared_path

from .annotated_trees import informative, read_annotated

SUMT = """#NEXUS
begin mrbayes;
  set autoclose=yes nowarn=yes;
  execute {data};
  sumt filename={stem} relburnin=yes burninfrac=0.25 contype=halfcompat;
end;
"""

DS1_MCMC = """#NEXUS
begin mrbayes;
  set autoclose=yes nowarn=yes seed=5 swapseed=6;
  execute ds1.nex;
  lset nst=1 rates=equal;
  prset statefreqpr=fixed(equal) brlenspr=unconstrained:exp(10.0);
  mcmcp ngen=20000 samplefreq=50 printfreq=10000 nruns=2 nchains=1 diagnfreq=5000
        savebrlens=yes filename=ds1;
  mcmc;
  sumt relburnin=yes burninfrac=0.25 contype=halfcompat;
end;
"""


def _mb(folder, text):
    exe = require_program("mb")
    (folder / "cmd.nex").write_text(text)
    out = subprocess.run([exe, "cmd.nex"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    require_program("mb")
    folder = tmp_path_factory.mktemp("sumt_example")
    for name in ("example.run1.t", "example.run2.t", "example.nex"):
        shutil.copy(DATA / name, folder / name)
    _mb(folder, SUMT.format(data="example.nex", stem="example"))
    return folder, "example"


@pytest.fixture(scope="module")
def ds1_run(tmp_path_factory):
    require_program("mb")
    aln = shared_path("marglik/alignments/DS1.nex")
    folder = tmp_path_factory.mktemp("sumt_ds1")
    shutil.copy(aln, folder / "ds1.nex")
    _mb(folder, DS1_MCMC)
    return folder, "ds1"


def mrbayes_tables(folder, stem):
    parts = {}
    for line in (folder / f"{stem}.parts").read_text().splitlines():
        f = line.split()
        if len(f) == 2 and f[0].isdigit():
            parts[int(f[0])] = f[1]
    tstat = {}
    for line in (folder / f"{stem}.tstat").read_text().splitlines():
        f = line.split()
        if f and f[0].isdigit():
            tstat[parts[int(f[0])]] = [float(x) for x in f[1:6]]
    vstat = {}
    for line in (folder / f"{stem}.vstat").read_text().splitlines():
        f = line.split()
        if f and f[0].startswith("length["):
            vstat[parts[int(f[0][7:-1])]] = [float(x) for x in f[1:6]]
    return parts, tstat, vstat


@pytest.fixture(params=["example", "ds1"])
def mrbayes(request):
    return request.getfixturevalue(f"{request.param}_run")


def _sample(folder, stem):
    runs = [str(folder / f"{stem}.run{r}.t") for r in (1, 2)]
    return runs, read_trees(runs, lengths=True)


def test_split_table_equals_tstat_and_vstat(mrbayes):
    folder, stem = mrbayes
    _, sample = _sample(folder, stem)
    _, tstat, vstat = mrbayes_tables(folder, stem)
    table = split_table(sample, min_freq=0.1, include_trivial=True, values=True)
    n = sample.n_taxa
    ours = {bitsets.to_string(b, n): i for i, b in enumerate(table.bits)}
    # .parts lists every split with frequency >= 0.1 in a run (terminal branches too)
    assert set(ours) == set(vstat)
    assert {k for k in ours if 1 < k.count("*") < n - 1} == set(tstat)
    lengths = table.lengths
    odd = 0
    for key, (mean, var, _lo, _hi, median) in vstat.items():
        i = ours[key]
        assert lengths.mean[i] == pytest.approx(mean, rel=1e-6, abs=1e-12)
        assert lengths.var[i] == pytest.approx(var, rel=1e-6, abs=1e-12)
        assert lengths.count[i] == round(table.counts[i].sum())
        if lengths.count[i] % 2 == 1:
            odd += 1
            assert lengths.median[i] == pytest.approx(median, rel=1e-6, abs=1e-12)
    assert odd > 0
    for key, (obs, prob, sd, lo, hi) in tstat.items():
        i = ours[key]
        assert table.counts[i].sum() == obs
        assert table.pooled[i] == pytest.approx(prob, rel=1e-6)
        assert table.sd()[i] == pytest.approx(sd, rel=1e-5, abs=1e-9)
        assert table.freq[i].min() == pytest.approx(lo, rel=1e-6)
        assert table.freq[i].max() == pytest.approx(hi, rel=1e-6)


def test_majority_consensus_equals_sumt(mrbayes, tmp_path):
    folder, stem = mrbayes
    runs, sample = _sample(folder, stem)
    out = tmp_path / "majority.tre"
    r = CliRunner().invoke(
        main, ["tree", *runs, "--type", "majority", "-o", str(out), "-q"], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    first = sample.taxa.names[0]
    theirs = read_annotated(folder / f"{stem}.con.tre", rooted=False, first=first)
    ours = read_annotated(out, rooted=False, first=first)
    n = sample.n_taxa
    assert informative(ours, n, False) == informative(theirs, n, False)
    assert len(informative(ours, n, False)) > 0
    assert set(ours) == set(theirs)
    for clade, (ann, _median_length) in theirs.items():
        mine, my_length = ours[clade]
        if 1 < len(clade) < n - 1:
            assert mine["posterior"] == pytest.approx(ann["prob"], rel=1e-7)
        else:
            assert "posterior" not in mine
        assert mine["length"] == pytest.approx(ann["length_mean"], rel=1e-8)
        # the printed length of an unrooted summary tree is the mean
        assert my_length == pytest.approx(ann["length_mean"], rel=1e-8)


def test_majority_tree_keeps_only_majority_splits(example_run):
    folder, stem = example_run
    _, sample = _sample(folder, stem)
    from phylo.trees.consensus import summary_tree

    tree = summary_tree(sample, "majority")
    post = tree.annotations["posterior"]
    inner = post[sample.n_taxa : -1]
    assert np.all(inner >= 0.5)
    # the same tree with the splits of the other types: extended has strictly more
    ext = summary_tree(sample, "extended")
    assert tree.splits() < ext.splits()
