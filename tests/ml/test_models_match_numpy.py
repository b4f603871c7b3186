"""The torch layers use the same formulas as the numpy reference versions in phylo.ml."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from phylo.ml import bayesian_compression, sparse_vd  # noqa: E402
from phylo.ml.models import layers  # noqa: E402


def test_sparse_vd_kl_matches_numpy():
    la = np.linspace(-10, 10, 2001)
    ours = layers.sparse_vd_kl(torch.tensor(la, dtype=torch.float64)).numpy()
    assert np.allclose(ours, sparse_vd.kl_approximation(la), rtol=0, atol=1e-12)
    assert (layers.K1, layers.K2, layers.K3) == (sparse_vd.K1, sparse_vd.K2, sparse_vd.K3)
    assert layers.SVD_THRESHOLD == sparse_vd.THRESHOLD
    assert layers.LOG_ALPHA_CLIP == sparse_vd.LOG_ALPHA_CLIP


def test_group_normal_jeffreys_kl_matches_numpy():
    rng = np.random.default_rng(0)
    z_mu = rng.normal(size=7)
    z_ls2 = rng.normal(size=7) - 1
    w_mu = rng.normal(size=(5, 7))
    w_ls2 = rng.normal(size=(5, 7)) - 2
    z_log_alpha = z_ls2 - np.log(z_mu**2 + 1e-8)
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    ours = float(layers.group_nj_kl(t(z_log_alpha), t(w_mu), t(w_ls2)))
    ref = bayesian_compression.kl_group_normal_jeffreys(z_mu, z_ls2, w_mu, w_ls2)
    assert ours == pytest.approx(ref, rel=1e-12)
