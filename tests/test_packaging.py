"""The install lists every package, and the front ends install under phylo.cli."""

from __future__ import annotations

import pytest

from .conftest import ROOT


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def test_every_package_folder_is_installed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "phylo").rglob("__init__.py")
    }
    found.add("phylo.cli")
    assert listed == found


def test_front_ends_install_as_phylo_cli():
    project = _pyproject()
    assert project["tool"]["setuptools"]["package-dir"] == {"phylo.cli": "cli"}
    scripts = project["project"]["scripts"]
    assert scripts == {"sbn": "phylo.cli.sbn:main", "marglik": "phylo.cli.marglik:main"}
    assert (ROOT / "cli" / "__init__.py").exists()
    import phylo.cli.marglik
    import phylo.cli.sbn

    assert callable(phylo.cli.sbn.main) and callable(phylo.cli.marglik.main)
