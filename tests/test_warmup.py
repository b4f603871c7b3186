"""A first run: the compile notice, the kernels compiled side by side before the command, and
the command then loading them from numba's cache.

Each run below is a new process with its own ``NUMBA_CACHE_DIR`` (empty for a first run)
and standard error on a pseudo-terminal, as a user's would be.  It counts the compilations
of ``phylo`` kernels (numba's ``numba:compile`` events, which fire only on a cache miss)
before and after :func:`phylo.warmup.ensure` returns.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from phylo import warmup
from tests.conftest import _BOOTSTRAP, DATA, ROOT

RUNS = [str(DATA / "example.run1.t"), str(DATA / "example.run2.t")]

# Runs `tool args...` from this source tree; writes to $WARMUP_REPORT the phylo kernels
# compiled in this process while ensure() ran and after it, and what ensure() returned.
DRIVER = (
    "import json, os, sys\n"
    f"sys.path.insert(0, {str(ROOT)!r})\n"
    + _BOOTSTRAP.format(init=str(ROOT / "cli" / "__init__.py"), folder=str(ROOT / "cli"))
    + "\n"
    + """
from numba.core import event
import phylo.warmup as W

state = {"phase": "before", "ensure": [], "compiled": {"before": [], "ensure": [], "after": []}}

class Count(event.Listener):
    def on_start(self, ev):
        f = getattr(ev.data.get("dispatcher"), "py_func", None)
        if getattr(f, "__module__", "").startswith("phylo"):
            state["compiled"][state["phase"]].append(f.__module__ + "." + f.__qualname__)
    def on_end(self, ev):
        pass

event.register("numba:compile", Count())
_ensure = W.ensure

def ensure(*a, **k):
    state["phase"] = "ensure"
    try:
        out = _ensure(*a, **k)
    finally:
        state["phase"] = "after"
    state["ensure"].append(out)
    return out

W.ensure = ensure

def report():
    with open(os.environ["WARMUP_REPORT"], "w") as fh:
        json.dump(state, fh)

import atexit
atexit.register(report)
tool = sys.argv[1]
sys.argv = sys.argv[1:]
from importlib import import_module
import_module("phylo.cli." + tool).main()
"""
)


def run(tmp_path: Path, cache: Path, tool: str, *args, jobs: int = 2, tty: bool = True, cwd=None):
    """One command in a new process (standard error on a terminal when ``tty``), in the
    folder ``cwd`` (default ``tmp_path``); returns (standard error, report of the driver)."""
    cwd = tmp_path if cwd is None else cwd
    report = tmp_path / "report.json"
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(cache),
        WARMUP_REPORT=str(report),
        PHYLO_COMPILE_JOBS=str(jobs),
        PYTHONPATH=str(ROOT),
    )
    cmd = [sys.executable, "-c", DRIVER, tool, *map(str, args)]
    if tty:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=follower,
                env=env,
                cwd=cwd,
            )
            os.close(follower)
            follower = -1
            chunks = []
            while True:
                try:
                    data = os.read(leader, 4096)
                except OSError:  # the terminal closed: the process is gone
                    break
                if not data:
                    break
                chunks.append(data)
            rc = proc.wait(timeout=600)
        finally:
            os.close(leader)
            if follower >= 0:
                os.close(follower)
        err = b"".join(chunks).decode(errors="replace")
    else:
        res = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=600,
        )
        rc, err = res.returncode, res.stderr
    assert rc == 0, err
    rep = json.loads(report.read_text())
    report.unlink()
    return err, rep


def _model(path: Path) -> dict:
    d = json.loads(path.read_text())
    d.pop("provenance")  # the command line and the date
    return d


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """``sbn fit`` of the example runs: a first run compiling in its own process only
    (``PHYLO_COMPILE_JOBS=1``), again on that cache (two processes allowed: ensure() finds
    every group cached), and a first run compiling the groups side by side in two processes."""
    tmp = tmp_path_factory.mktemp("fits")
    out = {}
    one, two = tmp / "cache-one", tmp / "cache-two"
    for key, cache, jobs in (("serial", one, 1), ("again", one, 2), ("parallel", two, 2)):
        model = tmp / f"{key}.json"
        err, rep = run(tmp, cache, "sbn", "fit", *RUNS, "-o", model, jobs=jobs)
        out[key] = (err, rep, _model(model))
    return out


def test_notice_exactly_when_the_cache_is_empty(fits):
    """The first run, compiling in one process or in two, says so once on the terminal;
    the second run, on the filled cache, prints no such line."""
    for key in ("serial", "parallel"):
        err, _, _ = fits[key]
        assert err.count(warmup.NOTICE) == 1, (key, err)
    assert "done in" in fits["parallel"][0]  # ensure() compiled, and said when it ended
    err, rep, _ = fits["again"]
    assert warmup.NOTICE not in err, err
    assert rep["ensure"] == [None]  # every group found in the cache
    assert rep["compiled"] == {"before": [], "ensure": [], "after": []}


def test_parallel_precompilation_fills_the_cache_the_command_uses(fits):
    """On a first run with two processes, ensure() compiles both groups (one in a child
    process) and the command then compiles nothing: it loads every kernel from the cache
    the two processes wrote.  In one process, the command compiles as it goes."""
    _, rep, _ = fits["parallel"]
    assert isinstance(rep["ensure"][0], float), rep["ensure"]  # compiled side by side
    assert rep["compiled"]["ensure"], "the command's process compiles the largest group"
    assert rep["compiled"]["after"] == [], rep["compiled"]["after"]
    _, rep, _ = fits["serial"]
    assert rep["ensure"] == [None]
    assert any("sbn" in k for k in rep["compiled"]["after"]), rep["compiled"]
    assert any("trees" in k for k in rep["compiled"]["after"]), rep["compiled"]


def test_same_model_with_and_without_precompilation(fits):
    """The model is the same whether the kernels were compiled by the warm-up groups, by
    the command itself, or loaded from the cache."""
    ref = fits["serial"][2]
    assert fits["parallel"][2] == ref
    assert fits["again"][2] == ref
    assert ref["params"]  # a model was fitted


def test_children_compile_for_the_copy_of_phylo_the_command_runs(tmp_path):
    """Run from a folder holding another ``phylo`` (a user in a source tree beside an
    installed copy): the compiling children must import the command's copy, whose cache the
    command reads, not the folder's; the command then compiles nothing after ensure()."""
    decoy = tmp_path / "elsewhere"
    (decoy / "phylo").mkdir(parents=True)
    (decoy / "phylo" / "__init__.py").write_text("raise ImportError('not this phylo')\n")
    err, rep = run(tmp_path, tmp_path / "cache", "sbn", "fit", *RUNS, "-o",
                   tmp_path / "m.json", jobs=2, cwd=decoy)  # fmt: skip
    assert isinstance(rep["ensure"][0], float), rep["ensure"]
    assert rep["compiled"]["after"] == [], rep["compiled"]["after"]


def test_warmup_entry_point_covers_the_commands(tmp_path):
    """``python -m phylo.warmup trees`` fills a cache from which ``sbn summary`` compiles
    nothing (the exercise compiles the signatures the command calls); on that cache the
    group counts as cached, and not on an empty one."""
    cache = tmp_path / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    check = [
        sys.executable,
        "-c",
        "import sys; from phylo import warmup; sys.exit(0 if warmup.cached('trees') else 3)",
    ]
    assert subprocess.run(check, env=env, timeout=600).returncode == 3
    res = subprocess.run(
        [sys.executable, "-m", "phylo.warmup", "trees"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert warmup.NOTICE in res.stderr
    assert subprocess.run(check, env=env, timeout=600).returncode == 0
    err, rep = run(tmp_path, cache, "sbn", "summary", *RUNS)
    assert warmup.NOTICE not in err, err
    assert rep["compiled"] == {"before": [], "ensure": [], "after": []}, rep["compiled"]


def test_plan_shares_out_largest_first():
    """Groups go largest first to the process that finishes them soonest, this process
    first (children start later by CHILD_START)."""
    names = ["trees", "sbn-fit", "likelihood-f81", "likelihood-general"]
    bins = warmup.plan(names, 2)
    assert sorted(sum(bins, [])) == sorted(names)
    loads = [sum(warmup.GROUPS[n].seconds for n in b) for b in bins]
    loads[1] += warmup.CHILD_START
    # no move of one group from the busier process to the other finishes sooner
    busy, idle = (0, 1) if loads[0] >= loads[1] else (1, 0)
    for n in bins[busy]:
        s = warmup.GROUPS[n].seconds
        assert max(loads[busy] - s, loads[idle] + s) >= max(loads)
    assert warmup.plan(["trees"], 4) == [["trees"]]
    assert warmup.plan(["sbn-fit", "trees"], 1) == [["trees", "sbn-fit"]]
