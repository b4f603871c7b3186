"""The import graph of ``phylo``, built from the source files' syntax trees, has no loop in
``phylo.sbn``.

Every ``import`` statement counts, at module level or inside a function (an import moved into
a function to dodge a loop is still a loop in the design).  ``from package import name`` is an
edge to the submodule ``package.name`` when there is one, else to the package itself.

Run as a script to print the graph of the whole package and every loop in it::

    python tests/test_import_graph.py
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> source file, for ``phylo`` and the front ends (``phylo.cli``)."""
    out = {}
    for base, prefix in ((root / "phylo", ("phylo",)), (root / "cli", ("phylo", "cli"))):
        for path in sorted(base.rglob("*.py")):
            parts = prefix + path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return name in files and files[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom, files: dict[str, Path]) -> str:
    """The absolute module name a ``from ... import`` statement in ``module`` names."""
    if node.level == 0:
        return node.module or ""
    here = module.split(".")
    base = here if _is_package(module, files) else here[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, files: dict[str, Path]) -> set[str]:
    """The modules of the package that ``module`` imports, anywhere in its source."""
    tree = ast.parse(files[module].read_text(encoding="utf-8"), str(files[module]))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node, files)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in files else base)
    return {m for m in found if m in files and m != module}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over ``phylo`` (the package and its front ends)."""
    files = module_files(root)
    return {m: imports_of(m, files) for m in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted:
    the groups of modules that import each other directly or through others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(out)


def a_loop(graph: dict[str, set[str]], group: Iterable[str]) -> list[str]:
    """One closed path through a group of :func:`cycles` (for a readable message)."""
    group = set(group)
    start = min(group)
    path, seen = [start], {start}
    while True:
        nxt = sorted(graph[path[-1]] & group)
        back = [w for w in nxt if w in seen]
        if back:
            return path[path.index(back[0]) :] + [back[0]]
        path.append(next(w for w in nxt if w not in seen))
        seen.add(path[-1])


def subgraph(graph: dict[str, set[str]], prefix: str) -> dict[str, set[str]]:
    def inside(m: str) -> bool:
        return m == prefix or m.startswith(prefix + ".")

    return {m: {w for w in ws if inside(w)} for m, ws in graph.items() if inside(m)}


# -- tests ---------------------------------------------------------------------------------


def test_the_graph_sees_function_level_and_relative_imports():
    files = module_files()
    assert "phylo.sbn" in files and "phylo.cli.sbn" in files
    graph = import_graph()
    # from . import _kernels as K  ->  the submodule
    assert "phylo.sbn._kernels" in graph["phylo.sbn.support"]
    # from ..trees import bitsets  ->  the submodule; from ..trees import Taxa  ->  the package
    assert "phylo.trees.bitsets" in graph["phylo.sbn.support"]
    assert "phylo.trees" in graph["phylo.sbn.srf"]
    # the front ends import the library inside their commands
    assert "phylo.sbn" in graph["phylo.cli.sbn"]


def test_cycles_finds_a_loop_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "phylo" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "phylo" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("from .b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text("def g():\n    from .c import h\n    return h()\n")
    (pkg / "c.py").write_text("def h():\n    from . import a\n    return a\n")
    (pkg / "d.py").write_text("from phylo.sub import a\n")
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["phylo.sub.a", "phylo.sub.b", "phylo.sub.c"]]
    assert a_loop(graph, cycles(graph)[0]) == [
        "phylo.sub.a",
        "phylo.sub.b",
        "phylo.sub.c",
        "phylo.sub.a",
    ]


def test_sbn_is_a_dag():
    graph = import_graph()
    found = cycles(subgraph(graph, "phylo.sbn"))
    assert not found, "import loops in phylo.sbn: " + "; ".join(
        " -> ".join(a_loop(graph, g)) for g in found
    )


def test_no_loop_in_the_whole_package_passes_through_sbn():
    graph = import_graph()
    through = [g for g in cycles(graph) if any(m.startswith("phylo.sbn") for m in g)]
    assert not through, "import loops through phylo.sbn: " + "; ".join(
        " -> ".join(a_loop(graph, g)) for g in through
    )


def test_the_whole_package_is_a_dag():
    # function-level imports included: a loop hidden in a function today is an import-time
    # loop the day someone moves the import to the top
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import loops: " + "; ".join(" -> ".join(a_loop(graph, g)) for g in found)


def test_the_package_docstring_lists_sbn_modules_in_import_order():
    """phylo/sbn/__init__.py lists every module, each after those it imports."""
    files = module_files()
    doc = ast.get_docstring(ast.parse(files["phylo.sbn"].read_text(encoding="utf-8")))
    listed = re.findall(r"^- :mod:`~(phylo\.sbn\.\w+)`", doc, flags=re.MULTILINE)
    graph = subgraph(import_graph(), "phylo.sbn")
    assert sorted(listed) == sorted(m for m in graph if m != "phylo.sbn")
    for i, m in enumerate(listed):
        later = graph[m] & set(listed[i:])
        assert not later, f"{m} imports {sorted(later)}, listed after it"


def main() -> int:
    graph = import_graph()
    for m in sorted(graph):
        print(m)
        for w in sorted(graph[m]):
            print(f"    -> {w}")
    found = cycles(graph)
    print(f"\n{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(found)} loops")
    for g in found:
        print(f"  loop of {len(g)} modules: " + " -> ".join(a_loop(graph, g)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
