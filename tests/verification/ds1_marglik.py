"""DS1 and its golden credible set (Fourment et al. 2020), read once for the verification
tests of the marginal-likelihood estimators."""

from __future__ import annotations

import functools

from ..conftest import shared_path

PUBLISHED_TREE0 = -7036.5  # log p(D | tree 0), the paper's long power-posterior runs


def credible_set():
    """``(alignment, frequencies, trees)`` of DS1's 42-topology golden credible set."""
    return _read(
        str(shared_path("marglik/alignments/DS1.nex")),
        str(shared_path("marglik/credible_sets/JC_no_gamma_credible_set_ds1.tsv")),
    )


@functools.lru_cache(maxsize=1)
def _read(alignment: str, trees: str):
    from phylo.likelihood import read_alignment
    from phylo.marglik.compare import read_topologies

    topologies, freqs = read_topologies(trees)
    assert len(topologies) == 42
    return read_alignment(alignment), freqs, topologies
