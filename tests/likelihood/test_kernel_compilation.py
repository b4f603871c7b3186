"""How the kernels are compiled, cached and given memory: their LLVM settings reach no other
numba code in the process, a cached kernel is not reused once any file that shapes its
compiled code has changed, and large buffers lie on aligned huge pages."""

from __future__ import annotations

import ast
import json
import mmap
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numba.core.errors import TypingError

from phylo.likelihood import _families, _llvm_options
from phylo.likelihood._buffers import HUGE_PAGE_BYTES, HUGE_PAGE_MIN_BYTES, zeros

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "phylo" / "likelihood"

# A loop that LLVM vectorises and by default interleaves (several vector accumulators),
# which the kernels' setting force-vector-interleave=1 reduces to one: the number of
# vector additions in its optimised IR tells which settings it was compiled under.
PROBE = textwrap.dedent(
    """
    import re
    import numba

    DOT = '''
    import numba

    @numba.njit(fastmath=True)
    def dot(x, y):
        s = 0.0
        for i in range(x.size):
            s += x[i] * y[i]
        return s
    '''
    SIG = (numba.float64[::1], numba.float64[::1])


    def fresh_dot(filename):
        \"\"\"A new, uncompiled ``dot`` whose code belongs to the file ``filename``.\"\"\"
        ns = {}
        exec(compile(DOT, filename, "exec"), ns)
        return ns["dot"]


    def vector_adds(dispatcher):
        dispatcher.compile(SIG)
        return len(re.findall(r"fadd [^\\n]*<\\d+ x double>", dispatcher.inspect_llvm(SIG)))
    """
)
_probe: dict = {}
exec(PROBE, _probe)
fresh_dot, vector_adds, SIG = _probe["fresh_dot"], _probe["vector_adds"], _probe["SIG"]

LEAK_SCRIPT = PROBE + textwrap.dedent(
    """
    import json, os, sys, threading, time

    if sys.argv[1] == "fresh":  # a process that never loads the kernels
        print(json.dumps({"fresh": vector_adds(fresh_dot(os.path.abspath("a.py")))}))
        sys.exit()

    import numpy as np
    from phylo.likelihood import JC69, TreeLikelihood, _llvm_options, random_tree
    from phylo.likelihood import simulate_alignment

    rng = np.random.default_rng(1)
    tree = random_tree(6, rng, 0.1)
    aln = simulate_alignment(tree, JC69(), 50, rng)
    lik = TreeLikelihood(aln, tree, JC69())
    t = tree.branch_lengths[:-1]
    # another thread compiles the kernels (the cache is empty); once their settings are
    # in force, this thread compiles a function of its own
    worker = threading.Thread(target=lambda: (lik.gradient(t), lik.log_likelihood(t)))
    worker.start()
    while not _llvm_options.in_force() and worker.is_alive():
        time.sleep(0.0005)
    seen = _llvm_options.in_force()
    during = vector_adds(fresh_dot(os.path.abspath("during.py")))
    worker.join()
    after = vector_adds(fresh_dot(os.path.abspath("after.py")))
    misses = sum(lik._kernels.evaluate_rows.stats.cache_misses.values())
    # the same function compiled as if it were a kernel, to show what a leak would look like
    _llvm_options.compile_under_options(os.path.abspath("kernel.py"))
    as_kernel = vector_adds(fresh_dot(os.path.abspath("kernel.py")))
    print(json.dumps(dict(seen=seen, during=during, after=after, misses=misses,
                          as_kernel=as_kernel, in_force=_llvm_options.in_force())))
    """
)


def _run(script: Path, *args, env=None, cwd=None) -> dict:
    res = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_llvm_options_do_not_leak_into_other_numba_code(tmp_path):
    """While one thread compiles the kernels into an empty cache, and after, a function of
    another thread compiles with LLVM's defaults: its optimised IR is that of a process
    that never loaded the kernels.  Compiled under the kernels' settings it would differ."""
    script = tmp_path / "probe.py"
    script.write_text(LEAK_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    fresh = _run(script, "fresh", env=env, cwd=tmp_path)["fresh"]
    got = _run(script, "kernels", env=env, cwd=tmp_path)
    assert got["misses"] >= 1  # the kernels were compiled, not loaded
    assert got["seen"]  # ... and their settings were in force when this thread compiled
    if got["as_kernel"] == fresh:
        pytest.skip("LLVM does not interleave the probe loop on this CPU: nothing to observe")
    assert got["during"] == fresh and got["after"] == fresh
    assert not got["in_force"]


KERNEL_FILE = """
import numba

@numba.njit(fastmath=True)
def kernel(x, y):
    return helper(x, y) + own(x, y)

@numba.njit(fastmath=True)
def own(x, y):
    s = 0.0
    for i in range(x.size):
        s += x[i] * y[i]
    return s

@numba.njit
def broken(x):
    return x.no_such_attribute
"""


def test_numba_code_compiled_inside_a_kernel_gets_llvm_defaults(tmp_path, monkeypatch):
    """A function of another file that a kernel's compilation compiles on first use (as
    numba's own np.zeros or max) is optimised with LLVM's defaults, one of the kernel's
    file with the kernels' settings, and the defaults are back after a kernel fails to
    compile."""
    monkeypatch.setattr(_llvm_options, "_sources", set(_llvm_options._sources))
    kernel_file = str(tmp_path / "kernel.py")
    _llvm_options.compile_under_options(kernel_file)
    default = vector_adds(fresh_dot(str(tmp_path / "other.py")))
    as_kernel = vector_adds(fresh_dot(kernel_file))
    if as_kernel == default:
        pytest.skip("LLVM does not interleave the probe loop on this CPU: nothing to observe")
    helper = fresh_dot(str(tmp_path / "helper.py"))
    ns = {"helper": helper}
    exec(compile(KERNEL_FILE, kernel_file, "exec"), ns)
    assert ns["kernel"](np.ones(9), np.ones(9)) == 18.0  # compiles helper and own inside
    assert vector_adds(helper) == default
    assert vector_adds(ns["own"]) == as_kernel
    assert not _llvm_options.in_force()
    with pytest.raises(TypingError):
        ns["broken"](np.ones(3))
    assert not _llvm_options.in_force()
    assert vector_adds(fresh_dot(str(tmp_path / "after.py"))) == default


CACHE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from kpkg import _families
    from kpkg._kernels import pack_model

    q = np.full((4, 4), 1.0 / 3.0)
    np.fill_diagonal(q, -1.0)
    lam, v = np.linalg.eigh(q)
    mv = pack_model(lam, v, v.T, q, np.full(4, 0.25), 0.0, np.ones(1), np.ones(1))
    kernels = _families.family(mv)  # the F81 family (JC69)
    pm = np.zeros((2, 1, 4, 4))
    kernels.transition_matrices(mv, np.array([0.1, 0.5]), pm)
    out = {"p": pm[1, 0, 0, 0], "out_of_bounds": "read"}
    try:
        kernels.transition_matrices(mv, np.array([0.1]), pm)  # reads t[1]
    except IndexError:
        out["out_of_bounds"] = "IndexError"
    stats = kernels.transition_matrices.stats
    out["hits"] = sum(stats.cache_hits.values())
    out["misses"] = sum(stats.cache_misses.values())
    print(json.dumps(out))
    """
)


def test_cached_kernels_are_recompiled_when_any_source_changes(tmp_path):
    """In a copy of the kernels' files, each process loads a kernel from the cache the
    previous one wrote, until one of :data:`SOURCES` changes.  numba alone would reuse the
    entry after a change of the LLVM settings or of the compile flags (they are in other
    files than the kernel: its own source and bytecode are unchanged): the compile flag
    boundscheck added in ``_families.py`` shows that the code was not stale."""
    pkg = tmp_path / "kpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("_kernels.py", "_families.py", "_llvm_options.py"):
        shutil.copy(PACKAGE / name, pkg / name)
    script = tmp_path / "probe.py"
    script.write_text(CACHE_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def run():
        got = _run(script, env=env, cwd=tmp_path)
        return got["hits"], got["misses"], got["out_of_bounds"], got["p"]

    def edit(name, old, new):
        path = pkg / name
        text = path.read_text()
        assert text.count(old) == 1
        path.write_text(text.replace(old, new))

    jc = 0.25 + 0.75 * np.exp(-4.0 / 3.0 * 0.5)  # P_AA(0.5) under JC69
    hits, misses, oob, p = run()
    assert (hits, misses) == (0, 1) and p == pytest.approx(jc, rel=1e-14)
    assert run()[:3] == (1, 0, "read")  # loaded from the cache; no bounds checks
    edit("_llvm_options.py", '"force-vector-interleave": "1"', '"force-vector-interleave": "2"')
    assert run()[:2] == (0, 1)
    assert run()[:2] == (1, 0)
    edit("_families.py", "njit(nogil=True)", "njit(nogil=True, boundscheck=True)")
    assert run()[:3] == (0, 1, "IndexError")
    edit("_kernels.py", "# offsets in the model vector\n", "# offsets in the model vector.\n")
    hits, misses, oob, p = run()
    assert (hits, misses, oob) == (0, 1, "IndexError") and p == pytest.approx(jc, rel=1e-14)


def test_every_file_the_kernels_depend_on_is_in_the_digest():
    """Each of :data:`SOURCES` imports from this project only other files of
    :data:`SOURCES`, so nothing outside them can change the compiled kernels."""
    for name in _families.SOURCES:
        for node in ast.walk(ast.parse((PACKAGE / name).read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "phylo" for a in node.names), name
            elif isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("phylo"), (name, node.module)
                if node.level == 1:
                    modules = [node.module] if node.module else [a.name for a in node.names]
                    for m in modules:
                        assert f"{m}.py" in _families.SOURCES, (name, m)
                else:
                    assert node.level == 0, (name, node.module)


def test_large_buffers_are_zeroed_and_on_aligned_huge_pages():
    small = zeros((3, 5))
    assert small.shape == (3, 5) and small.dtype == np.float64 and not small.any()
    shape = (64, HUGE_PAGE_MIN_BYTES // (8 * 64) + 101)
    big = zeros(shape)
    assert big.shape == shape and big.dtype == np.float64 and big.flags.c_contiguous
    assert not big.any()
    big[-1, -1] = 1.0  # writable to the last element
    assert big.sum() == 1.0
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert big.ctypes.data % HUGE_PAGE_BYTES == 0
