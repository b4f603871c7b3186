"""Training: Adam, the schedules, resuming from a checkpoint ends where an uninterrupted run
ends, a diverging run stops with the iteration and keeps its last checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from phylo.errors import InputError
from phylo.execution import task_rng
from phylo.likelihood import JC69, TopologyBatchLikelihood
from phylo.vi import Adam, DivergenceError, Settings, Target, VariationalFamily, train
from phylo.vi.training import load_checkpoint

from .exact import all_topologies, example_alignment
from .test_five_taxa import support_sample


def test_adam_first_step_is_the_learning_rate_along_the_sign():
    a = Adam(3)
    x = a.step(np.zeros(3), np.array([5.0, -1e-3, 0.0]), 0.01)
    assert np.allclose(x, [0.01, -0.01, 0.0])


def test_adam_climbs_a_concave_function_to_its_top():
    a = Adam(2)
    x = np.array([5.0, -3.0])
    for i in range(3000):
        x = a.step(x, -2 * (x - np.array([1.0, 2.0])), 0.05 * 0.999**i)
    assert np.allclose(x, [1.0, 2.0], atol=1e-3)


def test_schedules():
    s = Settings(
        lr=0.01,
        lr_branch=None,
        lr_decay=0.5,
        lr_decay_every=10,
        anneal_start=0.001,
        anneal_iterations=100,
    )
    assert s.learning_rates(1) == (0.01, 0.01) and s.learning_rates(10) == (0.01, 0.01)
    assert s.learning_rates(11) == (0.005, 0.005) and s.learning_rates(21)[0] == 0.0025
    assert math.isclose(s.beta(1), 0.011) and s.beta(100) == 1.0 and s.beta(500) == 1.0
    assert Settings(anneal_iterations=0).beta(1) == 1.0
    assert Settings(lr_branch=0.1).learning_rates(1) == (0.0001, 0.1)
    assert Settings(init="em-alpha", anneal_iterations=50).topology_hold == 50
    assert Settings(init="uniform", anneal_iterations=50).topology_hold == 0
    assert Settings(hold_topology=7).topology_hold == 7
    with pytest.raises(InputError):
        Settings(estimator="reinforce")
    with pytest.raises(InputError):
        Settings(lr=-1)


def _setup(threads=1):
    aln = example_alignment()
    family = VariationalFamily.from_sample(support_sample(all_topologies()))
    target = Target(TopologyBatchLikelihood(aln, family.taxa, JC69(), threads=threads))
    return family, target


SMALL = dict(lr=0.01, anneal_iterations=20, lr_decay_every=25, trace_every=10, test_every=20)


def test_topology_is_held_then_trained():
    family, target = _setup()
    start = family.phi
    train(family, target, Settings(iterations=20, **SMALL), task_rng(1, "t"))
    assert np.array_equal(family.phi, start)  # held while annealing (em-alpha start)
    train(
        family, target, Settings(iterations=25, **{**SMALL, "hold_topology": 0}), task_rng(1, "t")
    )
    assert not np.array_equal(family.phi, start)


def test_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path):
    ident = {"data": "five taxa"}
    family, target = _setup()
    straight = train(family, target, Settings(iterations=60, **SMALL), task_rng(3, "t"),
                     test_rng=task_rng(3, "x"), identity=ident)  # fmt: skip
    ck = str(tmp_path / "ck.json")
    first, t1 = _setup(threads=2)
    train(first, t1, Settings(iterations=35, **SMALL), task_rng(3, "t"),
          test_rng=task_rng(3, "x"), checkpoint=ck, identity=ident)  # fmt: skip
    assert load_checkpoint(ck)["iteration"] == 35
    second, t2 = _setup()
    rng = task_rng(99, "other")  # its state is replaced by the checkpoint's
    res = train(second, t2, Settings(iterations=60, **SMALL), rng, test_rng=task_rng(5, "y"),
                checkpoint=ck, identity=ident)  # fmt: skip
    assert res.resumed_from == 35 and res.iterations == 60
    assert np.array_equal(second.phi, family.phi)
    assert np.array_equal(second.branches.vector(), family.branches.vector())
    # the same rows, and one where the first session ended
    rows = [r["iteration"] for r in res.trace]
    assert rows == sorted([r["iteration"] for r in straight.trace] + [35])
    assert res.evaluations == straight.evaluations == 600
    # another run's checkpoint is refused
    with pytest.raises(InputError, match="another run"):
        train(second, t2, Settings(iterations=70, **SMALL), rng, checkpoint=ck,
              identity={"data": "other"})  # fmt: skip


def test_diverging_run_names_the_iteration_and_keeps_the_last_checkpoint(tmp_path):
    family, target = _setup()
    ck = str(tmp_path / "ck.json")
    settings = Settings(
        iterations=50, lr=1000.0, lr_branch=1000.0, anneal_iterations=0, checkpoint_seconds=0
    )
    with pytest.raises(DivergenceError) as err:
        train(family, target, settings, task_rng(4, "t"), checkpoint=ck)
    message = str(err.value)
    state = load_checkpoint(ck)
    kept = state["iteration"]
    failed = int(message.split("at iteration ")[1].split(":")[0])
    assert 1 <= kept < failed
    assert f"(iteration {kept}) is kept in {ck}" in message
    assert np.isfinite(state["branch_parameters"]).all() and np.isfinite(state["logits"]).all()
    json.dumps(state)  # a plain JSON document
