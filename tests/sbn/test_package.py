"""phylo.sbn's public names: each resolves, the README's imports work, and the command line
can offer the estimators' names without loading the compiled kernels."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import phylo.sbn

from ..conftest import _BOOTSTRAP, ROOT


def test_every_public_name_resolves_to_its_home():
    for name in phylo.sbn.__all__:
        value = getattr(phylo.sbn, name)
        home = getattr(value, "__module__", None)
        if home is not None and home.startswith("phylo.sbn."):
            assert getattr(sys.modules[home], name) is value
    assert set(phylo.sbn.__all__) <= set(dir(phylo.sbn))
    with pytest.raises(AttributeError, match="no_such_name"):
        phylo.sbn.no_such_name  # noqa: B018


def test_the_readme_imports_work():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = set()
    for found in re.findall(r"from phylo\.sbn import ([\w, ]+)", text):
        names.update(x.strip() for x in found.split(","))
    assert {"fit", "load_model"} <= names
    for name in names:
        assert getattr(phylo.sbn, name) is not None


def test_the_command_line_loads_no_kernels_until_a_command_runs():
    boot = _BOOTSTRAP.format(init=str(ROOT / "cli" / "__init__.py"), folder=str(ROOT / "cli"))
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); {boot}\n"
        "import phylo.cli.sbn\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
        "from phylo.sbn.methods import METHODS\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
        "from phylo.sbn import fit\n"
        "assert 'numba' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
