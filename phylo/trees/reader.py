"""Stream a tree file (NEXUS or Newick, maybe compressed) into canonical topology ids.

The file is read in chunks; tree statements are found and parsed by the kernels, so memory
stays bounded by the chunk size plus one row per unique topology and one id per tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from . import _kernels as K
from .files import CHUNK, ChunkReader
from .newick import ERROR_MESSAGES, kernel_error, labels_of, line_of, spans_to_lengths
from .nexus import NeedMoreData, is_nexus, read_header
from .taxa import Taxa, check_same_taxa


class TopologyIndex:
    """The unique canonical parent arrays seen so far, each with a global id.

    Rows are matched by a 64-bit hash and then compared exactly, so a hash collision can
    never merge two topologies.
    """

    def __init__(self, n_nodes: int):
        self.n_nodes = n_nodes
        self._by_hash: dict[int, list[int]] = {}
        self._rows = np.empty((1024, n_nodes), np.int32)
        self.count = 0

    @property
    def rows(self) -> np.ndarray:
        return self._rows[: self.count]

    def _append(self, row: np.ndarray) -> int:
        if self.count == self._rows.shape[0]:
            grown = np.empty((2 * self.count, self.n_nodes), np.int32)
            grown[: self.count] = self._rows
            self._rows = grown
        self._rows[self.count] = row
        self.count += 1
        return self.count - 1

    def add(self, rows: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """Ids of ``rows`` (adding the new ones)."""
        if rows.shape[0] == 0:
            return np.empty(0, np.int64)
        uh, first, inv = np.unique(hashes, return_index=True, return_inverse=True)
        reps = rows[first]
        if not np.array_equal(rows, reps[inv]):  # a collision inside this chunk: be exact
            keys = rows.view(np.dtype((np.void, 4 * rows.shape[1]))).ravel()
            _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
            reps = rows[first]
            uh = hashes[first]
        ids = np.empty(len(first), np.int64)
        by_hash = self._by_hash
        for j in range(len(first)):
            h = int(uh[j])
            cands = by_hash.get(h)
            if cands is None:
                ids[j] = self._append(reps[j])
                by_hash[h] = [int(ids[j])]
                continue
            for c in cands:
                if np.array_equal(self._rows[c], reps[j]):
                    ids[j] = c
                    break
            else:
                ids[j] = self._append(reps[j])
                cands.append(int(ids[j]))
        return ids[inv.ravel()]


@dataclass
class ReadState:
    """What the files read so far agree on: the taxa and the topologies."""

    rooted: bool
    taxa: Taxa | None = None
    first_path: str | None = None
    index: TopologyIndex | None = None


@dataclass
class FileTrees:
    """The trees of one file, in file order."""

    path: str
    ids: np.ndarray  # topology id of every tree
    weights: np.ndarray | None  # [&W] weights, or None for a raw sample
    lengths: np.ndarray | None = None  # (n_trees, n_nodes) branch lengths when asked
    marked_rooted: int = 0  # trees marked [&R]
    marked_unrooted: int = 0  # trees marked [&U]
    notes: list[str] = field(default_factory=list)

    @property
    def n_trees(self) -> int:
        return int(self.ids.shape[0])


def read_file(
    path: str,
    state: ReadState,
    lengths: bool = False,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> FileTrees:
    """Read every tree of one file into ``state`` (taxa are fixed by the first file)."""
    reader = ChunkReader(path, chunk_size)
    try:
        return _read(reader, state, lengths, progress)
    finally:
        reader.close()


def _read(
    reader: ChunkReader, state: ReadState, lengths: bool, progress: Callable[[int], None] | None
) -> FileTrees:
    name = reader.name
    reader.fill()
    if not bytes(reader.data).strip():
        raise InputError("file is empty", name, 1)
    head = bytes(reader.data[:64])
    nexus = is_nexus(head)
    translate = None
    declared = None
    declared_line = None
    pos = 0
    if nexus:
        while True:
            try:
                header = read_header(bytes(reader.data), name, reader.at_eof)
                break
            except NeedMoreData:
                if reader.at_eof:  # pragma: no cover - read_header reports EOF itself
                    raise InputError("file ends inside the NEXUS header", name) from None
                reader.fill()
        pos = header.trees_start
        if header.translate is not None:
            names, table = header.translate
            declared = (names, list(table.values()))
            translate = table
            declared_line = header.translate_line
        elif header.taxlabels is not None:
            declared = header.taxlabels

    if state.taxa is not None and declared is not None:
        check_same_taxa(
            state.taxa,
            declared[1],
            state.first_path,
            name,
            path=name,
            line=declared_line,
            what="taxa of the translate table" if translate else "taxa",
        )
    elif state.taxa is None and declared is not None:
        if len(declared[0]) < 3:
            raise InputError(f"a tree needs at least 3 taxa, found {len(declared[0])}", name)
        state.taxa = Taxa(declared[0], declared[1], source=name)
        state.first_path = name

    ids_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    len_parts: list[np.ndarray] = []
    n_weighted = 0
    n_plain = 0
    marked = [0, 0]
    table = None
    notes: list[str] = []
    ended = False
    while True:
        arr = reader.data
        at_eof = reader.at_eof
        line_base = reader.lines_before
        cap = int(np.count_nonzero(arr[pos:] == 59)) + 1
        stmt = np.empty(cap, np.int64)
        nw = np.empty(cap, np.int64)
        ends = np.empty(cap, np.int64)
        flags = np.empty((cap, 3), np.int64)
        n, resume, status, epos = K.scan_statements(
            arr, pos, len(arr), nexus, at_eof, stmt, nw, ends, flags
        )
        if status >= 2:
            raise InputError(
                ERROR_MESSAGES.get(status, "malformed trees block"),
                name,
                line_base + line_of(arr, epos),
            )
        if n > 0:
            if state.taxa is None:
                names, keys = labels_of(arr, int(nw[0]), int(ends[0]), name, line_base)
                state.taxa = Taxa(names, keys, source=name)
                state.first_path = name
            if state.index is None:
                nt = len(state.taxa)
                state.index = TopologyIndex(2 * nt - 1 if state.rooted else 2 * nt - 2)
            if table is None:
                table = state.taxa.lookup_table(translate)
            nt = len(state.taxa)
            n_nodes = state.index.n_nodes
            rows = np.empty((n, n_nodes), np.int32)
            hashes = np.empty(n, np.uint64)
            spans = np.empty((n if lengths else 1, n_nodes, 4), np.int64)
            k, err, epos2, aux = K.parse_trees(
                arr,
                nw[:n],
                ends[:n],
                nt,
                table[0],
                table[1],
                state.rooted,
                lengths,
                rows,
                hashes,
                spans,
            )
            if err != K.OK:
                raise kernel_error(
                    err,
                    epos2,
                    aux,
                    arr,
                    state.taxa,
                    name,
                    line_base,
                    start=int(nw[k]),
                    end=int(ends[k]),
                    first_path=state.first_path,
                )
            ids_parts.append(state.index.add(rows, hashes))
            fl = flags[:n]
            has_w = fl[:, 1] >= 0
            n_weighted += int(has_w.sum())
            n_plain += int((~has_w).sum())
            if n_weighted and n_plain:
                bad = int(np.nonzero(~has_w if has_w[0] else has_w)[0][0])
                raise InputError(
                    "some trees carry [&W] weights and others do not",
                    name,
                    line_base + line_of(arr, int(stmt[bad])),
                )
            if n_weighted:
                w = np.empty(n)
                for j in range(n):
                    text = bytes(arr[fl[j, 1] : fl[j, 2]]).decode("ascii", "replace")
                    w[j] = _weight(text)
                    if not w[j] >= 0 or w[j] == np.inf:
                        raise InputError(
                            f"bad tree weight [&W {text[:40]}] (expected a finite number >= 0 "
                            "or a fraction p/q)",
                            name,
                            line_base + line_of(arr, int(stmt[j])),
                        )
                w_parts.append(w)
            marked[0] += int((fl[:, 0] == 1).sum())
            marked[1] += int((fl[:, 0] == 0).sum())
            if lengths:
                bl = spans_to_lengths(arr, spans, name, line_base)
                bl[:, -1] = 0.0
                len_parts.append(bl)
            if progress is not None:
                progress(n)
        if status == 1:
            ended = True
            break
        if at_eof:
            break
        reader.consume(resume)
        pos = 0
        reader.fill()

    if nexus and not ended:
        notes.append(
            f"{name}: the trees block has no 'end;' (is the run still going?); "
            "read every complete tree"
        )
    ids = np.concatenate(ids_parts) if ids_parts else np.empty(0, np.int64)
    if ids.shape[0] == 0:
        raise InputError("no trees in file", name)
    weights = np.concatenate(w_parts) if n_weighted else None
    bl = np.concatenate(len_parts) if lengths else None
    return FileTrees(name, ids, weights, bl, marked[0], marked[1], notes)


def _weight(text: str) -> float:
    """A ``[&W ...]`` weight: a number or a fraction ``p/q``; NaN when it is neither."""
    try:
        if "/" in text:
            a, b = text.split("/", 1)
            return float(a) / float(b)
        return float(text)
    except (ValueError, ZeroDivisionError):
        return float("nan")
