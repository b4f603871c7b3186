"""MAP/ML optimisation, the Laplus closed forms, importance sampling and the variational
estimators on 3-taxon problems whose exact marginal likelihood is known by quadrature.

The references here are computed independently of the code under test: the log posterior
is written out from the JC69 transition probabilities (tests/marglik/exact.py), optima are
found by brute-force grid refinement, curvatures by central differences of that function,
and each Laplus density is found by solving its mode and curvature conditions numerically
and normalised by quadrature.
"""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize

from phylo.marglik import optimize as O
from phylo.marglik.estimators import REGISTRY, names, run

from .exact import EXAMPLE, _p, example_posterior, site_patterns

RATE = 10.0
# three sequences far enough apart that no branch of the MAP is at zero
DIVERGENT = [
    "ACTTACGTAAATCCGTACGTGAGCAT",
    "ACGAACCTAAGTCCGAACGTTCGCTT",
    "ACTTACGTAGGTCAGTACCTTAGGAT",
]


def log_lik(seqs, T):
    """Independent JC69 log-likelihood of the star tree for each row of T (n, 3)."""
    T = np.atleast_2d(T)
    same, diff = _p(T)  # (n, 3) each
    total = np.zeros(T.shape[0])
    np.seterr(divide="ignore")
    for (a, b, c), n in site_patterns(seqs).items():
        s = np.zeros(T.shape[0])
        for r in range(4):
            term = 0.25
            for k, x in enumerate((a, b, c)):
                term = term * np.where(r == x, same[:, k], diff[:, k])
            s = s + term
        total += n * np.log(s)
    return total


def log_post(seqs, T):
    T = np.atleast_2d(T)
    return log_lik(seqs, T) + 3 * math.log(RATE) - RATE * T.sum(axis=1)


def brute_force_max(f, lo=0.0, hi=0.6, points=41, rounds=8):
    """Maximise f over [lo, hi]^3 by repeated grid refinement."""
    centre = np.full(3, 0.5 * (lo + hi))
    half = 0.5 * (hi - lo)
    for _ in range(rounds):
        axes = [np.linspace(max(lo, c - half), c + half, points) for c in centre]
        G = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        v = f(G)
        centre = G[np.argmax(v)]
        half *= 0.15
    return centre, float(f(centre[None, :])[0])


def curvature(f, t, h=1e-3):
    """Central (one-sided, inwards, at zero) second differences of f along each axis."""
    out = np.empty(3)
    for i in range(3):
        e = np.zeros(3)
        e[i] = h * t[i]
        if t[i] > 1e-6:
            out[i] = (f(t + e) - 2 * f(t) + f(t - e)) / e[i] ** 2
        else:  # one-sided, second order: (2 f0 - 5 f1 + 4 f2 - f3) / h^2
            e[i] = 1e-4
            out[i] = (2 * f(t) - 5 * f(t + e) + 4 * f(t + 2 * e) - f(t + 3 * e)) / e[i] ** 2
    return out


def posterior_of(seqs):
    post, exact = example_posterior(seqs, RATE)
    return post, exact


@pytest.fixture(params=["example", "divergent"])
def problem(request):
    seqs = EXAMPLE if request.param == "example" else DIVERGENT
    post, exact = posterior_of(seqs)
    return seqs, post, exact


# ------------------------------------------------------------------ optimisation
def test_map_is_the_brute_force_optimum(problem):
    seqs, post, _ = problem
    opt = O.maximise(post)
    t_bf, v_bf = brute_force_max(lambda T: log_post(seqs, T))
    assert np.allclose(opt.t, t_bf, atol=2e-4)
    assert opt.value >= v_bf - 1e-7
    assert opt.value == pytest.approx(float(log_post(seqs, opt.t)[0]), abs=1e-9)
    interior = opt.t > 1e-6
    assert np.all(np.abs(opt.gradient[interior]) < 1e-3)
    assert np.all(opt.gradient[~interior] < 0)  # at zero only if it slopes down


def test_ml_is_the_brute_force_optimum(problem):
    seqs, post, _ = problem
    opt = O.maximise(post, with_prior=False)
    t_bf, v_bf = brute_force_max(lambda T: log_lik(seqs, T))
    assert np.allclose(opt.t, t_bf, atol=2e-4)
    assert opt.value == pytest.approx(v_bf, abs=1e-6)
    assert run("ml", post, np.random.default_rng(0)).log_ml == pytest.approx(opt.value)


def test_example_map_has_a_branch_at_zero():
    post, _ = posterior_of(EXAMPLE)
    assert O.map_estimate(post).boundary.sum() == 1
    post, _ = posterior_of(DIVERGENT)
    assert O.map_estimate(post).boundary.sum() == 0


def test_hessian_matches_finite_differences(problem):
    seqs, post, _ = problem
    opt = O.map_estimate(post)
    c = curvature(lambda t: float(log_post(seqs, t)[0]), opt.t)
    assert np.allclose(opt.curvature, c, rtol=2e-3)
    H = opt.hessian  # full, from the analytic gradient
    assert np.allclose(H, H.T)
    assert np.allclose(np.diag(H), c, rtol=2e-3)
    e = 1e-4
    for i in range(3):  # an off-diagonal entry
        j = (i + 1) % 3
        if opt.t[i] > 10 * e and opt.t[j] > 10 * e:
            f = lambda di, dj: float(
                log_post(seqs, opt.t + di * np.eye(3)[i] * e + dj * np.eye(3)[j] * e)[0]
            )
            hij = (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * e * e)
            assert H[i, j] == pytest.approx(hij, rel=2e-3, abs=1e-3)


def test_map_is_cached_and_point_estimate():
    post, _ = posterior_of(DIVERGENT)
    a = O.map_estimate(post)
    n = post.n_evaluations
    assert O.map_estimate(post) is a and post.n_evaluations == n
    assert run("map", post, np.random.default_rng(0)).log_ml == a.value


def test_distance_start_is_exact_on_tree_distances():
    post, _ = posterior_of(DIVERGENT)
    d = O._pairwise_jc(post)
    t = O.distance_start(post, floor=0.0)
    assert d[0, 1] == pytest.approx(t[0] + t[1])
    assert d[0, 2] == pytest.approx(t[0] + t[2])
    assert d[1, 2] == pytest.approx(t[1] + t[2])


# ------------------------------------------------------------------ Laplus closed forms
def _log_norm(logq_unnorm, m, scale):
    """log of int_0^inf exp(logq_unnorm(t) - logq_unnorm(m)) dt by quadrature."""
    f = lambda t: math.exp(logq_unnorm(t) - logq_unnorm(m))
    pts = [m] if m > 0 else None
    val, _ = integrate.quad(f, 0, 50 * scale + m, points=pts, limit=400, epsabs=0, epsrel=1e-11)
    tail, _ = integrate.quad(f, 50 * scale + m, np.inf, limit=200)
    return math.log(val + tail)


def _matched(logq, m, c, guess):
    """Parameters (2) of the unnormalised log density ``logq(t, p)`` whose derivative is 0
    and second derivative c at t = m."""
    h = 1e-4 * m

    def eqs(p):
        d1 = (logq(m + h, p) - logq(m - h, p)) / (2 * h)
        d2 = (logq(m + h, p) - 2 * logq(m, p) + logq(m - h, p)) / h**2
        return [d1 * m, d2 / c - 1.0]

    with warnings.catch_warnings():  # slow progress near the root is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        sol = optimize.fsolve(eqs, guess, xtol=1e-12)
    assert np.allclose(eqs(sol), 0, atol=1e-6)
    return sol


def reference_laplus(seqs, family):
    """log p(D, t^) + sum_i log int exp(log q_i(t) - log q_i(t^_i)) dt, with q_i matched to
    the mode and curvature; at a zero mode, a density of shape 1 normalised like the
    one-sided expansion exp(g t + c t^2 / 2) (or like e^{g t} where c >= 0)."""
    f = lambda T: log_post(seqs, T)
    m, value = brute_force_max(f)
    post, _ = posterior_of(seqs)
    m = O.map_estimate(post).t  # the same optimum, to full precision
    value = float(f(m[None, :])[0])
    c = curvature(lambda t: float(f(t)[0]), m)
    total = value
    for i in range(3):
        if m[i] <= 1e-6:
            e = np.zeros(3)
            e[i] = 1e-5
            slope = (-3 * value + 4 * float(f(m + e)[0]) - float(f(m + 2 * e)[0])) / 2e-5
            if c[i] < 0:  # the one-sided quadratic expansion
                val, _ = integrate.quad(
                    lambda t: math.exp(slope * t + 0.5 * c[i] * t * t), 0, np.inf, epsrel=1e-11
                )
                total += math.log(val)
            else:  # int_0^inf e^{slope t} dt
                total += -math.log(abs(slope))
            continue
        sd = math.sqrt(-1 / c[i])
        if family == "gamma":
            logq = lambda t, p: (p[0] - 1) * math.log(t) - p[1] * t
            a, b = _matched(logq, m[i], c[i], [2.0, 1.0 / m[i]])
            total += _log_norm(lambda t: logq(t, (a, b)) if t > 0 else -np.inf, m[i], sd)
        elif family == "lognormal":
            logq = lambda t, p: -math.log(t) - (math.log(t) - p[0]) ** 2 / (2 * p[1] ** 2)
            mu, s = _matched(logq, m[i], c[i], [math.log(m[i]), sd / m[i]])
            total += _log_norm(lambda t: logq(t, (mu, s)) if t > 0 else -np.inf, m[i], sd)
        else:
            logq = lambda t, p: (p[0] - 1) * math.log(t) - (p[0] + p[1]) * math.log1p(t)
            a, b = _matched(logq, m[i], c[i], [2.0, 1.0 / m[i]])
            total += _log_norm(lambda t: logq(t, (a, b)) if t > 0 else -np.inf, m[i], sd)
    return total


@pytest.mark.parametrize("name,family", [("gl", "gamma"), ("ll", "lognormal"), ("bl", "betaprime")])
def test_laplus_closed_forms(problem, name, family):
    seqs, post, exact = problem
    est = run(name, post, np.random.default_rng(0))
    ref = reference_laplus(seqs, family)
    assert est.log_ml == pytest.approx(ref, abs=2e-4)
    assert abs(est.log_ml - exact) < 1.0  # and they are approximations of it


@pytest.mark.parametrize(
    "g,c", [(-95.0, -8e5), (-1141.0, -2.7e4), (0.0, -4e5), (-30.0, -1.0), (-5.0, 3.0)]
)
def test_boundary_rate_is_the_inverse_integral(g, c):
    from phylo.marglik.estimators.laplace import boundary_rate

    if c < 0:
        val, _ = integrate.quad(
            lambda t: math.exp(g * t + 0.5 * c * t * t), 0, np.inf, epsrel=1e-12, epsabs=0
        )
    else:
        val = 1 / abs(g)
    assert float(boundary_rate(np.array([g]), np.array([c]))[0]) == pytest.approx(1 / val, rel=1e-8)


# ------------------------------------------------------------------ sampling estimators
@pytest.mark.parametrize("name", ["glis", "vbis"])
def test_importance_sampling_matches_exact(problem, name):
    _, post, exact = problem
    est = run(name, post, np.random.default_rng(3), samples=20000)
    assert 0 < est.se < 0.05
    assert abs(est.log_ml - exact) < 4 * est.se + 1e-3
    assert est.n_evaluations >= 20000


def test_elbo_is_a_lower_bound(problem):
    _, post, exact = problem
    est = run("elbo", post, np.random.default_rng(4), elbo_samples=20000)
    assert est.log_ml < exact + 4 * est.se
    assert est.log_ml > exact - 2.0


@pytest.mark.parametrize("name", ["glis", "vbis", "elbo"])
def test_same_seed_same_numbers(name):
    a = run(name, posterior_of(EXAMPLE)[0], np.random.default_rng(11))
    b = run(name, posterior_of(EXAMPLE)[0], np.random.default_rng(11))
    c = run(name, posterior_of(EXAMPLE)[0], np.random.default_rng(12))
    assert (a.log_ml, a.se) == (b.log_ml, b.se)
    assert a.log_ml != c.log_ml


def test_registered():
    have = set(names())
    for name in ("gl", "ll", "bl", "glis", "elbo", "vbis"):
        assert name in have and REGISTRY[name].family == "Laplace and variational"
    for name in ("map", "ml"):
        assert REGISTRY[name].family == "point estimates"
    assert not REGISTRY["elbo"].consistent and REGISTRY["glis"].consistent
    assert not REGISTRY["gl"].consistent and REGISTRY["vbis"].consistent


@pytest.mark.parametrize("family", ["gamma", "betaprime"])
def test_profile_fit_recovers_a_known_shape(family):
    """The mode-fixed least-squares fit used for degenerate branches finds the parameter of a
    profile that is exactly of its family."""
    from phylo.marglik.estimators import laplace as L

    mode = 5e-5
    x = L._grid(mode)
    if family == "gamma":
        lp = lambda a, xx: L.gamma_logpdf(xx, a, (a - 1.0) / mode)
        true, lo, hi = 7.5, 1.0 + 1e-9, 100.0
    else:
        lp = lambda b, xx: L.betaprime_logpdf(xx, mode * (b + 1.0) + 1.0, b)
        true, lo, hi = 12.0, 2.0, 100.0
    y = lp(true, x) - lp(true, np.array([mode]))
    assert L._fit_mode_fixed(x, y, mode, lp, lo, hi) == pytest.approx(true, rel=1e-4)


def test_boundary_rules():
    from phylo.errors import InputError
    from phylo.marglik.estimators.laplace import boundary_rate

    g, c = np.array([-95.0, -3.0]), np.array([-8e5, 2.0])
    slope = boundary_rate(g, c, "slope")
    assert np.allclose(slope, [95.0, 3.0])
    expansion = boundary_rate(g, c)
    # the expansion's normaliser: int_0^inf exp(g t + c t^2 / 2) dt, by quadrature
    val, _ = integrate.quad(lambda t: np.exp(g[0] * t + c[0] * t * t / 2), 0, np.inf)
    assert expansion[0] == pytest.approx(1.0 / val, rel=1e-8)
    assert expansion[1] == pytest.approx(3.0)  # no negative curvature: the slope
    with pytest.raises(InputError):
        boundary_rate(g, c, "other")
