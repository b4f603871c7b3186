"""GECO, sparse variational dropout and group normal-Jeffreys layers (torch)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from phylo.ml.models import layers  # noqa: E402


def test_geco_finds_the_kkt_point_of_a_toy_problem():
    # minimise t^2 subject to E[1 - t + noise] <= 0: optimum t = 1 with multiplier 2
    torch.manual_seed(0)
    t = torch.zeros(1, requires_grad=True)
    geco = layers.GECO(alpha=0.9, nu=0.05, lagrange=1.0)
    opt = torch.optim.SGD([t], lr=0.02)
    for _ in range(3000):
        loss = geco.loss((t**2).sum(), (1 - t) + 0.1 * torch.randn(8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(t.detach()) == pytest.approx(1.0, abs=0.05)
    assert geco.lagrange == pytest.approx(2.0, abs=0.2)


def test_geco_moving_average_and_multiplier():
    geco = layers.GECO(alpha=0.5, nu=0.1, lagrange=1.0)
    x = torch.zeros(1, requires_grad=True)
    geco.loss(x.sum(), torch.full((4,), 2.0) + 0 * x)
    assert geco.c_ma == 2.0 and geco.lagrange == pytest.approx(math.exp(0.2))
    geco.loss(x.sum(), torch.full((4,), -4.0) + 0 * x)
    assert geco.c_ma == pytest.approx(-1.0) and geco.lagrange == pytest.approx(math.exp(0.2 - 0.1))


def test_sparse_vd_kl_differences_match_numerical_integration():
    # KL(q || log-uniform) = const - 0.5 log(alpha) + E log|1 + sqrt(alpha) xi|, xi ~ N(0, 1)
    # (Molchanov et al. 2017, eq. 13); the approximation is accurate to about 0.01 nats,
    # so differences between two values of alpha must agree to about 0.02
    xs = np.linspace(-12, 12, 400001)
    dens = np.exp(-(xs**2) / 2) / np.sqrt(2 * np.pi)

    def exact(log_alpha):
        a = math.exp(log_alpha)
        return -0.5 * log_alpha + np.sum(np.log(np.abs(1 + math.sqrt(a) * xs) + 1e-300) * dens) * (
            xs[1] - xs[0]
        )

    ref = 6.0
    approx_ref = float(layers.sparse_vd_kl(torch.tensor(ref)))
    for la in (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0):
        approx = float(layers.sparse_vd_kl(torch.tensor(la)))
        assert approx - approx_ref == pytest.approx(exact(la) - exact(ref), abs=0.02), la
    # the KL vanishes as alpha grows (weights pruned cost nothing) and grows as alpha shrinks
    assert float(layers.sparse_vd_kl(torch.tensor(20.0))) < 1e-4
    big = layers.sparse_vd_kl(torch.linspace(-8, 8, 50))
    assert (big[1:] < big[:-1]).all()


def test_linear_svdo_local_reparameterisation_moments():
    torch.manual_seed(0)
    layer = layers.LinearSVDO(5, 3)
    with torch.no_grad():
        layer.log_sigma2.fill_(-2.0)
    x = torch.randn(1, 5).repeat(20000, 1)
    out = layer(x)
    with torch.no_grad():
        var = (x[0] ** 2 * torch.exp(layer.log_alpha) * layer.theta**2).sum(dim=1)
    assert torch.allclose(
        out.mean(0), x[0] @ layer.theta.T + layer.bias, atol=4 * float(var.max().sqrt()) / 100
    )
    assert torch.allclose(out.var(0), var, rtol=0.05)
    # in evaluation, weights with log alpha > 3 are dropped
    layer.eval()
    with torch.no_grad():
        layer.theta.clamp_(min=0.05)
        layer.log_sigma2.fill_(-12.0)
        layer.log_sigma2[0, 0] = 10.0
        layer.theta[0, 0] = 0.01
    assert layer.mask()[0, 0] == 0 and layer.mask().sum() == 14
    y = layer(x[:1])
    expected = x[:1] @ (layer.theta * layer.mask()).T + layer.bias
    assert torch.allclose(y, expected)


def test_group_nj_kl_weight_term_is_the_gaussian_kl():
    torch.manual_seed(1)
    mu = torch.randn(4, 3)
    ls2 = torch.randn(4, 3)
    za = torch.full((3,), 30.0)  # large alpha: the unit term is ~0
    kl = layers.group_nj_kl(za.clamp(-8, 8), mu, ls2) - layers.sparse_vd_kl(za.clamp(-8, 8)).sum()
    q = torch.distributions.Normal(mu, torch.exp(0.5 * ls2))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert float(kl) == pytest.approx(
        float(torch.distributions.kl_divergence(q, p).sum()), rel=1e-5
    )
