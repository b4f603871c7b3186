"""The gradient in the model's parameters against finite differences of the likelihood, the
branch gradient of the other kernel, and identities; models swapped in place and per row."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.likelihood import (
    GTR,
    HKY,
    JC69,
    K80,
    Alignment,
    TreeLikelihood,
    random_tree,
    simulate_alignment,
)
from phylo.likelihood import _kernels as K
from phylo.likelihood.parameter_gradient import ParameterGradient

TRUTH = GTR((1, 3, 0.5, 1.2, 4, 1), (0.3, 0.2, 0.2, 0.3), alpha=0.6, categories=4, pinv=0.2)
MODELS = {
    "GTR+G4+I": GTR((1.1, 2.5, 0.6, 1.0, 3.0, 0.9), (0.28, 0.22, 0.21, 0.29), alpha=0.8, pinv=0.15),
    "GTR+G3 median": GTR(
        (0.7, 2.0, 1.6, 1.0, 2.5, 0.4), (0.1, 0.2, 0.3, 0.4), alpha=2.5, categories=3, median=True
    ),
    "HKY+I": HKY(3.0, (0.35, 0.15, 0.2, 0.3), pinv=0.3),
    "K80+G4": K80(0.6, alpha=0.4),
    # the F81 family of kernels (closed-form transition matrices), equal eigenvalues
    "JC69+G4+I": JC69(alpha=1.3, pinv=0.05),
}


def _problem(n_taxa=8, n_sites=300, seed=1, mean=0.15, ambiguous=True):
    rng = np.random.default_rng(seed)
    tree = random_tree(n_taxa, rng, mean)
    aln = simulate_alignment(tree, TRUTH, n_sites, rng)
    if ambiguous:  # gaps and ambiguity codes in a few cells
        codes = aln.codes.copy()
        cells = rng.integers(0, codes.size, size=codes.size // 20)
        codes.reshape(-1)[cells] = rng.choice([15, 5, 3, 9], size=cells.size)
        aln = Alignment(aln.taxa, codes)
    t = np.asarray(tree.branch_lengths[:-1], float) * rng.uniform(0.5, 1.5, 2 * n_taxa - 3)
    return aln, tree, t


def _free_frequencies(model, pi):
    """``model`` with frequencies ``pi`` taken as they are (not renormalised)."""
    m = replace(model)
    object.__setattr__(m, "frequencies", np.asarray(pi, dtype=np.float64))
    return m


def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2.0 * h)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_derivatives_against_finite_differences(name):
    model = MODELS[name]
    aln, tree, t = _problem()
    lik = TreeLikelihood(aln, tree, model)
    ll, dt, dm = ParameterGradient(lik)(t, model)
    assert ll == pytest.approx(lik.log_likelihood(t), abs=1e-9)
    # the branch gradient of the other kernel (pre-order partials summed over categories)
    _, g = lik.gradient(t)
    np.testing.assert_allclose(dt, g, rtol=1e-9, atol=1e-9)

    fresh = TreeLikelihood(aln, tree, model)

    def loglik(m):
        # the general kernels: the F81 ones' closed form needs frequencies summing to 1,
        # and the frequencies are differenced one at a time here
        mv, inv = fresh.model_vector(m)
        mv[-2] = 0.0
        fresh._mv, fresh._inv[:] = mv, inv
        return fresh.log_likelihood(t)

    h = 1e-6
    r = model.exchangeabilities
    for i in range(6):
        e = np.zeros(6)
        e[i] = 1.0
        fd = _central(lambda s, e=e: loglik(replace(model, exchangeabilities=r + s * e)), 0.0, h)
        assert dm.exchangeabilities[i] == pytest.approx(fd, rel=1e-5, abs=1e-4), i
    assert r @ dm.exchangeabilities == pytest.approx(0.0, abs=1e-7)  # Q is normalised
    pi = model.frequencies
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1.0
        fd = _central(lambda s, e=e: loglik(_free_frequencies(model, pi + s * e)), 0.0, h)
        assert dm.frequencies[i] == pytest.approx(fd, rel=1e-5, abs=1e-4), i
    if model.alpha is not None:
        fd = _central(lambda s: loglik(replace(model, alpha=model.alpha + s)), 0.0, h)
        assert dm.alpha == pytest.approx(fd, rel=1e-5, abs=1e-4)
    if model.pinv > 0:
        fd = _central(lambda s: loglik(replace(model, pinv=model.pinv + s)), 0.0, h)
        assert dm.pinv == pytest.approx(fd, rel=1e-5, abs=1e-4)
    else:
        assert dm.pinv is None


def test_kappa_is_the_sum_of_the_transition_exchangeabilities():
    model = MODELS["HKY+I"]
    aln, tree, t = _problem(seed=3)
    lik = TreeLikelihood(aln, tree, model)
    _, _, dm = ParameterGradient(lik)(t, model)
    fd = _central(
        lambda k: TreeLikelihood(aln, tree, HKY(k, model.frequencies, pinv=0.3)).log_likelihood(t),
        3.0,
        1e-6,
    )
    assert dm.kappa == pytest.approx(fd, rel=1e-6)


def test_scaling_the_rate_matrix_is_scaling_every_branch():
    # d/dc l(c Q) at c = 1 is <dl/dQ, Q>, and it is also sum_e t_e dl/dt_e
    model = MODELS["GTR+G4+I"]
    aln, tree, t = _problem(seed=4)
    ll, dt, dm = ParameterGradient(TreeLikelihood(aln, tree, model))(t, model)
    assert np.sum(dm.rate_matrix * model.rate_matrix()) == pytest.approx(t @ dt, rel=1e-10)
    # and the category rates scale every branch too: sum_k rho_k dl/drho_k = sum_e t_e dl/dt_e
    assert model.category_rates() @ dm.category_rates == pytest.approx(t @ dt, rel=1e-10)


def test_rescaled_partials_on_a_large_tree():
    # long branches and many taxa push partials below 2^-100: rescaling must happen, and the
    # derivatives must not notice it
    model = MODELS["GTR+G4+I"]
    aln, tree, t = _problem(n_taxa=120, n_sites=60, seed=5, mean=0.6)
    lik = TreeLikelihood(aln, tree, model)
    pg = ParameterGradient(lik)
    ll, dt, dm = pg(t, model)
    assert np.any(pg._buf[K.CM_LOGSCALE] != 0)  # some pattern was rescaled
    assert ll == pytest.approx(lik.log_likelihood(t), rel=1e-12)
    np.testing.assert_allclose(dt, lik.gradient(t)[1], rtol=1e-8, atol=1e-8)
    fd = _central(
        lambda a: TreeLikelihood(aln, tree, replace(model, alpha=a)).log_likelihood(t),
        model.alpha,
        1e-6,
    )
    assert dm.alpha == pytest.approx(fd, rel=1e-5)


def test_pattern_blocks_add_up():
    model = MODELS["GTR+G3 median"]
    aln, tree, t = _problem(seed=6)
    lik = TreeLikelihood(aln, tree, model)
    one = ParameterGradient(lik)
    ll1, dt1, dm1 = one(t, model)
    blocks = ParameterGradient(lik)
    P = lik.n_patterns
    blocks._bounds = np.array([0, P // 3, P // 2, P], dtype=np.int64)
    ll2, dt2, dm2 = blocks(t, model)
    assert ll2 == pytest.approx(ll1, abs=1e-9)
    np.testing.assert_allclose(dt2, dt1, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dm2.frequencies, dm1.frequencies, rtol=1e-10, atol=1e-9)


def test_models_swapped_in_place_and_per_row():
    aln, tree, t = _problem(seed=7)
    base = MODELS["GTR+G4+I"]
    others = [
        replace(base, alpha=0.3),
        GTR((2, 1, 1, 3, 1, 0.5), (0.4, 0.1, 0.1, 0.4), alpha=2.0, pinv=0.4),
        base,
    ]
    lik = TreeLikelihood(aln, tree, base, batch_threads=2)
    T = np.vstack([t, 1.3 * t, 0.7 * t])
    got = lik.log_likelihood_models(T, others)
    want = [TreeLikelihood(aln, tree, m).log_likelihood(row) for m, row in zip(others, T)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    lik.set_model(others[1])
    assert lik.log_likelihood(t) == pytest.approx(
        TreeLikelihood(aln, tree, others[1]).log_likelihood(t), rel=1e-12
    )
    with pytest.raises(InputError, match="rate categories"):
        lik.set_model(GTR(alpha=0.5, categories=2))


def test_many_models_at_once_are_the_models_one_by_one():
    from phylo.likelihood._kernels import pack_models
    from phylo.likelihood.models import model_rows

    rng = np.random.default_rng(8)
    B = 6
    r = rng.gamma(2.0, 1.0, (B, 6))
    r[0] = 1.0  # an F81-type row
    pi = rng.dirichlet(np.ones(4), B)
    alpha = rng.gamma(2.0, 0.5, B)
    pinv = rng.uniform(0.0, 0.5, B)
    for median in (False, True):
        rows = model_rows(r, pi, alpha, 4, median, pinv)
        mvs = pack_models(
            rows["eigenvalues"], rows["eigenvectors"], rows["inverse"], rows["rate_matrix"],
            rows["frequencies"], rows["pinv"], rows["category_rates"], rows["category_weights"],
        )  # fmt: skip
        for b in range(B):
            m = GTR(r[b], pi[b], alpha=alpha[b], median=median, pinv=pinv[b])
            lam, v, vinv = m.eigen()
            one = K.pack_model(
                lam, v, vinv, m.rate_matrix(), m.frequencies, m.pinv, m.category_rates(),
                m.category_weights(),
            )  # fmt: skip
            # eigenvectors of a repeated eigenvalue (the F81 row) are any basis of their
            # space: compare P(0.3) = V exp(0.3 Lambda) V^-1, and everything else as it is
            rest = np.r_[0:4, 36:68]
            np.testing.assert_allclose(mvs[b, rest], one[rest], rtol=1e-12, atol=1e-14)

            def p(x):
                return (x[4:20].reshape(4, 4) * np.exp(0.3 * x[:4])) @ x[20:36].reshape(4, 4)

            np.testing.assert_allclose(p(mvs[b]), p(one), rtol=1e-12, atol=1e-14)
        assert mvs[0, -2] == 1.0 and np.all(mvs[1:, -2] == 0.0)  # the F81 flag
