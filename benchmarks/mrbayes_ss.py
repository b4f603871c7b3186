#!/usr/bin/env python3
"""Verification: MrBayes stepping-stone (``ss``) marginal likelihoods of DS1 under a model
with integrated parameters, beside ``marglik``'s.

MrBayes 3.2.7a (Debian package ``mrbayes``) is run on DS1 (27 taxa, 1949 sites) under
GTR+G4 (or ``--model``) with MrBayes's default priors on the model's parameters (those
``marglik`` also takes by default: Dirichlet(1,...,1) exchangeabilities and base
frequencies, a Beta(1,1) prior on kappa / (1 + kappa), Exponential(1) on the Gamma shape,
Uniform(0,1) on the proportion of invariant sites) and i.i.d. Exponential(10) branch
lengths.  Two analyses:

* ``--topology 0`` (default): the topology fixed to tree 0 of the DS1 credible set
  (``prset topologypr=fixed(...)``): MrBayes's ``ss`` then estimates the fixed-topology
  marginal likelihood that ``marglik estimate`` / ``marglik compare-models`` estimate.
* ``--topology free``: the marginal likelihood over all topologies (uniform topology prior),
  which ``marglik total`` estimates.

Each run of MrBayes is an independent stepping-stone estimate (50 steps at Beta(0.4, 1)
quantiles, MrBayes's defaults; ``--ngen`` generations in all, one step's worth of burn-in,
25% of each step discarded); their mean and its standard error (sd / sqrt(runs)) are
printed, and with ``--ours TABLE`` (a ``marglik estimate`` or ``compare-models`` table, or
``VALUE,SE``) the difference in units of the combined standard error.

Usage::

    python benchmarks/mrbayes_ss.py --folder ss-ds1-fixed --run           # about an hour
    python benchmarks/mrbayes_ss.py --folder ss-ds1-fixed --ours ours.tsv  # compare
    python benchmarks/mrbayes_ss.py --folder ss-ds1-free --topology free --run

Over topologies, as measured for the README (about 5-10 minutes of MrBayes per run): a
posterior sample under the same model for ``marglik total``'s SBN, ``marglik total`` itself,
single-run stepping-stone analyses with their own seeds, then the comparison::

    python benchmarks/mrbayes_ss.py --folder mcmc --topology free --run --mcmc \
        --ngen 500000 --runs 2 --seed 7
    marglik total DS1.nex --trees mcmc/mcmc.run1.t mcmc/mcmc.run2.t --model GTR+G4 \
        --k 64 --draws 768 --seed 1 --jobs 2 -o total.tsv
    for s in 5026 6026 8026 9026; do python benchmarks/mrbayes_ss.py --folder free-$s \
        --topology free --ngen 1530000 --runs 1 --seed $s --run; done
    python benchmarks/mrbayes_ss.py --folder free-* --topology free --ours total.tsv

The command file and data are written to ``--folder`` (MrBayes cannot read the TreeBASE
NEXUS file as it is); ``--run`` runs ``mb`` there (its runs interleaved in one process);
otherwise the results already in the folder are read.

MrBayes 3.2.7 can stop near the prior end of the path with "Log likelihood nan after move
'Multiplier(Alpha)'" (seen on DS1 under GTR+G4 at step 49 of 50, the Gamma shape's draws
there down to 0.0024: presumably a shape whose category rates MrBayes cannot compute); it
then writes no estimate (its ``.ss`` file stops at the step before), and the run is repeated
with another ``--seed``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "marglik"

#: lset and prset for each model; the priors not named are MrBayes's defaults
MODELS = {
    "GTR+G4": "lset nst=6 rates=gamma ngammacat=4;",
    "GTR+G4+I": "lset nst=6 rates=invgamma ngammacat=4;",
    "GTR": "lset nst=6 rates=equal;",
    "HKY+G4": "lset nst=2 rates=gamma ngammacat=4;",
    "HKY": "lset nst=2 rates=equal;",
    "K80": "lset nst=2 rates=equal; prset statefreqpr=fixed(equal);",
    "JC69": "lset nst=1 rates=equal; prset statefreqpr=fixed(equal);",
}


def write_inputs(
    folder: Path, model: str, topology: str, ngen: int, runs: int, seed: int, mcmc: bool = False
):
    from phylo.likelihood import read_alignment
    from phylo.marglik.compare import read_topologies

    aln = read_alignment(str(SHARED / "alignments" / "DS1.nex"))
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "#NEXUS",
        "begin data;",
        f"  dimensions ntax={aln.n_taxa} nchar={aln.n_sites};",
        "  format datatype=dna missing=? gap=-;",
        "  matrix",
    ]
    lines += [f"    {name} {seq}" for name, seq in zip(aln.taxa, aln.sequences())]
    lines += ["  ;", "end;"]
    fixed = ""
    if topology != "free":
        trees, _ = read_topologies(
            str(SHARED / "credible_sets" / "JC_no_gamma_credible_set_ds1.tsv"),
            None,
            int(topology) + 1,
        )
        lines += ["begin trees;", f"  tree fixed = {trees[int(topology)].to_newick()}", "end;"]
        fixed = " topologypr=fixed(fixed)"
    (folder / "ds1.nex").write_text("\n".join(lines) + "\n")
    steps = 50
    per_step = ngen // (steps + 1)
    if mcmc:  # a tree sample of the posterior, for marglik total's SBN
        analysis = f"""mcmcp ngen={ngen} samplefreq={max(ngen // 5000, 10)} nruns={runs}
        printfreq={ngen // 10} nchains=1 diagnfreq={ngen // 10} filename=mcmc;
  mcmc;"""
    else:
        analysis = f"""mcmcp ngen={per_step * (steps + 1)} samplefreq={max(per_step // 1000, 10)}
        printfreq={per_step} nruns={runs} nchains=1 diagnfreq={per_step} filename=ss;
  ss alpha=0.4 nsteps={steps} burninss=-1;"""
    kind = "MCMC sample" if mcmc else "stepping-stone run"
    command = f"""#NEXUS
[MrBayes {kind} written by benchmarks/mrbayes_ss.py: DS1, {model}, MrBayes's
 default priors on the model's parameters, Exponential(10) branch lengths, topology
 {"fixed to tree " + topology + " of the DS1 credible set" if fixed else "free"}.]
begin mrbayes;
  set autoclose=yes nowarn=yes seed={seed} swapseed={seed + 1};
  execute ds1.nex;
  {MODELS[model]}
  prset brlenspr=unconstrained:exp(10.0){fixed};
  {analysis}
end;
"""
    (folder / "run.nex").write_text(command)


def read_results(folder: Path) -> np.ndarray:
    """Per-run log marginal likelihoods from MrBayes's screen output (``mb.log``)."""
    log = folder / "mb.log"
    if not log.exists():
        sys.exit(f"no MrBayes output in {folder} (run with --run)")
    text = log.read_text()
    # the table after "Marginal likelihood (in natural log units) estimated using
    # stepping-stone sampling": one line per run, then "Mean:"
    block = text.split("stepping-stone sampling based on")[-1]
    values = [float(v) for v in re.findall(r"^\s+\d+\s+(-?\d+\.\d+)\s*$", block, re.M)]
    if not values:
        sys.exit(f"no stepping-stone estimates found in {log}")
    return np.array(values)


def read_ours(text: str) -> tuple[float, float]:
    if "," in text and not Path(text).exists():
        v, s = text.split(",")
        return float(v), float(s)
    import pandas as pd

    df = pd.read_csv(text, sep="\t", comment="#")
    row = df.iloc[0]
    value = row["log_z"] if "log_z" in df.columns else row["log_ml"]  # marglik total's
    return float(value), float(row["se"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--folder",
        required=True,
        type=Path,
        nargs="+",
        help="where MrBayes runs (--run: one folder); read: the runs of all folders pooled",
    )
    ap.add_argument("--model", default="GTR+G4", choices=sorted(MODELS))
    ap.add_argument("--topology", default="0", help="a tree of the credible set, or 'free'")
    ap.add_argument("--ngen", type=int, default=5_100_000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--run", action="store_true", help="run MrBayes (else read its output)")
    ap.add_argument("--ours", default=None, help="marglik's table, or VALUE,SE")
    ap.add_argument(
        "--mcmc",
        action="store_true",
        help="with --run: a plain MCMC sample (mcmc.run*.t, 5000 trees a run) under the"
        " same model and priors, for marglik total's SBN, instead of stepping stones",
    )
    args = ap.parse_args(argv)
    if args.run:
        if shutil.which("mb") is None:
            sys.exit("MrBayes (mb) is not installed")
        if len(args.folder) != 1:
            sys.exit("--run takes one --folder")
        folder = args.folder[0]
        write_inputs(folder, args.model, args.topology, args.ngen, args.runs, args.seed, args.mcmc)
        with open(folder / "mb.log", "w") as out:
            code = subprocess.run(
                ["mb", "run.nex"], cwd=folder, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        if code != 0:
            lines = [ln.strip() for ln in (folder / "mb.log").read_text().splitlines()]
            why = next((ln for ln in lines if "ERROR" in ln or ln.startswith("Error")), "")
            sys.exit(f"MrBayes stopped with status {code} in {folder} ({why}); see its mb.log,"
                     " and repeat the run with another --seed")  # fmt: skip
        if args.mcmc:
            return
    values = np.concatenate([read_results(f) for f in args.folder])
    mean = float(np.log(np.mean(np.exp(values - values.max()))) + values.max())
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    print(
        f"MrBayes ss, {args.model}, topology {args.topology}: runs "
        + ", ".join(f"{v:.2f}" for v in values)
    )
    print(
        f"  mean of the runs' log estimates {np.mean(values):.3f} +- {se:.3f} (sd/sqrt(runs));"
        f" log of the mean estimate {mean:.3f}"
    )
    if args.ours:
        ours, ours_se = read_ours(args.ours)
        combined = math.hypot(se, ours_se)
        z = (ours - float(np.mean(values))) / combined
        print(
            f"  marglik {ours:.3f} +- {ours_se:.3f}: difference {ours - np.mean(values):+.3f}"
            f" = {z:+.2f} combined standard errors ({'within' if abs(z) <= 3 else 'OUTSIDE'}"
            " three)"
        )


if __name__ == "__main__":
    main()
