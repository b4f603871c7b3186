"""NEXUS tree files: the header up to the first tree (taxa block, translate table).

MrBayes ``.t`` and ``.trprobs`` files and BEAST ``.trees`` files are NEXUS files whose trees
block lists ``tree NAME = [&U] NEWICK;`` statements, usually after a ``translate`` table that
maps short keys (``1``, ``2``...) to taxon names.  This module reads everything before the
first tree statement; the statements themselves are found and parsed by the kernels (see
:mod:`phylo.trees.reader`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError, clip
from .taxa import normalise

# a token: a comment's start, a quoted word ('' is a quote in it), punctuation, or a word
# (an apostrophe inside a word belongs to it, as in Newick labels: Brown's_rat)
_TOKEN = re.compile(
    rb"[ \t\r\n\f\v]*(?:(\[)|'((?:[^']|'')*)'|([;=,])"
    rb"|([^ \t\r\n\f\v;=,\[\]'][^ \t\r\n\f\v;=,\[\]]*))"
)


class NeedMoreData(Exception):
    """The header continues past the end of the bytes read so far."""


@dataclass
class NexusHeader:
    """What precedes the first tree statement of a NEXUS file.

    Attributes
    ----------
    trees_start
        Byte offset of the first tree statement (or of the ``end`` of an empty trees block).
    taxlabels
        ``(display names, normalised keys)`` of a TAXA block, or ``None``.
    translate
        ``(display names in table order, {normalised key: normalised name})`` or ``None``.
    translate_line
        Line of the ``translate`` command, for error messages.
    """

    trees_start: int
    taxlabels: tuple[list[str], list[str]] | None = None
    translate: tuple[list[str], dict[str, str]] | None = None
    translate_line: int | None = None
    notes: list[str] = field(default_factory=list)


def is_nexus(head: bytes) -> bool:
    """Whether a file starting with ``head`` is NEXUS."""
    return head.lstrip()[:6].lower() == b"#nexus"


class _Tokens:
    def __init__(self, buf: bytes, path: str, pos: int, at_eof: bool):
        self.buf = buf
        self.path = path
        self.pos = pos
        self.at_eof = at_eof

    def line(self, pos: int) -> int:
        return self.buf.count(b"\n", 0, pos) + 1

    def column(self, pos: int) -> int:
        start = self.buf.rfind(b"\n", 0, pos) + 1
        return len(self.buf[start:pos].decode("utf-8", "replace")) + 1

    def error(self, message: str, pos: int) -> InputError:
        if pos >= len(self.buf):  # at the end of the file
            return InputError(message, self.path, self.line(pos))
        return InputError(message, self.path, self.line(pos), self.column(pos))

    def next(self):
        """Next token as ``(start, text, quoted)``; ``None`` at the end of the data."""
        buf = self.buf
        while True:
            m = _TOKEN.match(buf, self.pos)
            if m is None:
                rest = buf[self.pos :]
                if rest.strip() == b"":
                    if not self.at_eof:
                        raise NeedMoreData
                    return None
                raise self.error("unreadable text", self.pos)
            if m.group(1) is not None:  # comment: skip, nested
                start = m.start(1)
                depth = 0
                i = start
                while i < len(buf):
                    c = buf[i]
                    if c == 91:
                        depth += 1
                    elif c == 93:
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
                if depth != 0:
                    if not self.at_eof:
                        raise NeedMoreData
                    raise self.error("unterminated comment '['", start)
                self.pos = i + 1
                continue
            if m.end() == len(buf) and not self.at_eof:
                raise NeedMoreData  # the token may continue in the next block
            self.pos = m.end()
            if m.group(2) is not None:  # quoted: unescape '' here
                text = m.group(2).decode("utf-8", "replace").replace("''", "'")
                return m.start(2) - 1, text, True
            text = (m.group(3) or m.group(4)).decode("utf-8", "replace")
            return m.start(3) if m.group(3) is not None else m.start(4), text, False

    def expect_semicolon(self, what: str):
        tok = self.next()
        if tok is None:
            raise self.error(f"file ends inside the {what} command", len(self.buf))
        if tok[1] != ";" or tok[2]:
            raise self.error(f"expected ';' after {what}, found {clip(tok[1])!r}", tok[0])

    def skip_command(self):
        while True:
            tok = self.next()
            if tok is None:
                raise self.error("file ends inside a command (missing ';')", len(self.buf))
            if tok[1] == ";" and not tok[2]:
                return


def read_header(buf: bytes, path: str, at_eof: bool) -> NexusHeader:
    """Read a NEXUS header from ``buf``.

    Raises :class:`NeedMoreData` when the first tree statement lies beyond ``buf`` and more
    data may follow, and :class:`~phylo.errors.InputError` for malformed headers.
    """
    toks = _Tokens(buf, path, 0, at_eof)
    first = toks.next()
    if first is None or first[1].lower() != "#nexus":
        raise toks.error("expected '#NEXUS' at the start of the file", 0)
    taxlabels = None
    while True:
        tok = toks.next()
        if tok is None:
            raise toks.error("no trees block found", len(buf))
        word = tok[1].lower()
        if word != "begin":
            raise toks.error(f"expected 'begin', found {clip(tok[1])!r}", tok[0])
        name = toks.next()
        if name is None:
            raise toks.error("file ends after 'begin'", len(buf))
        block = name[1].lower()
        toks.expect_semicolon("begin " + name[1])
        if block == "trees":
            return _read_trees_header(toks, taxlabels)
        if block == "taxa":
            taxlabels = _read_taxa_block(toks)
            continue
        # any other block: skip its commands up to end;
        while True:
            tok = toks.next()
            if tok is None:
                raise toks.error(
                    f"file ends inside block {clip(name[1])!r} (missing 'end;')", len(buf)
                )
            if tok[1].lower() in ("end", "endblock") and not tok[2]:
                toks.expect_semicolon("end")
                break
            if tok[1] != ";":
                toks.skip_command()


def _read_taxa_block(toks: _Tokens) -> tuple[list[str], list[str]]:
    names: list[str] = []
    keys: list[str] = []
    seen: dict[str, int] = {}
    while True:
        tok = toks.next()
        if tok is None:
            raise toks.error("file ends inside the taxa block", len(toks.buf))
        word = tok[1].lower()
        if word in ("end", "endblock"):
            toks.expect_semicolon("end")
            return names, keys
        if word == "taxlabels":
            while True:
                lab = toks.next()
                if lab is None:
                    raise toks.error("file ends inside taxlabels", len(toks.buf))
                if lab[1] == ";" and not lab[2]:
                    break
                key = normalise(lab[1], False)
                if key in seen:
                    raise toks.error(f"taxon {clip(lab[1])!r} is listed twice in taxlabels", lab[0])
                seen[key] = len(names)
                names.append(lab[1])
                keys.append(key)
        elif tok[1] != ";":
            toks.skip_command()


def _read_trees_header(toks: _Tokens, taxlabels) -> NexusHeader:
    translate = None
    translate_line = None
    while True:
        tok = toks.next()
        if tok is None:
            raise toks.error("the trees block holds no trees", len(toks.buf))
        word = tok[1].lower()
        if word in ("tree", "utree", "end", "endblock") and not tok[2]:
            return NexusHeader(tok[0], taxlabels, translate, translate_line)
        if word == "translate":
            translate_line = toks.line(tok[0])
            translate = _read_translate(toks)
        elif tok[1] != ";":
            toks.skip_command()


def _read_translate(toks: _Tokens) -> tuple[list[str], dict[str, str]]:
    names: list[str] = []
    table: dict[str, str] = {}
    used: set[str] = set()
    while True:
        key = toks.next()
        if key is None:
            raise toks.error("file ends inside the translate table", len(toks.buf))
        if key[1] == ";" and not key[2]:
            return names, table
        val = toks.next()
        if val is None:
            raise toks.error("file ends inside the translate table", len(toks.buf))
        if (val[1] in (",", ";")) and not val[2]:
            raise toks.error(f"translate entry {clip(key[1])!r} has no taxon name", val[0])
        k = normalise(key[1], False)
        v = normalise(val[1], False)
        if k in table:
            raise toks.error(f"translate key {clip(key[1])!r} is used twice", key[0])
        if v in used:
            raise toks.error(f"taxon {clip(val[1])!r} appears twice in the translate table", val[0])
        table[k] = v
        used.add(v)
        names.append(val[1])
        sep = toks.next()
        if sep is None:
            raise toks.error("file ends inside the translate table", len(toks.buf))
        if sep[1] == ";" and not sep[2]:
            return names, table
        if sep[1] != "," or sep[2]:
            raise toks.error(
                f"expected ',' or ';' in the translate table, found {clip(sep[1])!r}", sep[0]
            )
