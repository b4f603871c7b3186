"""Shared test fixtures.

Benchmark data (the DS alignments and tree samples, the marginal-likelihood credible sets,
Cora) are not part of the project.  Tests that use them read them in place from the folder
named by the environment variable ``PHYLO_SHARED_DATA`` (default: ``../shared/data`` next to
the project's root) and skip with a reason when it is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED_DATA = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(relative: str) -> Path:
    """Path of a file under the shared benchmark data; skip the test when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"benchmark data not available: {relative} (set PHYLO_SHARED_DATA)")
    return path


def require_program(name: str) -> str:
    """Path of an external program; skip the test when it is not installed."""
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed")
    return exe


@pytest.fixture
def shared():
    """``shared("ds/...")`` gives the path of a shared data file or skips."""
    return shared_path
