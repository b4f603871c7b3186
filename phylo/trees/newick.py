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

from ..errors import InputError, clip
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
    K.E_SINGLE_CHILD: "a node has a single child (a sampled ancestor is written as a "
    "taxon on a branch of length zero, or as a node with one child labelled with a taxon)",
    K.E_POLYTOMY: "tree is not binary (a node has more than two children); "
    "a binary tree is required",
    K.E_ROOT3: "tree is not rooted (its root has three children) but a rooted tree was asked for",
    K.E_NO_SEMICOLON: "truncated: the tree does not end with ';'",
    K.E_TOO_MANY_NODES: "tree has more nodes than a binary tree on these taxa",
    K.E_TRAILING: "unexpected text after the end of the tree",
    K.E_STMT_EQUALS: "expected '=' after the tree's name",
    K.E_STMT_COMMAND: "expected a 'tree' statement or 'end;' in the trees block",
    K.E_STMT_NAME: "tree statement without a name",
    K.E_ROW_CELLS: "this row has another number of tab-separated cells than the header",
    K.E_ROW_ITERATION: "expected a whole number in the iteration column",
}


def line_of(buf: bytes | np.ndarray, pos: int) -> int:
    """1-based line number of byte ``pos``."""
    if isinstance(buf, np.ndarray):
        return int(np.count_nonzero(buf[:pos] == 10)) + 1
    return buf.count(b"\n", 0, pos) + 1


def position(buf: np.ndarray, pos: int) -> tuple[int, int]:
    """1-based ``(line, column)`` of byte ``pos`` of ``buf`` (column in characters)."""
    arr = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, np.uint8)
    pos = max(0, min(int(pos), arr.shape[0]))
    lines, chars = K.line_info(arr, 0, pos)
    return lines + 1, chars + 1


def excerpt(buf, pos: int, width: int = 24) -> str:
    """The text around byte ``pos`` on its line, for a message: up to ``width`` characters
    on each side, ``<HERE>`` where the problem is, ``...`` where the line goes on."""
    data = bytes(buf) if not isinstance(buf, (bytes, bytearray)) else buf
    pos = max(0, min(int(pos), len(data)))
    lo = max(data.rfind(b"\n", 0, pos) + 1, pos - 4 * width)
    hi = data.find(b"\n", pos)
    hi = len(data) if hi < 0 else hi
    hi = min(hi, pos + 4 * width)
    before = data[lo:pos].decode("utf-8", "replace").replace("\t", " ").replace("\r", " ")
    before = before.lstrip() if lo == data.rfind(b"\n", 0, pos) + 1 else before
    after = data[pos:hi].decode("utf-8", "replace").replace("\t", " ").replace("\r", " ")
    head = "..." if len(before) > width or lo > 0 and data[lo - 1 : lo] != b"\n" else ""
    tail = "..." if len(after) > width or hi < len(data) and data[hi : hi + 1] != b"\n" else ""
    text = head + before[-width:] + "<HERE>" + after[:width] + tail
    return text if before.strip() or after.strip() else ""


def kernel_error(
    code: int,
    pos: int,
    aux: int,
    arr: np.ndarray,
    taxa: Taxa,
    path: str,
    locate=None,
    start: int | None = None,
    end: int | None = None,
    first_path: str | None = None,
) -> InputError:
    """Turn a kernel's error code into an :class:`InputError` with file, line, column and
    the text around the problem.

    ``locate(pos)`` gives the ``(line, column)`` of a byte of ``arr`` (default: counted from
    the start of ``arr``).
    """
    line, column = (locate or (lambda p: position(arr, p)))(pos)
    msg = ERROR_MESSAGES.get(code, f"malformed tree (code {code})")
    if code == K.E_UNKNOWN:
        label = bytes(arr[pos:aux]).decode("utf-8", "replace")
        quoted = label.startswith("'")
        shown = label[1:-1].replace("''", "'") if quoted else label
        where = f" of {first_path}" if first_path else ""
        return InputError(
            f"unknown taxon {clip(shown)!r} (not among the {len(taxa)} taxa{where})",
            path,
            line,
            column,
        )
    elif code == K.E_DUPLICATE:
        msg = f"taxon {clip(taxa.names[aux])!r} appears twice in one tree"
    elif code == K.E_MISSING and start is not None:
        found = _labels(arr, start, end, taxa)
        missing = [taxa.names[i] for i in range(len(taxa)) if i not in found]
        shown = ", ".join(repr(clip(x)) for x in missing[:5]) + (" ..." if len(missing) > 5 else "")
        return InputError(f"tree has {aux} of the {len(taxa)} taxa; missing: {shown}", path, line)
    near = excerpt(arr, pos)
    return InputError(msg + (f"; near: {near}" if near else ""), path, line, column)


def _labels(arr, start, end, taxa) -> set[int]:
    out = np.empty((2 * len(taxa) + 4, 3), np.int64)
    n, _, _ = K.leaf_labels(arr, start, end + 1, out)
    found = set()
    for s, e, f in out[:n]:
        q = f & 1
        text = bytes(arr[s:e]).decode("utf-8", "replace")
        found.add(taxa.index(text[1:-1] if q else text, bool(q)))
    return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def labels_of(
    arr: np.ndarray, start: int, end: int, path: str, locate=None
) -> tuple[list[str], list[str]]:
    """Display names and keys of the leaves of one Newick string (to discover taxa).

    ``locate(pos)`` gives the ``(line, column)`` of a byte of ``arr`` for messages.
    """
    locate = locate or (lambda p: position(arr, p))
    cap = max(64, (end - start) // 2 + 4)
    out = np.empty((cap, 3), np.int64)
    n, err, pos = K.leaf_labels(arr, start, end + 1, out)
    if err != K.OK:
        near = excerpt(arr, pos)
        raise InputError(
            ERROR_MESSAGES.get(err, "malformed tree") + (f"; near: {near}" if near else ""),
            path,
            *locate(pos),
        )
    names, keys = [], []
    seen = {}
    for s, e, f in out[:n]:
        q = f & 1
        text = bytes(arr[s:e]).decode("utf-8", "replace")
        if f & 2 and not q and _is_number(text):
            continue  # a number on a node with one child: a support value, not a taxon
        name = text[1:-1].replace("''", "'") if q else text
        key = normalise(name, False)
        if key in seen:
            raise InputError(f"taxon {clip(name)!r} appears twice in one tree", path, *locate(s))
        seen[key] = len(names)
        names.append(name)
        keys.append(key)
    if len(names) < 3:
        raise InputError(
            f"a tree needs at least 3 taxa, found {len(names)}", path, locate(start)[0]
        )
    return names, keys


def spans_to_lengths(
    arr: np.ndarray, spans: np.ndarray, path: str = "<string>", locate=None
) -> np.ndarray:
    """Convert byte spans ``(..., 4)`` of branch lengths to floats (NaN where absent)."""
    from ._kernels_floats import parse

    locate = locate or (lambda p: position(arr, p))
    flat = spans.reshape(-1, 4)
    out = np.full(flat.shape[0], np.nan)
    # a sampled ancestor's branch (K.ZERO_LENGTH): zero, joined like any other length
    zero = (flat[:, 0] == K.ZERO_LENGTH) | (flat[:, 2] == K.ZERO_LENGTH)
    out[zero] = 0.0
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
                        f"bad branch length {clip(t.decode('ascii', 'replace'))!r}",
                        path,
                        *locate(int(a)),
                    ) from None
            raise  # pragma: no cover
        if col == 0:
            out[idx] = vals
        else:
            out[idx] = np.where(np.isnan(out[idx]), 0.0, out[idx]) + vals
    return out.reshape(spans.shape[:-1])


def parse_arrays(
    text: str,
    taxa=None,
    rooted: bool = False,
    path: str = "<string>",
    where: tuple[int, int] = (1, 1),
) -> tuple[Taxa, np.ndarray, np.ndarray | None]:
    """Parse one Newick tree into ``(taxa, canonical parent array, branch lengths or None)``.

    See :func:`phylo.trees.parse_newick`, which wraps the result in a
    :class:`~phylo.trees.Tree`; ``where`` is the ``(line, column)`` of the text in ``path``.
    """
    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    if not stripped.endswith(";"):
        stripped += ";"
    data = stripped.encode("utf-8")
    arr = np.frombuffer(data, dtype=np.uint8)
    line0, col0 = where
    lead_lines = text[:lead].count("\n")
    if lead_lines:
        line0, col0 = line0 + lead_lines, 1 + len(text[:lead]) - text[:lead].rfind("\n") - 1
    else:
        col0 += lead

    def locate(pos):
        line, column = position(arr, pos)
        return line0 + line - 1, (column + col0 - 1 if line == 1 else column)

    # skip leading [&R]/[&U] comments
    flags = np.full((1, 3), -1, np.int64)
    start = K._statement_prefix(arr, 0, len(arr), flags, 0)
    if start < 0:
        raise InputError(ERROR_MESSAGES[K.E_COMMENT], path, *locate(-start - 1))
    end = len(arr) - 1
    if taxa is None:
        names, keys = labels_of(arr, start, end, path, locate)
        taxa = Taxa(names, keys, source=None if path == "<string>" else path)
    elif not isinstance(taxa, Taxa):
        taxa = Taxa(list(taxa))
    n = len(taxa)
    if n < 3:
        raise InputError(f"a tree needs at least 3 taxa, found {n}", path, line0)
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
        np.empty(1, np.int8),
    )
    if err != K.OK:
        raise kernel_error(err, pos, aux, arr, taxa, path, locate, start=start, end=end)
    lengths = spans_to_lengths(arr, spans[0], path, locate)
    lengths[-1] = 0.0
    body = lengths[:-1]
    if not (spans[0, :-1, 0] >= 0).any() and not (spans[0, :-1, 2] >= 0).any():
        bl = None  # no length written (a sampled ancestor's zero is implied, not written)
    elif np.isnan(body).any():
        raise InputError("branch lengths are given for some edges but not for others", path, line0)
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
