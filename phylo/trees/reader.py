"""Stream a tree file (NEXUS, Newick or a RevBayes tree trace, maybe compressed) into
canonical topology ids.

The file is read in chunks; tree statements are found and parsed by the kernels, so memory
stays bounded by the chunk size plus one row per unique topology and one id per tree.

Formats, recognised by content:

* **NEXUS** (MrBayes ``.t``/``.trprobs``, BEAST ``.trees``): ``tree NAME = [&U] NEWICK;``
  statements after an optional translate table.  Tree names such as ``gen.1000``
  (MrBayes) or ``STATE_1000`` (BEAST) are MCMC state numbers.
* **RevBayes tree traces**: a tab-separated table whose header starts with ``Iteration``;
  the tree column is the first whose cell in the first row holds a Newick string, and the
  iterations are the MCMC state numbers (they must increase).
* **Newick**: ``NEWICK;`` one after another (one per line, or not), e.g. bootstrap trees or
  IQ-TREE ``.ufboot`` files; no state numbers.

:func:`read_file` reads every tree's topology (and, if asked, its branch lengths);
:func:`stream_lengths` reads a file again for the branch lengths of chosen trees, chunk by
chunk, so that per-split summaries never need every tree's lengths at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, clip
from . import _kernels as K
from . import _kernels_index as KI
from .files import CHUNK, ChunkReader
from .newick import ERROR_MESSAGES, excerpt, kernel_error, labels_of, spans_to_lengths
from .nexus import NeedMoreData, is_nexus, read_header
from .taxa import Taxa, check_same_taxa, normalise

#: Trees whose tips are all within this fraction of the tree's height of the youngest tip
#: are ultrametric; a tip this close to the youngest is extant (``extant_only``).
HEIGHT_TOLERANCE = 1e-4

#: Tree names that carry an MCMC state number: MrBayes ``gen.1000``, BEAST ``STATE_1000``.
_STATE_NAME = re.compile(r"^(?:gen|state|rep|sample|iter(?:ation)?)[._]?(\d+)$", re.IGNORECASE)

_STATEMENTS_PER_SCAN = 1 << 15


class TopologyIndex:
    """The unique canonical parent arrays seen so far, each with a global id.

    A hash table (:func:`phylo.trees._kernels_index.index_rows`): rows are matched by a
    64-bit hash and then compared exactly, so a hash collision can never merge two
    topologies.  The rows live in one array that grows by a quarter when full.
    """

    def __init__(self, n_nodes: int):
        self.n_nodes = n_nodes
        self._store = np.empty((1024, n_nodes), np.int32)
        self._slot_hash = np.zeros(4096, np.uint64)
        self._slot_id = np.full(4096, -1, np.int64)
        self.count = 0

    @property
    def rows(self) -> np.ndarray:
        return self._store[: self.count]

    def add(self, rows: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """Ids of ``rows`` (adding the new ones)."""
        n = rows.shape[0]
        need = self.count + n
        if need > self._store.shape[0]:
            # in place (realloc moves the pages of a large block instead of copying them,
            # so growing never holds the rows twice); no view of the store is kept
            rows_now = max(need, self._store.shape[0] * 5 // 4)
            self._store.resize((rows_now, self.n_nodes), refcheck=False)
        if 2 * need > self._slot_hash.shape[0]:
            size = self._slot_hash.shape[0]
            while 2 * need > size:
                size *= 2
            new_hash = np.zeros(size, np.uint64)
            new_id = np.full(size, -1, np.int64)
            KI.rehash(self._slot_hash, self._slot_id, new_hash, new_id)
            self._slot_hash, self._slot_id = new_hash, new_id
        ids = np.empty(n, np.int64)
        rows = np.ascontiguousarray(rows, dtype=np.int32)
        self.count = KI.index_rows(
            rows, hashes, self._slot_hash, self._slot_id, self._store, self.count, ids
        )
        return ids

    def take(self, order: np.ndarray) -> np.ndarray:
        """The rows ``order`` (a permutation of the ids), reordered in place: the index is
        spent afterwards.  Needs no second copy of the rows."""
        rows = self._store[: self.count]
        if order.shape[0] != self.count:
            return rows[order]
        KI.permute_rows(rows, np.ascontiguousarray(order, dtype=np.int64))
        self._slot_hash = self._slot_id = self._store = None
        return rows


@dataclass
class Reduce:
    """How trees are reduced to some of their taxa (``extant_only``, ``drop``): the taxa of
    the files (``full``), for each its index among the kept taxa or -1 (``keep``), and
    whether each tree is checked to have the kept taxa as its extant ones (``extant``)."""

    full: Taxa
    keep: np.ndarray
    extant: bool


@dataclass
class ReadState:
    """What the files read so far agree on: the taxa and the topologies.

    With ``extant_only`` or ``drop``, ``taxa`` are the kept taxa (those of the topologies)
    and ``reduce.full`` all the taxa of the files.
    """

    rooted: bool
    taxa: Taxa | None = None
    first_path: str | None = None
    index: TopologyIndex | None = None
    extant_only: bool = False
    drop: tuple[str, ...] = ()
    reduce: Reduce | None = None

    @property
    def reducing(self) -> bool:
        return self.extant_only or bool(self.drop)


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
    mcmc: bool = False  # the trees carry MCMC state numbers
    states: tuple[int, int] | None = None  # (first state, step) when evenly spaced
    with_lengths: int = 0  # trees with a length on every branch
    beast: bool = False  # tree names as BEAST writes them (STATE_n)
    ultrametric: bool = False  # the first tree is rooted and ultrametric
    format: str = "newick"  # "nexus", "newick" or "revbayes"
    # (n_trees, 2) positions of each Newick string and its ';' in the (decompressed) file,
    # when asked (to read branch lengths again without scanning the file)
    where: np.ndarray | None = None

    @property
    def n_trees(self) -> int:
        return int(self.ids.shape[0])


# -- the statements of a file ---------------------------------------------------------------


@dataclass
class _Chunk:
    """Complete tree statements in ``reader.data``."""

    arr: np.ndarray
    stmt: np.ndarray  # start of each statement (for line numbers)
    newick: np.ndarray  # start of its Newick string
    end: np.ndarray  # its ';'
    flags: np.ndarray | None  # NEXUS/Newick: (rooted flag, weight span, name span)
    iters: np.ndarray | None  # RevBayes: the iteration of each row
    parsed: tuple | None = None  # (rows, hashes, with-lengths flags) when already parsed


class _Statements:
    """Open a tree file, recognise its format and read its header; then :meth:`chunks`
    yields the complete statements of each chunk of the file."""

    def __init__(self, path: str, chunk_size: int, name: str | None = None):
        self.reader = ChunkReader(path, chunk_size)
        if name is not None:
            self.reader.name = name
        self.name = self.reader.name
        self.translate = None  # NEXUS: {key: name}
        self.declared = None  # (names, keys) of a translate table or taxa block
        self.declared_line = None
        self.declared_what = "taxa"
        self.ended = False
        self.notes: list[str] = []
        # (n_taxa, label table, rooted): parse topologies while scanning (set once the taxa
        # are known; see chunks)
        self.parse_with = None
        try:
            self._open()
        except BaseException:
            self.reader.close()
            raise

    def close(self) -> None:
        self.reader.close()

    def locate(self, pos: int) -> tuple[int, int]:
        return self.reader.locate(pos)

    def error(self, message: str, pos: int, near: bool = False) -> InputError:
        line, column = self.locate(pos)
        if near:
            text = excerpt(self.reader.data, pos)
            message += f"; near: {text}" if text else ""
        return InputError(message, self.name, line, column)

    def _open(self) -> None:
        reader = self.reader
        reader.fill()
        while not reader.at_eof and not bytes(reader.data).strip():
            reader.fill()  # blank space before the content: read on (the buffer grows)
        if not bytes(reader.data).strip():
            raise InputError("file is empty", self.name, 1)
        head = bytes(reader.data[:4096]).lstrip()
        self.pos = 0
        if is_nexus(head):
            self.format = "nexus"
            self._nexus_header()
        elif self._first_cell(head).lower() == b"iteration":
            self.format = "revbayes"
            self._trace_header()
        else:
            self.format = "newick"
            if b"\t" in head.split(b"\n", 1)[0] and not head.startswith((b"(", b"[")):
                self.notes.append("tab")  # for a better message if parsing fails

    @staticmethod
    def _first_cell(head: bytes) -> bytes:
        return head.split(b"\n", 1)[0].split(b"\t", 1)[0].strip()

    def _nexus_header(self) -> None:
        reader = self.reader
        while True:
            try:
                header = read_header(bytes(reader.data), self.name, reader.at_eof)
                break
            except NeedMoreData:
                if reader.at_eof:  # pragma: no cover - read_header reports EOF itself
                    raise InputError("file ends inside the NEXUS header", self.name) from None
                reader.fill()
        self.pos = header.trees_start
        taxa_block = header.taxlabels
        if header.translate is not None:
            names, table = header.translate
            self.translate = table
            self.declared_line = header.translate_line
            self.declared_what = "taxa of the translate table"
            if taxa_block is not None:
                # a translate table names taxa of the TAXA block, and only those
                known = set(taxa_block[1])
                unknown = [n for n in names if normalise_key(n) not in known]
                if unknown:
                    shown = ", ".join(repr(clip(x)) for x in unknown[:5])
                    more = f" ... ({len(unknown) - 5} more)" if len(unknown) > 5 else ""
                    raise InputError(
                        "the translate table names taxa that the taxa block does not list: "
                        f"{shown}{more}",
                        self.name,
                        header.translate_line,
                    )
                if len(names) == len(taxa_block[0]):
                    self.declared = (names, [normalise_key(n) for n in names])
                else:  # the trees write the other taxa of the block by name
                    self.declared = taxa_block
                    self.declared_what = "taxa"
            else:
                self.declared = (names, [normalise_key(n) for n in names])
        elif taxa_block is not None:
            self.declared = taxa_block

    def _trace_header(self) -> None:
        reader = self.reader
        while True:
            data = bytes(reader.data)
            lines = data.split(b"\n")
            rows = [i for i, ln in enumerate(lines[:-1]) if ln.strip()]
            if len(rows) >= 2 or reader.at_eof:
                break
            reader.fill()
        lines = bytes(reader.data).split(b"\n")
        rows = [i for i, ln in enumerate(lines) if ln.strip()]
        header_no = rows[0]
        columns = [c.strip() for c in lines[header_no].rstrip(b"\r").split(b"\t")]
        self.columns = [c.decode("utf-8", "replace") for c in columns]
        self.pos = sum(len(ln) + 1 for ln in lines[: header_no + 1])
        self.iter_col = 0
        if len(rows) < 2:
            raise InputError("the table has a header but no rows", self.name, header_no + 1)
        first = lines[rows[1]].rstrip(b"\r").split(b"\t")
        if len(first) != len(columns):
            raise InputError(
                f"{ERROR_MESSAGES[K.E_ROW_CELLS]} ({len(columns)})", self.name, rows[1] + 1, 1
            )
        trees = [i for i, c in enumerate(first) if c.strip().startswith((b"(", b"[&"))]
        if not trees:
            raise InputError(
                "no cell of the first row holds a Newick tree (a RevBayes tree trace has one "
                "tree column)",
                self.name,
                rows[1] + 1,
            )
        self.tree_col = trees[0]
        if len(trees) > 1:
            shown = ", ".join(repr(clip(self.columns[i], 30)) for i in trees if i < len(columns))
            self.notes.append(
                f"{self.name}: several columns hold trees ({shown}); read "
                f"{clip(self.columns[self.tree_col], 30)!r}"
            )
        if "replicate_id" in (c.lower() for c in self.columns):
            self.notes.append(
                f"{self.name}: the rows of all replicates (column Replicate_ID) are read as "
                "one run; give each replicate its own file to compare them"
            )

    def chunks(self):
        """Yield a :class:`_Chunk` of the complete statements in each chunk of the file."""
        reader = self.reader
        pos = self.pos
        cap = _STATEMENTS_PER_SCAN
        stmt = np.empty(cap, np.int64)
        nw = np.empty(cap, np.int64)
        ends = np.empty(cap, np.int64)
        if self.format == "revbayes":
            iters = np.empty(cap, np.int64)
            flags = None
        else:
            iters = None
            flags = np.empty((cap, 5), np.int64)
        rows = hashes = haslen = None
        again = False
        while True:
            arr = reader.data
            at_eof = reader.at_eof
            parsed = None
            if self.format == "revbayes":
                n, resume, status, epos = K.scan_rows(
                    arr,
                    pos,
                    len(arr),
                    at_eof,
                    len(self.columns),
                    self.tree_col,
                    self.iter_col,
                    stmt,
                    nw,
                    ends,
                    iters,
                )
            elif self.parse_with is not None and not again:
                nt, table, rooted = self.parse_with
                if rows is None:
                    # at most one tree per 4 n bytes (labels, commas and parentheses); pages
                    # are touched only for the trees found
                    m = min(cap, reader.buf.shape[0] // (4 * nt) + 1)
                    rows = np.empty((m, 2 * nt - 1 if rooted else 2 * nt - 2), np.int32)
                    hashes = np.empty(m, np.uint64)
                    haslen = np.empty(m, np.int8)
                n, resume, status, epos = K.scan_parse_trees(
                    arr, pos, len(arr), self.format == "nexus", at_eof, stmt, nw, ends, flags,
                    nt, table[0], table[1], rooted, rows, hashes, haslen,
                )  # fmt: skip
                parsed = (rows[:n], hashes[:n], haslen[:n])
                if status == K.AGAIN:
                    # from this statement on, the buffer is read the usual way (errors, or
                    # a statement that the buffer ends in)
                    again = True
                    if n > 0:
                        yield _Chunk(arr, stmt[:n], nw[:n], ends[:n], flags[:n], None, parsed)
                    pos = resume
                    continue
                if status == 0 and n == rows.shape[0] and n < cap:
                    # the rows are full: go on in the same buffer
                    yield _Chunk(arr, stmt[:n], nw[:n], ends[:n], flags[:n], None, parsed)
                    pos = resume
                    continue
            else:
                n, resume, status, epos = K.scan_statements(
                    arr, pos, len(arr), self.format == "nexus", at_eof, stmt, nw, ends, flags
                )
            if status >= 2:
                msg = ERROR_MESSAGES.get(status, "malformed trees block")
                if status == K.E_ROW_CELLS:
                    msg = f"{msg} ({len(self.columns)})"
                raise self.error(msg, epos, near=status != K.E_ROW_CELLS)
            if n > 0:
                yield _Chunk(
                    arr,
                    stmt[:n],
                    nw[:n],
                    ends[:n],
                    flags[:n] if flags is not None else None,
                    iters[:n] if iters is not None else None,
                    parsed,
                )
            if status == 1:
                self.ended = True
                return
            if n == cap:  # the statement array is full: go on in the same buffer
                pos = resume
                continue
            if at_eof:
                return
            reader.consume(resume)
            pos = 0
            again = False
            reader.fill()


def normalise_key(name: str) -> str:
    return normalise(name, False)


# -- parsing --------------------------------------------------------------------------------


def _parse(src: _Statements, chunk: _Chunk, sel, state: ReadState, lengths: bool, table):
    """Parse the statements ``sel`` of a chunk: ``(rows, hashes, with_lengths flags,
    lengths or None)`` on the state's taxa (reduced to the kept taxa with ``extant_only`` or
    ``drop``)."""
    arr = chunk.arr
    starts = chunk.newick[sel]
    ends = chunk.end[sel]
    n = starts.shape[0]
    red = state.reduce
    full = red.full if red is not None else state.taxa
    nt = len(full)
    check = red is not None and red.extant
    rooted = state.rooted or check
    want = lengths or check
    n_nodes = 2 * nt - 1 if rooted else 2 * nt - 2
    rows = np.empty((n, n_nodes), np.int32)
    hashes = np.empty(n, np.uint64)
    spans = np.empty((n if want else 1, n_nodes, 4), np.int64)
    haslen = np.empty(n, np.int8)
    k, err, epos, aux = K.parse_trees(
        arr, starts, ends, nt, table[0], table[1], rooted, want, rows, hashes, spans, haslen
    )
    if err != K.OK:
        if check and err == K.E_ROOT3:
            raise src.error(_NOT_TIME_TREE, int(starts[k]))
        raise kernel_error(
            err,
            epos,
            aux,
            arr,
            full,
            src.name,
            src.locate,
            start=int(starts[k]),
            end=int(ends[k]),
            first_path=state.first_path,
        )
    bl = None
    if want:
        bl = spans_to_lengths(arr, spans, src.name, src.locate)
        bl[:, -1] = 0.0
    if red is None:
        return rows, hashes, haslen, bl
    if check:
        bad = np.nonzero(haslen != 1)[0]
        if bad.size:
            raise src.error(_NO_LENGTHS, int(starts[bad[0]]))
        bad = np.nonzero(~np.isfinite(bl).all(axis=1))[0]
        if bad.size:
            raise src.error(_NOT_FINITE, int(starts[bad[0]]))
    m = len(state.taxa)
    out_nodes = 2 * m - 1 if state.rooted else 2 * m - 2
    out = np.empty((n, out_nodes), np.int32)
    out_len = np.empty((n, out_nodes))
    out_hash = np.empty(n, np.uint64)
    t, taxon, err = K.prune_taxa(
        rows,
        bl if bl is not None else np.zeros(rows.shape),
        nt,
        red.keep,
        m,
        state.rooted,
        HEIGHT_TOLERANCE if check else -1.0,
        out,
        out_len,
        out_hash,
    )
    if t < n:
        where = int(starts[t])
        if err == -1:
            name = clip(full.names[taxon])
            now = "extant" if red.keep[taxon] < 0 else "not extant"
            before = "not extant" if red.keep[taxon] < 0 else "extant"
            raise src.error(
                f"--extant-only: taxon {name!r} is {now} in this tree but {before} in the "
                f"first tree of {state.first_path} (extant: a tip within "
                f"{HEIGHT_TOLERANCE:g} of the tree's height of the youngest)",
                where,
            )
        raise src.error(ERROR_MESSAGES.get(err, "malformed tree"), where)
    out_len[:, -1] = 0.0
    return out, out_hash, haslen, out_len if lengths else None


_NOT_TIME_TREE = (
    "--extant-only needs rooted time trees (a bifurcating root), but this tree's root has "
    "three children"
)
_NO_LENGTHS = "--extant-only needs branch lengths on every branch (to find the extant taxa)"
_NOT_FINITE = "--extant-only needs finite branch lengths (to find the extant taxa)"


def _reduce(src: _Statements, chunk: _Chunk, state: ReadState, full: Taxa, table) -> None:
    """Fix the kept taxa: those not dropped and, with ``extant_only``, extant in the first
    tree (checked against given taxa)."""
    nt = len(full)
    drop = {normalise_key(x) for x in state.drop}
    unknown = [x for x in state.drop if full.index(x) < 0]
    if unknown:
        shown = ", ".join(repr(clip(x)) for x in unknown[:5])
        raise InputError(f"taxa to drop that the trees do not have: {shown}", src.name)
    kept = np.array([k not in drop for k in full.keys])
    if state.extant_only:
        k, err, epos, aux, rows, spans, haslen = _parse_first(chunk, nt, table)
        if err != K.OK:
            if err == K.E_ROOT3:
                raise src.error(_NOT_TIME_TREE, int(chunk.newick[0]))
            raise kernel_error(err, epos, aux, chunk.arr, full, src.name, src.locate)
        if haslen[0] != 1:
            raise src.error(_NO_LENGTHS, int(chunk.newick[0]))
        bl = spans_to_lengths(chunk.arr, spans, src.name, src.locate)[0]
        bl[-1] = 0.0
        if not np.isfinite(bl).all():
            raise src.error(_NOT_FINITE, int(chunk.newick[0]))
        heights = _tip_heights(rows[0], bl, nt)
        kept &= heights <= HEIGHT_TOLERANCE * heights.max()
    if state.taxa is None:
        idx = np.nonzero(kept)[0]
        if idx.shape[0] < 3:
            what = "extant taxa (tips at the height of the youngest)"
            raise src.error(
                f"the first tree has {idx.shape[0]} {what if state.extant_only else 'taxa left'}"
                "; a topology needs at least 3",
                int(chunk.stmt[0]),
            )
        state.taxa = Taxa(
            [full.names[i] for i in idx], [full.keys[i] for i in idx], source=src.name
        )
        state.first_path = src.name
    keep = np.array([state.taxa.index_of_key(k) for k in full.keys], np.int64)
    differ = np.nonzero((keep >= 0) != kept)[0]
    if differ.size:
        i = int(differ[0])
        why = "extant in the first tree" if state.extant_only else "not dropped"
        raise src.error(
            f"taxon {clip(full.names[i])!r} is {why if kept[i] else 'left out'}, but the "
            f"taxa of {state.first_path} {'do not hold' if kept[i] else 'hold'} it",
            int(chunk.stmt[0]),
        )
    state.reduce = Reduce(full, keep, state.extant_only)


def _tip_heights(parent: np.ndarray, lengths: np.ndarray, n: int) -> np.ndarray:
    """Heights of the tips of a rooted canonical tree: the largest root-to-tip distance
    minus each tip's (NaN where lengths are not finite)."""
    dist = _root_distances(parent, lengths)
    with np.errstate(invalid="ignore"):
        return dist[:n].max() - dist[:n]


def _parse_first(chunk: _Chunk, nt: int, table):
    """The first tree of a chunk parsed as written (rooted, with its length spans):
    ``(k, error, position, aux, rows, spans, haslen)`` of :func:`K.parse_trees`."""
    rows = np.empty((1, 2 * nt - 1), np.int32)
    spans = np.empty((1, 2 * nt - 1, 4), np.int64)
    haslen = np.empty(1, np.int8)
    k, err, epos, aux = K.parse_trees(
        chunk.arr, chunk.newick[:1], chunk.end[:1], nt, table[0], table[1], True, True, rows,
        np.empty(1, np.uint64), spans, haslen,
    )  # fmt: skip
    return k, err, epos, aux, rows, spans, haslen


def _ultrametric(src: _Statements, chunk: _Chunk, taxa: Taxa, table) -> bool:
    """Whether the first tree of a chunk is rooted (bifurcating root), has every branch
    length and is ultrametric: every tip's height within :data:`HEIGHT_TOLERANCE` of the
    root's height of the youngest tip."""
    nt = len(taxa)
    k, err, _, _, rows, spans, haslen = _parse_first(chunk, nt, table)
    if err != K.OK or haslen[0] != 1:
        return False
    try:
        bl = spans_to_lengths(chunk.arr, spans, src.name, src.locate)[0]
    except InputError:
        return False
    bl[-1] = 0.0
    heights = _tip_heights(rows[0], bl, nt)
    root_height = float(heights.max() + _root_distances(rows[0], bl)[:nt].min())
    return root_height > 0 and bool(heights.max() <= HEIGHT_TOLERANCE * root_height)


def _root_distances(parent: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    N = parent.shape[0]
    dist = np.zeros(N)
    for v in range(N - 2, -1, -1):
        dist[v] = dist[parent[v]] + lengths[v]
    return dist


def _weights(src: _Statements, chunk: _Chunk) -> np.ndarray | None:
    """The ``[&W]`` weights of a chunk's statements (None when none has one); an error when
    some have one and others not, or one is not a finite number >= 0."""
    fl = chunk.flags
    if fl is None:
        return None
    has_w = fl[:, 1] >= 0
    if not has_w.any():
        return None
    if not has_w.all():
        bad = int(np.nonzero(~has_w)[0][0])
        raise src.error("some trees carry [&W] weights and others do not", int(chunk.stmt[bad]))
    n = fl.shape[0]
    w = np.empty(n)
    arr = chunk.arr
    for j in range(n):
        text = bytes(arr[fl[j, 1] : fl[j, 2]]).decode("ascii", "replace")
        w[j] = _weight(text)
        if not w[j] >= 0 or w[j] == np.inf:
            raise src.error(
                f"bad tree weight [&W {clip(text, 40)}] (expected a finite number >= 0 "
                "or a fraction p/q)",
                int(fl[j, 1]),
            )
    return w


def _weight(text: str) -> float:
    """A ``[&W ...]`` weight: a number or a fraction ``p/q``; NaN when it is neither."""
    try:
        if "/" in text:
            a, b = text.split("/", 1)
            return float(a) / float(b)
        return float(text)
    except (ValueError, ZeroDivisionError):
        return float("nan")


def _state_number(arr: np.ndarray, flags_row) -> int | None:
    a, b = int(flags_row[3]), int(flags_row[4])
    if a < 0:
        return None
    m = _STATE_NAME.match(bytes(arr[a:b]).decode("utf-8", "replace"))
    return int(m.group(1)) if m else None


def _setup(src: _Statements, chunk: _Chunk, state: ReadState):
    """Fix the taxa (from the header or the first tree) and return the label table."""
    name = src.name
    if src.declared is not None:
        names, keys = src.declared
        if state.reduce is not None:
            reference = state.reduce.full
        elif state.reducing:
            reference = None
        else:
            reference = state.taxa
        if reference is not None:
            check_same_taxa(
                reference,
                names,
                state.first_path,
                name,
                path=name,
                line=src.declared_line,
                what=src.declared_what,
            )
        if len(names) < 3:
            raise InputError(f"a tree needs at least 3 taxa, found {len(names)}", name)
        declared = Taxa(names, keys, source=name)
    else:
        declared = None
    if state.reducing:
        full = state.reduce.full if state.reduce is not None else declared
        if full is None:
            full_names, full_keys = labels_of(
                chunk.arr, int(chunk.newick[0]), int(chunk.end[0]), name, src.locate
            )
            full = Taxa(full_names, full_keys, source=name)
        table = full.lookup_table(src.translate)
        if state.reduce is None:
            _reduce(src, chunk, state, full, table)
        return table
    if state.taxa is None:
        if declared is not None:
            state.taxa = declared
        else:
            names, keys = labels_of(
                chunk.arr, int(chunk.newick[0]), int(chunk.end[0]), name, src.locate
            )
            state.taxa = Taxa(names, keys, source=name)
        state.first_path = name
    try:
        return state.taxa.lookup_table(src.translate)
    except InputError as exc:
        raise exc.located(name, src.declared_line) from None


def read_file(
    path: str,
    state: ReadState,
    lengths: bool = False,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    name: str | None = None,
    where: bool = False,
) -> FileTrees:
    """Read every tree of one file into ``state`` (taxa are fixed by the first file);
    ``name`` is the file's name in messages (default: ``path``); with ``where``, also the
    position of every tree in the file (``FileTrees.where``, for :func:`stream_lengths`)."""
    src = _Statements(path, chunk_size, name)
    try:
        return _read(src, state, lengths, progress, where)
    except InputError as exc:
        if "tab" in src.notes and exc.line in (None, 1) and "expected '('" in exc.message:
            raise InputError(
                "a table, not trees: RevBayes tree traces start with an 'Iteration' column "
                "(tables of phylo, with a 'newick' column, are read by marglik --trees)",
                src.name,
                1,
            ) from None
        raise
    finally:
        src.close()


def _read(src: _Statements, state: ReadState, lengths: bool, progress, where) -> FileTrees:
    name = src.name
    ids_parts: list[np.ndarray] = []
    where_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    len_parts: list[np.ndarray] = []
    weighted = None
    marked = [0, 0]
    with_lengths = 0
    states: list[int] = []
    named = False  # NEXUS tree names with MCMC state numbers
    iters_last = None
    table = None
    first = True
    ultrametric = False
    beast = False
    for chunk in src.chunks():
        if table is None:
            table = _setup(src, chunk, state)
            if state.index is None:
                nt = len(state.taxa)
                state.index = TopologyIndex(2 * nt - 1 if state.rooted else 2 * nt - 2)
        n = chunk.newick.shape[0]
        if first and not state.rooted and state.reduce is None:
            ultrametric = _ultrametric(src, chunk, state.taxa, table)
        if chunk.parsed is not None:
            (rows, hashes, haslen), bl = chunk.parsed, None
        else:
            rows, hashes, haslen, bl = _parse(src, chunk, slice(None), state, lengths, table)
        if first and not lengths and not state.reducing and src.format != "revbayes":
            # the taxa are known: parse the topologies of the next chunks while scanning
            src.parse_with = (len(state.taxa), table, state.rooted)
        ids_parts.append(state.index.add(rows, hashes).astype(np.int32))
        with_lengths += int(np.count_nonzero(haslen == 1))
        w = _weights(src, chunk)
        if first:
            weighted = w is not None
        elif (w is not None) != weighted:
            raise src.error("some trees carry [&W] weights and others do not", int(chunk.stmt[0]))
        if w is not None:
            w_parts.append(w)
        if chunk.flags is not None:
            marked[0] += int((chunk.flags[:, 0] == 1).sum())
            marked[1] += int((chunk.flags[:, 0] == 0).sum())
            if first:  # the first tree's name says whether the trees carry state numbers
                a, b = int(chunk.flags[0, 3]), int(chunk.flags[0, 4])
                beast = a >= 0 and bytes(chunk.arr[a:b]).upper().startswith(b"STATE_")
                named = _state_number(chunk.arr, chunk.flags[0]) is not None
            if named and len(states) < 2:  # the first two give the sampling interval
                for j in range(min(n, 2 - len(states))):
                    s = _state_number(chunk.arr, chunk.flags[j])
                    if s is None:
                        break
                    states.append(s)
        if chunk.iters is not None:
            it = chunk.iters
            if iters_last is not None:
                it = np.concatenate([[iters_last], it])
            back = np.nonzero(np.diff(it) <= 0)[0]
            if back.size:
                j = int(back[0]) - (1 if iters_last is not None else 0) + 1
                raise src.error(
                    f"the iteration goes from {int(it[back[0]])} to {int(it[back[0] + 1])}: "
                    "iterations must increase (two runs in one file? give each its own file)",
                    int(chunk.stmt[j]),
                )
            if len(states) < 2:
                states.extend(int(x) for x in chunk.iters[: 2 - len(states)])
            iters_last = int(chunk.iters[-1])
        if lengths:
            len_parts.append(bl)
        if where:
            offset = src.reader.offset
            where_parts.append(np.stack([chunk.newick + offset, chunk.end + offset], axis=1))
        if progress is not None:
            progress(n)
        first = False

    if src.format == "nexus" and not src.ended:
        src.notes.append(
            f"{name}: the trees block has no 'end;' (is the run still going?); "
            "read every complete tree"
        )
    ids = np.concatenate(ids_parts) if ids_parts else np.empty(0, np.int32)
    if ids.shape[0] == 0:
        raise InputError("no trees in file", name)
    mcmc = src.format == "revbayes" or named
    step = None
    if mcmc and len(states) >= 2 and states[1] > states[0]:
        step = (states[0], states[1] - states[0])
    return FileTrees(
        name,
        ids,
        np.concatenate(w_parts) if weighted else None,
        np.concatenate(len_parts) if lengths else None,
        marked[0],
        marked[1],
        [n for n in src.notes if n != "tab"],
        mcmc,
        step,
        with_lengths,
        beast,
        ultrametric,
        src.format,
        np.concatenate(where_parts) if where else None,
    )


def stream_lengths(
    path: str,
    state: ReadState,
    where: np.ndarray,
    trace: np.ndarray,
    parents: np.ndarray,
    chunk_size: int = CHUNK,
    name: str | None = None,
):
    """Read a file again for the branch lengths of chosen trees, chunk by chunk.

    ``where`` holds, for each chosen tree in file order, the positions of its Newick string
    and of its ';' in the (decompressed) file (``FileTrees.where``, recorded as the file was
    first read), so that only those trees are parsed and nothing is scanned again;
    ``trace`` is their topology indices into ``parents`` (as read before).  Yields
    ``(ids, lengths, first)`` per chunk: the topology indices, the ``(k, N)`` branch lengths
    and the position of the first of them among the chosen trees.  A tree whose topology
    is not the one read before means the file changed: an error.
    """
    where = np.asarray(where, dtype=np.int64).reshape(-1, 2)
    total = where.shape[0]
    if trace.shape[0] != total:
        raise ValueError("one position per tree of the trace")
    starts, ends = where[:, 0], where[:, 1]
    src = _Statements(path, chunk_size, name)
    reader = src.reader
    try:
        table = None
        done = 0  # chosen trees so far
        while done < total:
            base = reader.offset
            filled = reader.filled
            # the chosen trees whose ';' is in the buffer
            stop = int(np.searchsorted(ends, base + filled, side="left"))
            stop = min(stop, done + _STATEMENTS_PER_SCAN)
            if stop > done and starts[done] >= base:
                newick = starts[done:stop] - base
                end = ends[done:stop] - base
                chunk = _Chunk(reader.data, newick, newick, end, None, None)
                if table is None:
                    table = _setup(src, chunk, state)
                rows, _, haslen, bl = _parse(src, chunk, slice(None), state, True, table)
                ids = trace[done:stop]
                if not np.array_equal(rows, parents[ids]):
                    bad = int(np.nonzero((rows != parents[ids]).any(axis=1))[0][0])
                    raise src.error(
                        "the file changed after it was read (this tree differs); read it again",
                        int(newick[bad]),
                    )
                yield ids, bl, done
                done = stop
                continue
            if reader.at_eof or starts[done] < base:
                raise InputError("the file changed after it was read (fewer trees)", src.name)
            # drop what comes before the next chosen tree and read on (a plain file seeks
            # past the trees not chosen)
            reader.skip_to(int(starts[done]))
    finally:
        src.close()
