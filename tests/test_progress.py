"""The progress line's rate leaves out the first unit of work, which on a first run
includes compiling the kernels (seconds): a clock under the test's control."""

from __future__ import annotations

import pytest

from phylo import progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "monotonic", c)
    return c


def test_rate_counts_from_the_first_update(clock):
    """A first EM iteration of 30 s (compiling), then 4 iterations in 2 s: 2 per second,
    not 5 / 32 s (which the line printed as '0 EM iterations/s')."""
    bar = progress.Progress("fitting", unit="EM iterations")
    clock.now += 30.0
    bar.update()
    assert bar.rate() is None  # one update: no rate yet
    assert bar.line() == "fitting: 1 EM iterations"
    clock.now += 2.0
    bar.update(4)
    assert bar.rate() == pytest.approx(2.0)
    assert bar.line() == "fitting: 5 EM iterations (2 EM iterations/s)"


def test_eta_from_the_rate_after_the_first_update(clock):
    """With a total: 10 of 100 done 9 s after the first (which took 60 s): 1 per second,
    90 left, ETA 1:30; before a second update the ETA is unknown."""
    bar = progress.Progress("trees", total=100)
    clock.now += 60.0
    bar.update()
    assert bar.line().endswith("ETA ?")
    clock.now += 9.0
    bar.update(9)
    assert bar.line() == "trees: [##                  ] 10/100  10% elapsed 1:09 ETA 1:30"
