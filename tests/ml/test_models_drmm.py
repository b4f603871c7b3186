"""The Deep Rendering Mixture Model on the digits (torch)."""

import pytest

torch = pytest.importorskip("torch")

from phylo.ml.models.drmm import DRMM, train_drmm  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_rendering_is_the_transpose_of_inference():
    # with all switches on and translations fixed, rendering is linear and is the adjoint of the
    # (bias-free) bottom-up pass: <render(u), x> = <u, infer(x)>
    torch.manual_seed(0)
    m = DRMM(c1=4, c2=5)
    with torch.no_grad():
        m.conv1.bias.zero_()
        m.conv2.bias.zero_()
    x = torch.randn(3, 64)
    _, top, (s1, t1, s2, t2) = m.infer(x)
    ones = (torch.ones_like(s1), t1, torch.ones_like(s2), t2)
    u = torch.randn_like(top)
    import torch.nn.functional as F

    # bottom-up with the same translations and no switches: conv, gather at t, conv, gather at t
    a1 = m.conv1(x.view(-1, 1, 8, 8))
    h1 = a1.flatten(2).gather(2, t1.flatten(2)).view_as(t1)
    a2 = F.conv2d(h1, m.conv2.weight, padding=1)
    h2 = a2.flatten(2).gather(2, t2.flatten(2)).view_as(t2)
    lhs = (m.render(u, ones) * x).sum()
    rhs = (u * h2).sum()
    assert float(lhs.detach()) == pytest.approx(float(rhs.detach()), rel=1e-4)


def test_drmm_classifies_digits_and_renders_them_from_its_latents():
    pytest.importorskip(
        "sklearn", reason="the digits data set comes with scikit-learn (the ml extra)"
    )
    r = train_drmm(seed=0)
    assert r.accuracy >= 0.9, r.accuracy
    # the inferred switches and translations carry the image: rendering with another image's
    # latents is far worse
    assert r.recon_error < 0.3 * r.shuffled_latent_error, (r.recon_error, r.shuffled_latent_error)
