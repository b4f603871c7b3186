"""Exact log marginal likelihoods of 3-taxon JC69 problems by numerical quadrature.

The likelihood here is written out independently of :mod:`phylo.likelihood`: for the star
tree of three taxa, a site with states (a, b, c) has

    L = sum_r 1/4 * P(t1)[r, a] * P(t2)[r, b] * P(t3)[r, c],
    P(t)[i, j] = 1/4 + 3/4 exp(-4t/3)  if i == j,  else 1/4 - 1/4 exp(-4t/3).

The marginal likelihood  int L(t) prod_k p(t_k) dt  under i.i.d. priors is integrated over
s = log t with Gauss-Legendre nodes on a box wide enough to hold all the mass, as a tensor
product of three 1-D rules.  Two resolutions are compared by the tests to show the rule has
converged.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

STATES = "ACGT"


def site_patterns(seqs: list[str]) -> dict[tuple[int, int, int], int]:
    counts: dict[tuple[int, int, int], int] = {}
    for col in zip(*seqs):
        key = tuple(STATES.index(c) for c in col)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _p(t: np.ndarray):
    e = np.exp(-4.0 * t / 3.0)
    return 0.25 + 0.75 * e, 0.25 - 0.25 * e  # same state, different state


def _log_integrand(seqs: list[str], log_prior, beta: float, lo: float, hi: float, nodes: int):
    """Nodes ``t`` of the Gauss-Legendre rule on log t in [lo, hi] and, on the
    ``nodes^3`` grid, log of (quadrature weights x L(t)^beta x prior x Jacobian t)."""
    if len(seqs) != 3:
        raise ValueError("three sequences")
    x, w = np.polynomial.legendre.leggauss(nodes)
    s = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    logw = np.log(0.5 * (hi - lo) * w)
    t = np.exp(s)
    same, diff = _p(t)
    P = np.empty((nodes, 4, 4))
    P[:] = diff[:, None, None]
    for i in range(4):
        P[:, i, i] = same
    # log weight of each node: quadrature weight + log prior + Jacobian (t = e^s)
    lw = logw + log_prior(t) + s
    total = np.zeros((nodes, nodes, nodes))
    for (a, b, c), n in site_patterns(seqs).items():
        lik = 0.25 * np.einsum("ir,jr,kr->ijk", P[:, :, a], P[:, :, b], P[:, :, c])
        total += n * np.log(lik)
    return t, beta * total + lw[:, None, None] + lw[None, :, None] + lw[None, None, :]


def exact_log_ml(
    seqs: list[str], log_prior, lo: float = -14.0, hi: float = 2.5, nodes: int = 160
) -> float:
    """log p(D) for three JC69 sequences and i.i.d. branch-length prior ``log_prior(t)``
    (vectorised), integrating over log t in [lo, hi] with ``nodes`` Gauss-Legendre points
    per branch."""
    _, total = _log_integrand(seqs, log_prior, 1.0, lo, hi, nodes)
    return float(logsumexp(total))


def exponential_log_prior(rate: float):
    return lambda t: np.log(rate) - rate * t


EXAMPLE = ["ACGTACGTAAGTCCGTACGTTA", "ACGTACCTAAGTCCGAACGTTA", "ACTTACGTAGGTCCGTACCTTA"]

EXAMPLE_NEWICK = "(A,B,C);"
EXAMPLE_TAXA = ("A", "B", "C")


def example_posterior(seqs=None, rate: float = 10.0):
    """The :class:`~phylo.marglik.posterior.Posterior` of a 3-taxon JC69 problem, and its
    exact log marginal likelihood."""
    from phylo.likelihood import parse_alignment
    from phylo.marglik.posterior import ExponentialPrior, Posterior
    from phylo.trees import parse_newick

    seqs = EXAMPLE if seqs is None else seqs
    aln = parse_alignment("\n".join(f">{n}\n{s}" for n, s in zip(EXAMPLE_TAXA, seqs)))
    post = Posterior(aln, parse_newick(EXAMPLE_NEWICK), prior=ExponentialPrior(rate))
    return post, exact_log_ml(seqs, exponential_log_prior(rate))


def exact_posterior_moments(
    seqs: list[str],
    log_prior,
    beta: float = 1.0,
    lo: float = -14.0,
    hi: float = 2.5,
    nodes: int = 120,
):
    """E[t_k] and E[t_k^2] (k = branch of taxon k) under the power posterior
    L(t)^beta prod p(t_k), by the same Gauss-Legendre rule as :func:`exact_log_ml`."""
    t, total = _log_integrand(seqs, log_prior, beta, lo, hi, nodes)
    prob = np.exp(total - logsumexp(total))
    marg = [prob.sum(axis=(1, 2)), prob.sum(axis=(0, 2)), prob.sum(axis=(0, 1))]
    mean = np.array([np.dot(m, t) for m in marg])
    second = np.array([np.dot(m, t * t) for m in marg])
    return mean, second


# -- any small tree: Gauss-Jacobi quadrature, exact for JC69 and exponential priors ----------
#
# Under JC69 a branch of length t enters the likelihood only through u = exp(-4t/3):
#     P(t)[i, j] = (1 - u) / 4 + u [i == j],
# linear in u, and every branch appears once in each term of a site's sum over the internal
# states, so the likelihood of S sites is a polynomial of degree at most S in each u_b.  An
# Exponential(rate) length gives u the density c u^(c-1) on (0, 1], c = 3 rate / 4.  So
#     p(D | tau) = c^B  int_[0,1]^B  L(u)  prod_b u_b^(c-1) du,
# and a tensor-product Gauss-Jacobi rule with weight u^(c-1) and m >= (S+1)/2 nodes per
# branch integrates it exactly (up to rounding): a rule of m nodes is exact for degree 2m-1.


def jc_tree_log_ml(seqs: list[str], parent, rate: float = 10.0, nodes: int | None = None):
    """Exact log p(D | tau) for JC69 sequences (A, C, G, T only) on the unrooted topology of
    ``parent`` (a parent array: leaves ``0..n-1`` in the order of ``seqs``, the root last
    with three children), with i.i.d. Exponential(``rate``) branch lengths.

    The likelihood is pruned on the grid of ``nodes`` (default the fewest exact,
    ``ceil((S+1)/2)``) Gauss-Jacobi nodes per branch, one array axis per branch, and summed
    with the rule's weights."""
    from scipy.special import roots_sh_jacobi

    parent = np.asarray(parent, dtype=np.int64)
    n = len(seqs)
    n_sites = len(seqs[0])
    B = parent.shape[0] - 1
    m = nodes if nodes is not None else (n_sites + 2) // 2
    c = 0.75 * rate
    # nodes and weights for int_0^1 f(u) u^(c-1) du
    u, w = roots_sh_jacobi(m, c, c)
    children = {v: [] for v in range(n, B + 1)}
    for v in range(B):
        children[int(parent[v])].append(v)

    def axis(values, b):
        shape = [1] * B
        shape[b] = m
        return np.asarray(values).reshape(shape)

    def partial(v, column):
        """(4 states, grid...) partial likelihood below node v."""
        if v < n:
            out = np.zeros((4,) + (1,) * B)
            out[STATES.index(column[v])] = 1.0
            return out
        prod = None
        for ch in children[v]:
            below = partial(ch, column)
            ub = axis(u, ch)[None]
            msg = (1.0 - ub) / 4.0 * below.sum(axis=0, keepdims=True) + ub * below
            prod = msg if prod is None else prod * msg
        return prod

    patterns: dict[str, int] = {}
    for col in zip(*seqs):
        key = "".join(col)
        patterns[key] = patterns.get(key, 0) + 1
    # the likelihood itself (no logs: S sites of a few taxa stay far above underflow), scaled
    # by exp(shift) after each pattern to keep it near 1
    total = np.ones((m,) * B)
    shift = 0.0
    root = B
    for column, count in patterns.items():
        lik = 0.25 * partial(root, column).sum(axis=0)
        total = total * lik**count
        top = total.max()
        total /= top
        shift += np.log(top)
    for b in range(B):
        total = total * axis(w, b)
    return float(np.log(total.sum()) + shift + B * np.log(c))


def unrooted_topologies(names):
    """Every unrooted binary topology of ``names`` as a Newick string (by inserting taxa one
    at a time into every edge of the trees of the previous ones)."""
    trees = [(names[0], names[1], names[2])]  # a star of three, as nested tuples

    def edges(t):
        # every subtree position where a new leaf can be attached
        yield ()
        if isinstance(t, tuple):
            for i, sub in enumerate(t):
                for path in edges(sub):
                    yield (i,) + path

    def attach(t, path, leaf):
        if not path:
            return (t, leaf)
        i = path[0]
        return tuple(attach(s, path[1:], leaf) if j == i else s for j, s in enumerate(t))

    for leaf in names[3:]:
        new = []
        for t in trees:
            for path in edges(t):
                if path == ():
                    continue  # the root of the star is not an edge
                new.append(attach(t, path, leaf))
        trees = new

    def text(t):
        return t if isinstance(t, str) else "(" + ",".join(text(s) for s in t) + ")"

    return [text(t) + ";" for t in trees]


# -- one model parameter integrated too: K80's kappa, or the Gamma shape of JC69+G ----------
#
# Written out here, independently of phylo.likelihood: K80 (Kimura 1980) with kappa the
# transition/transversion rate ratio and one expected substitution per unit of branch
# length, c = 1 / (kappa + 2):
#     P_same(t)         = 1/4 + 1/4 e^{-4ct} + 1/2 e^{-2(kappa+1)ct}
#     P_transition(t)   = 1/4 + 1/4 e^{-4ct} - 1/2 e^{-2(kappa+1)ct}
#     P_transversion(t) = 1/4 - 1/4 e^{-4ct}        (each of the two)
# and JC69 with K equally probable discrete Gamma(alpha, alpha) rates, each the mean of its
# category, from scipy.stats (Yang 1994).  The parameter is integrated over its log with a
# Gauss-Legendre rule, and for each of its nodes the branch lengths as in _log_integrand.

TRANSITIONS = {(0, 2), (2, 0), (1, 3), (3, 1)}  # A-G, C-T


def k80_matrices(t: np.ndarray, kappa: float) -> np.ndarray:
    c = 1.0 / (kappa + 2.0)
    e1 = np.exp(-4.0 * c * t)
    e2 = np.exp(-2.0 * (kappa + 1.0) * c * t)
    P = np.empty(t.shape + (4, 4))
    for i in range(4):
        for j in range(4):
            if i == j:
                P[..., i, j] = 0.25 + 0.25 * e1 + 0.5 * e2
            elif (i, j) in TRANSITIONS:
                P[..., i, j] = 0.25 + 0.25 * e1 - 0.5 * e2
            else:
                P[..., i, j] = 0.25 - 0.25 * e1
    return P


def jc_matrices(t: np.ndarray) -> np.ndarray:
    same, diff = _p(t)
    P = np.empty(t.shape + (4, 4))
    P[:] = diff[..., None, None]
    for i in range(4):
        P[..., i, i] = same
    return P


def gamma_means(alpha: float, k: int) -> np.ndarray:
    """Category means of Gamma(alpha, rate alpha) cut at its k-quantiles."""
    from scipy import stats

    d = stats.gamma(a=alpha, scale=1.0 / alpha)
    edges = d.ppf(np.arange(k + 1) / k)
    upper = stats.gamma(a=alpha + 1.0, scale=1.0 / alpha)  # x f(x) / E[x] for the means
    return k * np.diff(upper.cdf(edges))


def _log_z_given(seqs, log_prior, matrices, lo, hi, nodes):
    """log int L(t) prod p(t_k) dt for a model given as the list of (weight, P(t)) pairs
    of its rate categories (``matrices(t)`` -> that list), three taxa."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    s = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    t = np.exp(s)
    lw = np.log(0.5 * (hi - lo) * w) + log_prior(t) + s
    cats = matrices(t)
    total = np.zeros((nodes, nodes, nodes))
    for (a, b, c), n in site_patterns(seqs).items():
        lik = 0.0
        for weight, P in cats:
            lik = lik + weight * 0.25 * np.einsum(
                "ir,jr,kr->ijk", P[:, :, a], P[:, :, b], P[:, :, c]
            )
        total += n * np.log(lik)
    total += lw[:, None, None] + lw[None, :, None] + lw[None, None, :]
    return float(logsumexp(total))


def exact_log_ml_with_parameter(
    seqs: list[str],
    model: str,
    log_prior,
    log_param_prior,
    box: tuple[float, float],
    nodes: int = 60,
    param_nodes: int = 48,
    lo: float = -14.0,
    hi: float = 2.5,
) -> float:
    """log p(D) = log int p(theta) int L(t, theta) prod p(t_k) dt dtheta for three sequences,
    ``model`` ``"K80"`` (theta = kappa) or ``"JC69+G4"`` (theta = the Gamma shape), with
    ``theta = e^u`` integrated over u in ``box`` by ``param_nodes`` Gauss-Legendre points
    (``log_param_prior(theta)`` vectorised)."""
    x, w = np.polynomial.legendre.leggauss(param_nodes)
    u = 0.5 * (box[1] - box[0]) * x + 0.5 * (box[1] + box[0])
    theta = np.exp(u)
    terms = []
    for th in theta:
        if model == "K80":
            mats = lambda t, th=th: [(1.0, k80_matrices(t, th))]  # noqa: E731
        elif model == "JC69+G4":
            rates = gamma_means(th, 4)
            mats = lambda t, r=rates: [(0.25, jc_matrices(r_k * t)) for r_k in r]  # noqa: E731
        else:
            raise ValueError(model)
        terms.append(_log_z_given(seqs, log_prior, mats, lo, hi, nodes))
    logw = np.log(0.5 * (box[1] - box[0]) * w) + log_param_prior(theta) + u
    return float(logsumexp(np.array(terms) + logw))


#: 48 sites simulated with phylo.likelihood.simulate_alignment (numpy seed 2026) on the star
#: tree of three taxa with branch lengths 0.1, 0.2, 0.3: under K80 (kappa 4, Gamma shape 0.5)
KAPPA_EXAMPLE = [
    "CCAGCCATTGCGGTTCGCCGACGAGGGCCCCGGCATGCCAATACGCGC",
    "CCAGCCATTGCTCCTCGCCGACGGGGGCCCCAGCATGCCATGACGCAC",
    "CCAGCCATTGGCGGTCACCGACCAGGGACCCGGCATGCCACTACGCGC",
]
#: and then, from the same generator, under JC69 with Gamma shape 0.5
SHAPE_EXAMPLE = [
    "TTTCAACAAATAATGGATTGTGCTGAGGTGATTACGAAACTAAGTTGT",
    "TTTTAACAAATAATCGCTTGTGCAGAGATGATTACGAACCTAATGTGT",
    "TTTTAGGAAATAAGCGTATGTCCGGAGGTGATTGCGAACCTAAGTTGT",
]
