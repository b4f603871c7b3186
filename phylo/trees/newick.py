"""Newick strings: parse one tree into arrays, write arrays as a tree, and the parser's
error messages.

Supported: branch lengths (or none), quoted labels (``'Homo sapiens'``, with ``''`` for a
quote), ``[...]`` comments anywhere (BEAST's ``[&rate=...]`` metadata included), internal
node labels such as support values (ignored), ``[&R]``/``[&U]`` before the tree.  Trees must
be binary: an unrooted tree may have a trifurcating root or be rooted on an edge; a rooted
tree has a bifurcating root.

Bulk reading of files is in :mod:`phylo.trees.reader`; :func:`phylo.trees.parse_newick`
wraps :func:`parse_arrays` in a :class:`~phylo.trees.Tree`.  This module works on arrays
only and does not import the tree class.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import _kernels as K
from .taxa import Taxa, normalise, quote

ERROR_MESSAGES = {
    K.E_COMMENT: "unterminated comment '['",
    K.E_SUBTREE: "expected '(' or a taxon name",
    K.E_CLOSE: "unbalanced parentheses: ')' without a matching '('",
    K.E_OPEN: "unbalanced parentheses: '(' not closed before the end of the tree",
    K.E_AFTER_NODE: "expected ',', ')', ':' or ';'",
    K.E_QUOTE: "unterminated quoted label",
    K.E_LENGTH: "expected a branch length after ':'",
    K.E_UNKNOWN: "unknown taxon",
    K.E_DUPLICATE: "taxon appears twice in one tree",
    K.E_MISSING: "tree lacks some taxa",
    K.E_SINGLE_CHILD: "a node has a single child",
    K.E_POLYTOMY: "tree is not binary (a node has more than two children); "
    "a binary tree is required",
    K.E_ROOT3: "tree is not rooted (its root has three children) but a rooted tree was asked for",
    K.E_NO_SEMICOLON: "truncated: the tree does not end with ';'",
    K.E_TOO_MANY_NODES: "tree has more nodes than a binary tree on these taxa",
    K.E_TRAILING: "unexpected text after the end of the tree",
    K.E_STMT_EQUALS: "expected '=' after the tree's name",
    K.E_STMT_COMMAND: "expected a 'tree' statement or 'end;' in the trees block",
    K.E_STMT_NAME: "tree statement without a name",
}


def line_of(buf: bytes | np.ndarray, pos: int) -> int:
    """1-based line number of byte ``pos``."""
    if isinstance(buf, np.ndarray):
        return int(np.count_nonzero(buf[:pos] == 10)) + 1
    return buf.count(b"\n", 0, pos) + 1


def kernel_error(
    code: int,
    pos: int,
    aux: int,
    arr: np.ndarray,
    taxa: Taxa,
    path: str,
    line_base: int = 0,
    start: int | None = None,
    end: int | None = None,
    first_path: str | None = None,
) -> InputError:
    """Turn a kernel's error code into an :class:`InputError` with file and line."""
    line = line_base + line_of(arr, pos)
    msg = ERROR_MESSAGES.get(code, f"malformed tree (code {code})")
    if code == K.E_UNKNOWN:
        label = bytes(arr[pos:aux]).decode("utf-8", "replace")
        quoted = label.startswith("'")
        shown = label[1:-1].replace("''", "'") if quoted else label
        where = f" of {first_path}" if first_path else ""
        msg = f"unknown taxon {shown!r} (not among the {len(taxa)} taxa{where})"
    elif code == K.E_DUPLICATE:
        msg = f"taxon {taxa.names[aux]!r} appears twice in one tree"
    elif code == K.E_MISSING and start is not None:
        found = _labels(arr, start, end, taxa)
        missing = [taxa.names[i] for i in range(len(taxa)) if i not in found]
        shown = ", ".join(repr(x) for x in missing[:5]) + (" ..." if len(missing) > 5 else "")
        msg = f"tree has {aux} of the {len(taxa)} taxa; missing: {shown}"
    return InputError(msg, path, line)


def _labels(arr, start, end, taxa) -> set[int]:
    out = np.empty((2 * len(taxa) + 4, 3), np.int64)
    n, _, _ = K.leaf_labels(arr, start, end + 1, out)
    found = set()
    for s, e, q in out[:n]:
        text = bytes(arr[s:e]).decode("utf-8", "replace")
        found.add(taxa.index(text[1:-1] if q else text, bool(q)))
    return found


def labels_of(
    arr: np.ndarray, start: int, end: int, path: str, line_base: int = 0
) -> tuple[list[str], list[str]]:
    """Display names and keys of the leaves of one Newick string (to discover taxa)."""
    cap = max(64, (end - start) // 2 + 4)
    out = np.empty((cap, 3), np.int64)
    n, err, pos = K.leaf_labels(arr, start, end + 1, out)
    if err != K.OK:
        raise InputError(
            ERROR_MESSAGES.get(err, "malformed tree"), path, line_base + line_of(arr, pos)
        )
    names, keys = [], []
    seen = {}
    for s, e, q in out[:n]:
        text = bytes(arr[s:e]).decode("utf-8", "replace")
        name = text[1:-1].replace("''", "'") if q else text
        key = normalise(name, False)
        if key in seen:
            raise InputError(
                f"taxon {name!r} appears twice in one tree", path, line_base + line_of(arr, s)
            )
        seen[key] = len(names)
        names.append(name)
        keys.append(key)
    if len(names) < 3:
        raise InputError(
            f"a tree needs at least 3 taxa, found {len(names)}",
            path,
            line_base + line_of(arr, start),
        )
    return names, keys


def spans_to_lengths(
    arr: np.ndarray, spans: np.ndarray, path: str = "<string>", line_base: int = 0
) -> np.ndarray:
    """Convert byte spans ``(..., 4)`` of branch lengths to floats (NaN where absent)."""
    from ._kernels_floats import parse

    flat = spans.reshape(-1, 4)
    out = np.full(flat.shape[0], np.nan)
    for col in (0, 2):
        have = flat[:, col] >= 0
        if not have.any():
            continue
        idx = np.nonzero(have)[0]
        # most numbers convert in the kernel (correctly rounded); the rest as before
        vals, ok = parse(arr, flat[idx, col], flat[idx, col + 1])
        slow = np.nonzero(~ok)[0]
        texts = [bytes(arr[a:b]) for a, b in flat[idx[slow]][:, col : col + 2]]
        try:
            if texts:
                vals[slow] = np.array(texts, dtype=np.bytes_).astype(np.float64)
        except ValueError:
            for (a, _), t in zip(flat[idx[slow]][:, col : col + 2], texts):
                try:
                    float(t)
                except ValueError:
                    raise InputError(
                        f"bad branch length {t.decode('ascii', 'replace')!r}",
                        path,
                        line_base + line_of(arr, int(a)),
                    ) from None
            raise  # pragma: no cover
        if col == 0:
            out[idx] = vals
        else:
            out[idx] = np.where(np.isnan(out[idx]), 0.0, out[idx]) + vals
    return out.reshape(spans.shape[:-1])


def parse_arrays(
    text: str, taxa=None, rooted: bool = False, path: str = "<string>"
) -> tuple[Taxa, np.ndarray, np.ndarray | None]:
    """Parse one Newick tree into ``(taxa, canonical parent array, branch lengths or None)``.

    See :func:`phylo.trees.parse_newick`, which wraps the result in a
    :class:`~phylo.trees.Tree`.
    """
    stripped = text.strip()
    if not stripped.endswith(";"):
        stripped += ";"
    data = stripped.encode("utf-8")
    arr = np.frombuffer(data, dtype=np.uint8)
    # skip leading [&R]/[&U] comments
    flags = np.full((1, 3), -1, np.int64)
    start = K._statement_prefix(arr, 0, len(arr), flags, 0)
    if start < 0:
        raise InputError(ERROR_MESSAGES[K.E_COMMENT], path, 1)
    end = len(arr) - 1
    if taxa is None:
        names, keys = labels_of(arr, start, end, path)
        taxa = Taxa(names, keys, source=None if path == "<string>" else path)
    elif not isinstance(taxa, Taxa):
        taxa = Taxa(list(taxa))
    n = len(taxa)
    if n < 3:
        raise InputError(f"a tree needs at least 3 taxa, found {n}", path)
    hashes, tix = taxa.lookup_table()
    n_nodes = 2 * n - 1 if rooted else 2 * n - 2
    parent = np.empty((1, n_nodes), np.int32)
    h = np.empty(1, np.uint64)
    spans = np.empty((1, n_nodes, 4), np.int64)
    k, err, pos, aux = K.parse_trees(
        arr,
        np.array([start], np.int64),
        np.array([end], np.int64),
        n,
        hashes,
        tix,
        rooted,
        True,
        parent,
        h,
        spans,
    )
    if err != K.OK:
        raise kernel_error(err, pos, aux, arr, taxa, path, start=start, end=end)
    lengths = spans_to_lengths(arr, spans[0], path)
    lengths[-1] = 0.0
    body = lengths[:-1]
    if np.isnan(body).all():
        bl = None
    elif np.isnan(body).any():
        raise InputError("branch lengths are given for some edges but not for others", path)
    else:
        bl = lengths
    return taxa, parent[0], bl


def write_newick(
    parent: np.ndarray,
    names,
    lengths: np.ndarray | None = None,
    rooted: bool = False,
    precision: int | None = None,
) -> str:
    """Newick string of a canonical tree.

    ``lengths[v]`` is the length of the edge above node ``v``; ``precision`` digits after
    the point (default: the shortest repr that reads back exactly).
    """
    n_nodes = parent.shape[0]
    n = len(names)
    children: list[list[int]] = [[] for _ in range(n_nodes)]
    for v in range(n_nodes - 1):
        children[parent[v]].append(v)
    tokens = [quote(x) for x in names]

    def fmt(x: float) -> str:
        return repr(float(x)) if precision is None else f"{x:.{precision}f}"

    out: list[str] = []
    # iterative to allow deep trees
    stack: list[tuple[int, int]] = [(n_nodes - 1, 0)]
    while stack:
        v, state = stack.pop()
        if v < n:
            out.append(tokens[v])
            if lengths is not None:
                out.append(":" + fmt(lengths[v]))
            continue
        kids = children[v]
        if state < len(kids):
            out.append("(" if state == 0 else ",")
            stack.append((v, state + 1))
            stack.append((kids[state], 0))
        else:
            out.append(")")
            if lengths is not None and v != n_nodes - 1:
                out.append(":" + fmt(lengths[v]))
    return ("[&R] " if rooted else "") + "".join(out) + ";"
