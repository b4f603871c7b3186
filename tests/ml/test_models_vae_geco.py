"""VAE trained with GECO on the digits (torch)."""

import pytest

torch = pytest.importorskip("torch")

from phylo.ml.models.data import digits_split  # noqa: E402
from phylo.ml.models.vae_geco import train_vae_geco  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_geco_meets_the_reconstruction_constraint_and_trades_it_for_kl():
    pytest.importorskip(
        "sklearn", reason="the digits data set comes with scikit-learn (the ml extra)"
    )
    x, _, xt, _ = digits_split(0)
    mean_image_error = float(((xt - x.mean(0)) ** 2).sum(dim=1).mean())
    tight = train_vae_geco(1.5, seed=0)
    loose = train_vae_geco(2.5, seed=0)
    for r in (tight, loose):
        # the constraint is active: a code-free model (the mean image) violates it
        assert mean_image_error > 1.5 * r.kappa2
        # held-out error sits at the tolerance (within 10%)
        assert r.test_sq_error == pytest.approx(r.kappa2, rel=0.1), (r.test_sq_error, r.kappa2)
    assert tight.test_kl > 1.5 * loose.test_kl
    assert tight.lagrange > loose.lagrange
