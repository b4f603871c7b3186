"""Noise inference and branching inference with two-hidden-layer networks (numpy)."""

import numpy as np

from phylo.ml.tumour import classifier as cl
from phylo.ml.tumour import phylogeny as ph


def test_canonical_form_is_invariant_to_row_and_column_order_with_distinct_column_sums():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(3000):
        a = (rng.random((9, 5)) < 0.5).astype(np.int8)
        c = cl.canonical_form(a)
        # always a permutation of rows and columns: same multiset of rows after sorting columns
        assert sorted(map(tuple, np.sort(c, axis=1))) == sorted(map(tuple, np.sort(a, axis=1)))
        assert (np.diff(c.sum(axis=0)) <= 0).all()
        if len(set(a.sum(axis=0))) < a.shape[1]:
            continue
        checked += 1
        b = a[rng.permutation(9)][:, rng.permutation(5)]
        np.testing.assert_array_equal(c, cl.canonical_form(b))
    assert checked > 100


def test_backpropagation_matches_finite_differences():
    rng = np.random.default_rng(1)
    net = cl.TwoHiddenLayerClassifier(6, 5, 4, 3, rng)
    for k in (1, 2, 3):
        net.params[f"b{k}"] += 0.1 * rng.standard_normal(net.params[f"b{k}"].shape)
    x = rng.standard_normal((8, 6))
    y = rng.integers(0, 3, 8)
    _, grads = net.loss_and_gradients(x, y, weight_decay=0.05)
    eps = 1e-6
    for name, w in net.params.items():
        num = np.zeros_like(w)
        for ij in np.ndindex(*w.shape):
            old = w[ij]
            w[ij] = old + eps
            lp, _ = net.loss_and_gradients(x, y, 0.05)
            w[ij] = old - eps
            lm, _ = net.loss_and_gradients(x, y, 0.05)
            w[ij] = old
            num[ij] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, rtol=1e-5, atol=1e-8, err_msg=name)


def test_noise_inference_on_held_out_matrices():
    x, y = cl.noise_inference_data(20000, 10, 10, 0.01, 0.15, np.random.default_rng(10))
    xt, yt = cl.noise_inference_data(1000, 10, 10, 0.01, 0.15, np.random.default_rng(11))
    net = cl.TwoHiddenLayerClassifier(100, 128, 64, 2, np.random.default_rng(0))
    net.fit(cl.matrix_features(x), y, np.random.default_rng(0), epochs=30, weight_decay=1e-3)
    acc = np.mean(net.predict(cl.matrix_features(xt)) == yt)
    # exact reference: a matrix failing the three-gametes test is certainly noisy
    exact = np.mean((~ph.batch_is_perfect_phylogeny(xt)).astype(int) == yt)
    assert acc >= 0.9, (acc, exact)
    assert exact < 1.0  # some noisy matrices still pass the test, so the task is not trivial


def test_branching_inference_on_held_out_matrices():
    x, y, _ = cl.branching_inference_data(4000, 10, 10, 0.01, 0.15, np.random.default_rng(20))
    xt, yt, truth = cl.branching_inference_data(1000, 10, 10, 0.01, 0.15, np.random.default_rng(21))
    assert 0.4 < yt.mean() < 0.6
    net = cl.TwoHiddenLayerClassifier(100, 128, 64, 2, np.random.default_rng(0))
    net.fit(cl.matrix_features(x), y, np.random.default_rng(0), epochs=30, weight_decay=1e-3)
    acc = np.mean(net.predict(cl.matrix_features(xt)) == yt)
    # the exact test applied to the noisy matrix itself does much worse: noise breaks chains
    naive = np.mean([(not ph.is_linear(m)) == bool(t) for m, t in zip(xt, yt)])
    assert acc >= 0.9, (acc, naive)
    assert acc > naive
