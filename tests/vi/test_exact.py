"""The quadrature reference of the 5-taxon tests: the stored table is that of the data file,
and the rule has converged."""

from __future__ import annotations

import numpy as np
import pytest

from .exact import all_topologies, example_alignment, log_marginal, simulate_example, stored_exact


def test_data_file_is_the_documented_simulation():
    assert np.array_equal(example_alignment().codes, simulate_example().codes)


def test_stored_table_lists_every_topology_once():
    newicks, values = stored_exact()
    assert newicks == all_topologies() and len(set(newicks)) == 15
    assert np.all(np.isfinite(values))


def test_five_nodes_per_branch_agree_with_the_stored_nine():
    aln = example_alignment()
    newicks, values = stored_exact()
    for i in (14, 2):  # the most and the least probable topology
        assert abs(log_marginal(aln, newicks[i], 5) - values[i]) < 0.02


@pytest.mark.slow
def test_seven_nodes_per_branch_agree_with_the_stored_nine():
    aln = example_alignment()
    newicks, values = stored_exact()
    for i in range(15):
        assert abs(log_marginal(aln, newicks[i], 7) - values[i]) < 0.006
