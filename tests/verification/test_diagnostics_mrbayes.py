"""Convergence diagnostics against MrBayes's own: its ASDSF during the run and ``sump``.

MrBayes 3.2.7 runs three short chains on ``data/example.nex`` (GTR+G, so that the ``.p``
files have many columns) with a diagnostic every 1000 generations.  Its outputs are the
reference:

* ``.mcmc``: the average standard deviation of split frequencies at every diagnostic, over
  the trees sampled so far less a relative burn-in of 25% (``mcmc.c``: samples
  ``floor(0.25 m) + 1 .. m`` of ``m = gen / samplefreq + 1``), printed with 6 decimals;
  ``asdsf_trace`` at the same samples must give the same numbers.
* ``.pstat`` from ``sump``: the PSRF and the minimum and average ESS of every column after a
  25% burn-in (7 significant digits).  The ESS is ``ess(x, "tracer")``.  MrBayes's PSRF adds to
  the within-run sum of squares of each run those of the runs before it (``utils.c``,
  ``PotentialScaleReduction``: ``sWj`` is not reset), so its within-run variance is
  ``W' = sum_j (SS_1 + ... + SS_j) / (n_j - 1) / m`` instead of ``W``.  Our PSRF is the
  textbook one; with ``R^2 = (n-1)/n + (m+1)/m B/W`` MrBayes's value is
  ``sqrt((n-1)/n + (R^2 - (n-1)/n) W / W')``, which must match to 7 digits.
* The tree length of each tree of the ``.t`` files equals the ``.p`` column ``TL``.

Skipped when ``mb`` is not installed.
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from phylo.cli.sbn import main
from phylo.tables import read_table
from phylo.trees import read_trees
from phylo.trees.diagnosis import diagnose, tree_lengths
from phylo.trees.diagnostics import asdsf_trace, burnin_trees, sampling_interval
from phylo.trees.traces import ess, psrf, read_parameters
from tests.conftest import DATA, require_program

SAMPLEFREQ = 20
DIAGNFREQ = 1000
RUNS = 3

MCMC = f"""#NEXUS
begin mrbayes;
  set autoclose=yes nowarn=yes seed=17 swapseed=18;
  execute example.nex;
  lset nst=6 rates=gamma;
  mcmcp ngen=30000 samplefreq={SAMPLEFREQ} printfreq=10000 nruns={RUNS} nchains=1
        diagnfreq={DIAGNFREQ} savebrlens=yes filename=ex;
  mcmc;
  sump relburnin=yes burninfrac=0.25;
end;
"""


@pytest.fixture(scope="module")
def mb_run(tmp_path_factory):
    exe = require_program("mb")
    folder = tmp_path_factory.mktemp("mb_diagnostics")
    shutil.copy(DATA / "example.nex", folder / "example.nex")
    (folder / "cmd.nex").write_text(MCMC)
    out = subprocess.run([exe, "cmd.nex"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]
    return folder


def runs_of(folder, ext):
    return [str(folder / f"ex.run{r}.{ext}") for r in range(1, RUNS + 1)]


def mcmc_table(folder):
    lines = [x for x in (folder / "ex.mcmc").read_text().splitlines() if x and x[0] != "["]
    head = lines[0].split("\t")
    rows = [x.split("\t") for x in lines[1:]]
    col = head.index("AvgStdDev(s)")
    return np.array([int(r[0]) for r in rows]), np.array([float(r[col]) for r in rows])


def pstat(folder):
    out = {}
    for line in (folder / "ex.pstat").read_text().splitlines()[2:]:
        f = line.split("\t")
        out[f[0]] = {"minESS": float(f[6]), "avgESS": float(f[7]), "PSRF": float(f[8])}
    return out


def test_asdsf_during_the_run_matches_mcmc_file(mb_run):
    gens, mb = mcmc_table(mb_run)
    assert gens.tolist() == list(range(DIAGNFREQ, 30001, DIAGNFREQ))
    sample = read_trees(runs_of(mb_run, "t"), burnin=0)
    trace = asdsf_trace(sample, every=DIAGNFREQ // SAMPLEFREQ, burnin=0.25)
    at = {int(m): v for m, v in zip(trace.samples, trace.cumulative)}
    ours = np.array([at[g // SAMPLEFREQ + 1] for g in gens])
    assert np.max(np.abs(ours - mb)) < 5.1e-7, np.c_[gens, mb, ours]
    # the command prints the same series in its table, with MrBayes's generations
    assert sampling_interval(runs_of(mb_run, "t")[0]) == (0, SAMPLEFREQ)


def test_psrf_and_ess_match_sump(mb_run):
    reference = pstat(mb_run)
    params = [read_parameters(p) for p in runs_of(mb_run, "p")]
    names = params[0].names
    assert {"LnL", "TL", "alpha"} <= set(names) and len(names) >= 10
    checked = 0
    for name in names:
        if name not in reference:
            continue
        runs = []
        for p in params:
            x = p.column(name)
            runs.append(x[burnin_trees(0.25, x.shape[0]) :])
        n = sum(len(x) for x in runs) / RUNS
        ss = [float(((x - x.mean()) ** 2).sum()) for x in runs]
        w = sum(s / (len(x) - 1) for s, x in zip(ss, runs)) / RUNS
        w_mb = sum(sum(ss[: j + 1]) / (len(runs[j]) - 1) for j in range(RUNS)) / RUNS
        r2 = psrf(runs) ** 2
        expected = math.sqrt((n - 1) / n + (r2 - (n - 1) / n) * w / w_mb)
        assert expected == pytest.approx(reference[name]["PSRF"], rel=2e-6), name
        e = [ess(x, "tracer") for x in runs]
        assert min(e) == pytest.approx(reference[name]["minESS"], rel=2e-6), name
        assert np.mean(e) == pytest.approx(reference[name]["avgESS"], rel=2e-6), name
        checked += 1
    # sump leaves the log likelihood and log prior out of its table
    assert set(reference) == set(names) - {"LnL", "LnPr"} and checked == len(names) - 2


def test_tree_length_from_trees_equals_the_p_files(mb_run):
    sample = read_trees(runs_of(mb_run, "t"), burnin=0, lengths=True)
    tl = tree_lengths(sample)
    for r, p in enumerate(runs_of(mb_run, "p")):
        assert np.allclose(tl[r], read_parameters(p).column("TL"), rtol=2e-5)
    d = diagnose(sample, parameters=[read_parameters(p) for p in runs_of(mb_run, "p")])
    by = {p.name: p for p in d.parameters}
    assert by["tree length"].psrf == pytest.approx(by["TL"].psrf, rel=1e-3)
    lnl = [read_parameters(p).column("LnL") for p in runs_of(mb_run, "p")]
    kept = [x[int(0.25 * x.shape[0]) :] for x in lnl]
    assert by["LnL"].psrf == pytest.approx(psrf(kept), rel=1e-12)
    assert np.allclose(by["LnL"].ess, [ess(x) for x in kept], rtol=1e-12)


def test_diagnose_command_on_mrbayes_output(mb_run, tmp_path):
    prefix = tmp_path / "diag"
    args = ["diagnose", *runs_of(mb_run, "t"), "--p", str(mb_run / "ex.run*.p"),
            "--every", str(DIAGNFREQ // SAMPLEFREQ), "--tables", str(prefix)]  # fmt: skip
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "PSRF" in r.stdout and "alpha" in r.stdout
    _, cols, rows = read_table(str(prefix) + ".asdsf.tsv")
    cum = [x for x in rows if x["kind"] == "cumulative"]
    gens, mb = mcmc_table(mb_run)
    got = {int(x["last_generation"]): float(x["asdsf"]) for x in cum}
    assert all(abs(got[g] - v) < 5.1e-7 for g, v in zip(gens, mb))
    _, cols, rows = read_table(str(prefix) + ".parameters.tsv")
    assert cols[:4] == ["parameter", "mean", "variance", "psrf"]
    assert {x["parameter"] for x in rows} >= {"tree length", "LnL", "TL"}
