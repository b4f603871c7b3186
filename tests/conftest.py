"""Shared test fixtures.

Benchmark data (the DS alignments and tree samples, the marginal-likelihood credible sets,
Cora) are not part of the project.  Tests that use them read them in place from the folder
named by the environment variable ``PHYLO_SHARED_DATA`` (default: ``../shared/data`` next to
the project's root) and skip with a reason when it is absent.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED_DATA = Path(os.environ.get("PHYLO_SHARED_DATA", ROOT.parent / "shared" / "data"))

# The front ends in cli/ install as phylo.cli (pyproject maps the folder).  When the tests run
# from a source tree whose phylo shadows an installed copy, load cli/ as phylo.cli here.
_BOOTSTRAP = (
    "import importlib.util, sys; "
    "s = importlib.util.spec_from_file_location('phylo.cli', {init!r}, "
    "submodule_search_locations=[{folder!r}]); "
    "m = importlib.util.module_from_spec(s); sys.modules['phylo.cli'] = m; "
    "s.loader.exec_module(m); import phylo; phylo.cli = m"
)


def _load_cli_from_source() -> None:
    try:
        import phylo.cli  # noqa: F401

        return
    except ImportError:
        pass
    exec(_BOOTSTRAP.format(init=str(ROOT / "cli" / "__init__.py"), folder=str(ROOT / "cli")))


_load_cli_from_source()


def cli_command(tool: str, *args) -> list[str]:
    """The command line that runs ``sbn`` or ``marglik`` from this source tree in a new
    process (for tests that signal or kill it)."""
    boot = _BOOTSTRAP.format(init=str(ROOT / "cli" / "__init__.py"), folder=str(ROOT / "cli"))
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); {boot}; "
        f"from phylo.cli.{tool} import main; sys.argv[0] = {tool!r}; main()"
    )
    return [sys.executable, "-c", code, *[str(a) for a in args]]


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
