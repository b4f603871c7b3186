"""Disentangling factors of variation with adversarial training (torch)."""

import pytest

torch = pytest.importorskip("torch")

from phylo.ml.models.disentangle import train_disentangler  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_swapped_codes_keep_the_class_of_the_specified_part_only_with_adversarial_training():
    pytest.importorskip(
        "sklearn", reason="the digits data set comes with scikit-learn (the ml extra)"
    )
    r = train_disentangler(seed=0)
    assert r.classifier_accuracy >= 0.9
    # Dec(s(x_a), z(x_b)) is read as x_a's digit, rarely as x_b's
    assert r.specified_class_rate >= 0.7, r
    assert r.unspecified_class_rate <= 0.2, r
    # without the adversarial term the class leaks into z and the swap fails
    plain = train_disentangler(seed=0, adv_weight=0.0)
    assert plain.specified_class_rate < r.specified_class_rate - 0.3, plain
