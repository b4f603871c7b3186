"""Tests of the numpy GCN (Kipf and Welling, 2017)."""

import numpy as np
import pytest
import scipy.sparse as sp

from phylo.errors import InputError
from phylo.ml import gcn
from tests.conftest import shared_path


def test_normalized_adjacency_path_graph_by_hand():
    # path 0-1-2: degrees with self-loops are 2, 3, 2
    a_hat = gcn.normalized_adjacency(np.array([[0, 1], [1, 2]]), 3).toarray()
    s6 = 1 / np.sqrt(6)
    expected = np.array([[1 / 2, s6, 0], [s6, 1 / 3, s6], [0, s6, 1 / 2]])
    np.testing.assert_allclose(a_hat, expected, rtol=0, atol=1e-15)


def test_normalized_adjacency_dense_input_matches_edge_list_and_ignores_self_loops():
    a = np.array([[1, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    from_dense = gcn.normalized_adjacency(a).toarray()
    from_edges = gcn.normalized_adjacency(np.array([[0, 1], [1, 2], [0, 3], [1, 0]]), 4).toarray()
    np.testing.assert_allclose(from_dense, from_edges, atol=1e-15)
    # star centre 0 has degree 2 (+1): entry (0,3) is 1/sqrt(3*2)
    assert from_dense[0, 3] == pytest.approx(1 / np.sqrt(6))
    assert sp.issparse(gcn.normalized_adjacency(a))


def test_normalized_adjacency_rejects_bad_input():
    with pytest.raises(InputError):
        gcn.normalized_adjacency(np.array([[0, 1], [0, 0]]))  # not symmetric
    with pytest.raises(InputError):
        gcn.normalized_adjacency(np.array([[0, 5]]), 3)  # endpoint out of range
    with pytest.raises(InputError):
        gcn.normalized_adjacency(np.array([[0, 1, 2]]), 3)


@pytest.mark.parametrize("sparse_features", [False, True])
def test_gradients_match_finite_differences(sparse_features):
    rng = np.random.default_rng(3)
    edges, x, labels = gcn.planted_partition(3, 6, 0.5, 0.1, 5, 1.0, rng)
    a_hat = gcn.normalized_adjacency(edges, len(labels))
    if sparse_features:
        x = sp.csr_matrix(np.where(rng.random(x.shape) < 0.4, np.abs(x), 0.0))
    model = gcn.GCN(5, 4, 3, rng)
    idx = np.array([0, 2, 7, 9, 15])
    _, grads = model.loss_and_gradients(a_hat, x, labels, idx, weight_decay=0.1)
    eps = 1e-6
    for name in ("W1", "W2"):
        w = model.params[name]
        num = np.zeros_like(w)
        for ij in np.ndindex(*w.shape):
            old = w[ij]
            w[ij] = old + eps
            lp, _ = model.loss_and_gradients(a_hat, x, labels, idx, weight_decay=0.1)
            w[ij] = old - eps
            lm, _ = model.loss_and_gradients(a_hat, x, labels, idx, weight_decay=0.1)
            w[ij] = old
            num[ij] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, rtol=1e-5, atol=1e-8)


def test_planted_partition_gcn_beats_chance_and_a_graph_blind_network():
    rng = np.random.default_rng(0)
    n_blocks, size = 4, 60
    edges, x, labels = gcn.planted_partition(n_blocks, size, 0.12, 0.008, 20, 0.25, rng)
    n = len(labels)
    a_hat = gcn.normalized_adjacency(edges, n)
    perm = rng.permutation(n)
    idx_train = np.concatenate([perm[labels[perm] == c][:5] for c in range(n_blocks)])
    rest = np.setdiff1d(perm, idx_train)
    idx_val, idx_test = rest[:40], rest[40:]
    accs, blind = [], []
    for seed in range(2):
        r = gcn.train_gcn(
            a_hat,
            x,
            labels,
            idx_train,
            idx_val,
            idx_test,
            np.random.default_rng(seed),
            early_stopping=0,
            epochs=150,
        )
        accs.append(r.test_accuracy)
        # the same network with the graph replaced by the identity is a plain MLP
        b = gcn.train_gcn(
            sp.identity(n, format="csr"),
            x,
            labels,
            idx_train,
            idx_val,
            idx_test,
            np.random.default_rng(seed),
            early_stopping=0,
            epochs=150,
        )
        blind.append(b.test_accuracy)
    assert np.mean(accs) >= 0.85  # chance is 0.25
    assert np.mean(accs) >= np.mean(blind) + 0.2


def test_cora_planetoid_split_reaches_published_accuracy():
    data = gcn.load_planetoid_npz(shared_path("cora/cora_planetoid.npz"))
    assert data["features"].shape == (2708, 1433)
    accs = [
        gcn.train_gcn(
            data["a_hat"],
            data["features"],
            data["labels"],
            data["idx_train"],
            data["idx_val"],
            data["idx_test"],
            np.random.default_rng(seed),
        ).test_accuracy
        for seed in range(3)
    ]
    # Kipf and Welling (2017) report 81.5%
    assert np.mean(accs) >= 0.80, accs


def test_load_planetoid_rejects_incomplete_archive(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, labels=np.zeros(3))
    with pytest.raises(InputError, match="missing"):
        gcn.load_planetoid_npz(p)
    q = tmp_path / "not.npz"
    q.write_text("hello")
    with pytest.raises(InputError):
        gcn.load_planetoid_npz(q)


def test_numpy_parts_of_phylo_ml_do_not_import_torch():
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    code = (
        "import sys; import phylo.ml, phylo.ml.gcn, phylo.ml.tumour, phylo.ml.models; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
