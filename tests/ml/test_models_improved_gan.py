"""Improved GAN techniques (Salimans et al., 2016) on the digits (torch)."""

import math

import pytest

torch = pytest.importorskip("torch")

from torch.nn import functional as F  # noqa: E402

from phylo.ml.models import improved_gan as ig  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_minibatch_discrimination_counts_close_neighbours():
    torch.manual_seed(0)
    layer = ig.MinibatchDiscrimination(5, n_kernels=4, kernel_dim=3)
    same = torch.randn(1, 5).repeat(6, 1)
    out = layer(same)
    assert out.shape == (6, 9)
    assert torch.allclose(out[:, 5:], torch.full((6, 4), 6.0))  # every pair at distance 0
    far = torch.cat([same[:5], 1e3 * torch.ones(1, 5)])
    out = layer(far)
    assert torch.allclose(out[5, 5:], torch.ones(4), atol=1e-6)  # only itself is close
    assert torch.allclose(out[0, 5:], torch.full((4,), 5.0), atol=1e-6)


def test_virtual_batch_norm_makes_an_example_independent_of_its_batch():
    torch.manual_seed(1)
    vbn = ig.VirtualBatchNorm(3)
    ref = torch.randn(32, 3) * 2 + 1
    x = torch.randn(1, 3)
    batch_a = torch.cat([x, torch.randn(7, 3)])
    batch_b = torch.cat([x, 10 * torch.randn(7, 3) - 4])
    out_a, ref_out = vbn(batch_a, ref)
    out_b, _ = vbn(batch_b, ref)
    assert torch.allclose(out_a[0], out_b[0])
    # the reference batch itself is normalised to zero mean and unit variance
    assert torch.allclose(ref_out.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(ref_out.var(0, unbiased=False), torch.ones(3), atol=1e-3)
    # the example's statistics are those of the reference batch with the example added
    both = torch.cat([ref, x])
    expected = (x - both.mean(0)) / torch.sqrt(both.var(0, unbiased=False) + vbn.eps)
    assert torch.allclose(out_a[0], expected[0], atol=1e-5)
    # ordinary batch normalisation does depend on the batch
    bn = torch.nn.BatchNorm1d(3)
    assert not torch.allclose(bn(batch_a)[0], bn(batch_b)[0])


def test_historical_average_penalty():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    h = ig.HistoricalAverage([p])
    with torch.no_grad():
        p += torch.tensor([2.0, 0.0])
    h.update()  # average of [1, 2] and [3, 2] is [2, 2]
    with torch.no_grad():
        p.copy_(torch.tensor([5.0, 0.0]))
    assert float(h.penalty().detach()) == pytest.approx(3.0**2 + 2.0**2)


def test_one_sided_label_smoothing_and_feature_matching():
    r, f = torch.tensor([0.3]), torch.tensor([-1.2])
    s = 1 / (1 + math.exp(-0.3))
    expected = -(0.9 * math.log(s) + 0.1 * math.log(1 - s)) - math.log(1 - 1 / (1 + math.exp(1.2)))
    assert float(ig.one_sided_smoothed_loss(r, f)) == pytest.approx(expected, rel=1e-6)
    a, b = torch.randn(10, 4), torch.randn(12, 4)
    assert float(ig.feature_matching_loss(a, b)) == pytest.approx(
        float(((a.mean(0) - b.mean(0)) ** 2).sum())
    )


def test_inception_score_bounds():
    k = 10
    confident_diverse = torch.eye(k).repeat(5, 1) * 0.999 + 0.0001
    assert ig.inception_score(confident_diverse) == pytest.approx(k, rel=0.02)
    assert ig.inception_score(torch.full((20, k), 1 / k)) == pytest.approx(1.0)
    collapsed = torch.zeros(20, k)
    collapsed[:, 3] = 1
    assert ig.inception_score(collapsed) == pytest.approx(1.0)


def test_semi_supervised_gan_with_fifty_labels_beats_the_labels_alone():
    pytest.importorskip(
        "sklearn", reason="the digits data set comes with scikit-learn (the ml extra)"
    )
    r = ig.train_semi_supervised_gan(n_per_class=5, seed=0, epochs=40)
    assert r.accuracy >= 0.8, r.accuracy  # chance is 0.1
    assert r.accuracy > r.supervised_only_accuracy, (r.accuracy, r.supervised_only_accuracy)


def test_gan_samples_score_between_real_digits_and_shuffled_pixels():
    pytest.importorskip(
        "sklearn", reason="the digits data set comes with scikit-learn (the ml extra)"
    )
    gen, judge, scores = ig.train_minibatch_gan(seed=0, epochs=20)
    assert scores["real"] > scores["generated"] > scores["shuffled"], scores
    assert scores["generated"] >= 4.0, scores  # diverse, recognisable digits (maximum 10)
    # samples are not all one digit: every class appears among 1000 samples
    with torch.no_grad():
        classes = judge(gen.sample(1000, torch.Generator().manual_seed(5))).argmax(1)
    assert len(classes.unique()) == 10
    with torch.no_grad():
        assert float(F.softmax(judge(gen.sample(10)), 1).sum()) == pytest.approx(10.0, rel=1e-5)
