"""Noise elimination: pointer network (torch) against the exact minimum-flip correction."""

import numpy as np
import pytest

from phylo.ml.tumour import phylogeny as ph
from phylo.ml.tumour import simulate as sim


def test_min_flip_correction_undoes_a_single_conflicting_error():
    rng = np.random.default_rng(0)
    undone = tried = 0
    while tried < 40:
        a = sim.genotype_matrix(6, 6, rng)
        i, j = rng.integers(6), rng.integers(6)
        b = a.copy()
        b[i, j] = 1 - b[i, j]
        if ph.is_perfect_phylogeny(b):
            continue  # this error is invisible to any method
        tried += 1
        fixed, k = ph.min_flip_correction(b, max_flips=2)
        assert k == 1 and ph.is_perfect_phylogeny(fixed)
        undone += (fixed == a).all()
    assert undone >= 20  # often, though not always, the one flip found is the one made


def test_pointer_network_recovers_more_matrices_than_leaving_them_alone():
    torch = pytest.importorskip("torch")
    from phylo.ml.models.pointer_network import entry_tokens, flip_targets, train_noise_elimination

    obs = np.array([[[1, 0], [0, 1]]])
    truth = np.array([[[1, 1], [0, 1]]])
    assert flip_targets(obs, truth, 4).tolist() == [[2, 0, -1, -1]]
    assert entry_tokens(obs).shape == (1, 4, 4 + 2 * 4)

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = train_noise_elimination(seed=0)
    finally:
        torch.set_num_threads(n)
    # exact recovery of the noise-free matrix, on freshly simulated held-out matrices
    assert r.pointer_exact >= r.uncorrected_exact + 0.08, r
    assert r.pointer_entry > r.uncorrected_entry, r
    assert r.pointer_conflict_free >= r.uncorrected_conflict_free + 0.15, r
    # and it is in the league of the exact minimum-flip solver on the same matrices
    assert r.pointer_exact >= r.baseline_exact - 0.05, r


def test_correction_reward_is_the_log_likelihood_ratio():
    pytest.importorskip("torch")
    from phylo.ml.models.pointer_network import correction_reward

    a = np.array([[[1, 1], [1, 0], [0, 1]]])
    alpha, beta = 0.01, 0.2
    # fill in the 0 at (1, 1): one false negative undone, conflict gone
    r = correction_reward(a, [[3]], alpha, beta)
    assert r[0] == pytest.approx(-np.log((1 - alpha) / beta))
    # drop the 1 at (0, 0): one false positive undone, conflict gone
    r = correction_reward(a, [[0]], alpha, beta)
    assert r[0] == pytest.approx(-np.log((1 - beta) / alpha))
    # no change leaves the conflict: penalised
    assert correction_reward(a, [[]], alpha, beta, penalty=7.0)[0] == pytest.approx(-7.0)


@pytest.mark.slow
def test_policy_gradient_fine_tuning_raises_the_held_out_likelihood():
    torch = pytest.importorskip("torch")
    from phylo.ml.models.pointer_network import train_noise_elimination

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = train_noise_elimination(seed=0)
        after = train_noise_elimination(seed=0, rl_steps=200)
    finally:
        torch.set_num_threads(n)
    assert after.pointer_reward > before.pointer_reward + 0.5, (
        before.pointer_reward,
        after.pointer_reward,
    )
