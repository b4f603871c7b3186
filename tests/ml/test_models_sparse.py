"""Sparse variational dropout and Bayesian compression on an MLP for the digits (torch)."""

import pytest

torch = pytest.importorskip("torch")

from phylo.ml.models.sparse_mlp import train_sparse_mlp  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_sparse_variational_dropout_prunes_most_weights_and_keeps_accuracy():
    pytest.importorskip(
        "sklearn", reason="the digits data set comes with scikit-learn (the ml extra)"
    )
    r = train_sparse_mlp("svd", seed=0)
    assert r.weight_sparsity >= 0.8, r.weight_sparsity
    assert r.accuracy >= 0.9, r.accuracy
    assert r.accuracy >= r.dense_accuracy - 0.03


def test_bayesian_compression_prunes_input_units_and_keeps_accuracy():
    pytest.importorskip(
        "sklearn", reason="the digits data set comes with scikit-learn (the ml extra)"
    )
    r = train_sparse_mlp("bc", seed=0)
    # whole input units go: the blank border pixels of the digits first
    assert r.unit_sparsity[0] >= 0.2, r.unit_sparsity
    assert min(r.unit_sparsity[1:]) >= 0.3, r.unit_sparsity
    assert r.weight_sparsity >= 0.5, r.weight_sparsity
    assert r.accuracy >= 0.9, r.accuracy
    assert r.accuracy >= r.dense_accuracy - 0.03
    bits = [layer.bit_precision() for layer in r.model.layers]
    assert all(1 <= b < 23 for b in bits), bits  # fewer bits than a float32 mantissa
