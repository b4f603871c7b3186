"""Every tree reader, fed damaged copies of real inputs, gives a result or one clean error
(InputError naming the file, one line): never another exception.  The long fuzzing run is
``python -m tests.trees.fuzzing`` (see that module)."""

from __future__ import annotations

import random
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzzing import READER, mutate, outcome, seeds

SEEDS = seeds()


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_the_seeds_read(kind):
    with tempfile.TemporaryDirectory() as folder:
        result, detail = outcome(kind, SEEDS[kind], random.Random(0), folder)
    assert result == "ok", detail


@pytest.mark.parametrize("kind", sorted(SEEDS))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1), damages=st.integers(1, 4))
def test_damaged_inputs_give_a_result_or_one_clean_error(kind, seed, damages):
    rng = random.Random(seed)
    data = mutate(SEEDS[kind], rng, damages)
    with tempfile.TemporaryDirectory() as folder:
        result, detail = outcome(kind, data, rng, folder)
    assert result in ("ok", "error"), f"{READER[kind]} reader on {data[:3000]!r}:\n{detail}"
