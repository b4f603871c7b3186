"""The exact posterior over the 15 unrooted topologies of 5 taxa, by quadrature.

For each topology ``T`` the marginal likelihood

    Z_T = int p(D | T, t) prod_e p(t_e) dt      (7 branch lengths, i.i.d. Exponential prior)

is integrated over ``y = t^(1/3)`` (the cube root makes both the prior-dominated and the
data-dominated branch posteriors close to normal, Wilson & Hilferty 1931) with a product
Gauss-Hermite rule of ``nodes`` points per dimension, centred at the mode of the integrand
and rotated by the Cholesky factor of its inverse negative Hessian (a Laplace-centred
rule, Liu & Pierce 1994).  Points with some ``y <= 0`` contribute nothing.  With a uniform
prior over the 15 topologies the posterior is ``Z_T / sum_T' Z_T'`` and the evidence
``log p(D) = log mean_T Z_T``.

Nothing here uses :mod:`phylo.vi`; the likelihood is the project's
:class:`~phylo.likelihood.TreeLikelihood` (checked against PhyML and BEAGLE in
``tests/verification``).  ``tests/vi/test_exact.py`` shows the rule has converged.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from phylo.likelihood import JC69, TreeLikelihood, read_alignment, simulate_alignment
from phylo.trees import Taxa, parse_newick

from ..sbn import brute

TAXA = ("A", "B", "C", "D", "E")
#: The tree the example alignment is simulated on: two short internal branches, so that
#: the posterior spreads over several topologies.
TRUE_TREE = "((A:0.12,B:0.09):0.012,C:0.15,(D:0.1,E:0.13):0.006);"
RATE = 10.0


DATA = Path(__file__).parent / "data"


def simulate_example(n_sites: int = 200, seed: int = 20):
    """A JC69 alignment simulated on :data:`TRUE_TREE` (how ``data/five_taxa.fasta`` was
    made)."""
    tree = parse_newick(TRUE_TREE, taxa=Taxa(TAXA))
    return simulate_alignment(tree, JC69(), n_sites, np.random.default_rng(seed))


def example_alignment():
    """``data/five_taxa.fasta``: 200 sites, 75 site patterns."""
    return read_alignment(str(DATA / "five_taxa.fasta"))


def all_topologies():
    """The 15 unrooted topologies on :data:`TAXA` as Newick strings."""
    return [brute.newick(t, TAXA) + ";" for t in brute.unrooted_topologies(5)]


def _log_integrand(lik, Y):
    """log of p(D | t) p(t) |dt/dy| at rows ``Y`` (all positive), ``t = y^3``."""
    T = Y**3
    ll = lik.log_likelihood_batch(T)
    return ll + (math.log(RATE) - RATE * T + np.log(3.0 * Y * Y)).sum(axis=1)


def _mode(lik, dim):
    def f(y):
        t = y**3
        ll, g = lik.gradient(t)
        val = ll + np.sum(math.log(RATE) - RATE * t + np.log(3 * y * y))
        grad = (g - RATE) * 3 * y * y + 2.0 / y
        return -val, -grad

    y0 = np.full(dim, 0.1 ** (1 / 3))
    res = minimize(f, y0, jac=True, method="L-BFGS-B", bounds=[(1e-3, 3.0)] * dim)
    y = res.x
    h = 1e-5
    H = np.empty((dim, dim))
    for i in range(dim):
        e = np.zeros(dim)
        e[i] = h
        H[i] = -(f(y + e)[1] - f(y - e)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    return y, H


def log_marginal(alignment, newick: str, nodes: int = 7) -> float:
    """``log Z_T`` of one topology by the Laplace-centred Gauss-Hermite rule."""
    tree = parse_newick(newick, taxa=Taxa(TAXA))
    lik = TreeLikelihood(alignment, tree, JC69(), batch_threads=2)
    dim = lik.n_branches
    y_hat, H = _mode(lik, dim)
    L = np.linalg.cholesky(np.linalg.inv(-H))
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    logw = np.log(w) + 0.5 * z * z
    total = []
    for first in range(nodes):  # one slab of the grid at a time
        rest = np.array(list(itertools.product(range(nodes), repeat=dim - 1)))
        idx = np.hstack([np.full((rest.shape[0], 1), first), rest])
        Z = z[idx]
        Y = y_hat + Z @ L.T
        ok = np.all(Y > 0, axis=1)
        vals = _log_integrand(lik, Y[ok]) + logw[idx[ok]].sum(axis=1)
        total.append(logsumexp(vals))
    return float(logsumexp(total) + np.log(np.diag(L)).sum())


def exact_posterior(alignment, nodes: int = 7):
    """``(newicks, log Z_T, log p(D))`` for the 15 topologies (uniform topology prior)."""
    newicks = all_topologies()
    logz = np.array([log_marginal(alignment, nwk, nodes) for nwk in newicks])
    return newicks, logz, float(logsumexp(logz) - math.log(len(newicks)))


def stored_exact():
    """``(newicks, log Z_T)`` of ``data/five_taxa_exact.tsv`` (9 nodes per branch)."""
    newicks, values = [], []
    with open(DATA / "five_taxa_exact.tsv") as fh:
        for line in fh:
            if line.startswith("#") or line.startswith("newick"):
                continue
            nwk, v = line.split("\t")
            newicks.append(nwk)
            values.append(float(v))
    return newicks, np.array(values)


if __name__ == "__main__":  # python -m tests.vi.exact NODES: the table of log Z_T
    import sys

    nodes = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    aln = example_alignment()
    print("newick\tlog_marginal_likelihood")
    for nwk in all_topologies():
        print(f"{nwk}\t{log_marginal(aln, nwk, nodes):.10f}", flush=True)
