"""Opening input files: plain, gzip/bzip2/xz-compressed, or ``-`` for standard input.

Compression is recognised by the file's first bytes, not its name.  Problems a user can
cause (no such file, a directory, an empty file, corrupt compressed data) raise
:class:`~phylo.errors.InputError`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import InputError

CHUNK = 1 << 25  # 32 MiB

_MAGIC = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", lambda f: bz2.BZ2File(f, "rb")),
    (b"\xfd7zXZ\x00", lambda f: lzma.LZMAFile(f, "rb")),
)


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else str(path)


def open_binary(path: str) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing transparently."""
    if path == "-":
        raw: BinaryIO = sys.stdin.buffer
    else:
        path = os.fspath(path)
        if os.path.isdir(path):
            raise InputError("is a directory, expected a file", path)
        try:
            raw = open(path, "rb")
        except FileNotFoundError:
            raise InputError("no such file", path) from None
        except PermissionError:
            raise InputError("permission denied", path) from None
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", path) from None
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    head = buffered.peek(6)[:6]
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return opener(buffered)  # type: ignore[return-value]
    return buffered


def read_chunks(path: str, size: int = CHUNK) -> Iterator[bytes]:
    """Yield the (decompressed) bytes of ``path`` in chunks of about ``size`` bytes."""
    stream = open_binary(path)
    try:
        while True:
            try:
                block = stream.read(size)
            except (EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
                raise InputError(
                    f"corrupt or truncated compressed data ({exc})", display_name(path)
                ) from None
            if not block:
                break
            yield block
    finally:
        if path != "-":
            stream.close()


BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, which some editors put first


class ChunkReader:
    """Read a file into one reusable byte buffer, keeping an unconsumed tail.

    ``buf[:filled]`` holds the bytes not yet consumed; :meth:`consume` drops a prefix and
    :meth:`fill` reads more after what is left.  The buffer grows only when a single
    statement is longer than it.  A UTF-8 byte-order mark at the start of the file is
    dropped.  :meth:`locate` gives the line and column (in characters) of a byte of the
    buffer, counting what was consumed before it.
    """

    def __init__(self, path: str, size: int = CHUNK):
        import numpy as np

        self.path = path
        self.name = display_name(path)
        self._stream = open_binary(path)
        self.buf = np.empty(size, dtype=np.uint8)
        self.filled = 0
        self.at_eof = False
        self.lines_before = 0  # newlines in the consumed bytes
        self.chars_before = 0  # characters of the current line in the consumed bytes
        self.offset = 0  # bytes consumed (after a byte-order mark)
        self._started = False
        self._bom = 0  # length of the byte-order mark dropped

    def fill(self) -> None:
        """Read until the buffer is full or the file ends (grow a full buffer first)."""
        import numpy as np

        if self.at_eof:
            return
        if self.filled == self.buf.shape[0]:
            grown = np.empty(2 * self.buf.shape[0], dtype=np.uint8)
            grown[: self.filled] = self.buf[: self.filled]
            self.buf = grown
        view = memoryview(self.buf)
        while self.filled < self.buf.shape[0]:
            try:
                got = self._stream.readinto(view[self.filled :])
            except (EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
                raise InputError(
                    f"corrupt or truncated compressed data ({exc})", self.name
                ) from None
            if not got:
                self.at_eof = True
                break
            self.filled += got
            if not self._started and self.filled >= 3:
                self._started = True
                if bytes(self.buf[:3]) == BOM:
                    self.buf[: self.filled - 3] = self.buf[3 : self.filled].copy()
                    self.filled -= 3
                    self._bom = 3
        if not self._started and self.at_eof:
            self._started = True
            if bytes(self.buf[: self.filled]) == BOM:
                self.filled = 0

    def consume(self, n: int) -> None:
        """Drop the first ``n`` bytes of the buffer."""
        if self.path == "-":  # standard input cannot be read again to count its lines
            from . import _kernels as K

            lines, chars = K.line_info(self.buf, 0, n)
            self.lines_before += lines
            self.chars_before = chars if lines else self.chars_before + chars
        self.offset += n
        rest = self.filled - n
        if rest:
            self.buf[:rest] = self.buf[n : self.filled].copy()
        self.filled = rest

    def skip_to(self, offset: int) -> None:
        """Drop everything before byte ``offset`` of the file (counted as :attr:`offset`,
        after a byte-order mark) and fill the buffer from there: a plain file seeks, a
        compressed one or standard input reads on."""
        if offset <= self.offset + self.filled:
            self.consume(offset - self.offset)
        elif self.path != "-" and isinstance(self._stream, io.BufferedReader):
            self._stream.seek(offset + self._bom)
            self.offset = offset
            self.filled = 0
            self.at_eof = False
        else:
            while self.offset + self.filled < offset and not self.at_eof:
                self.consume(self.filled)
                self.fill()
            self.consume(min(offset - self.offset, self.filled))
        self.fill()

    def locate(self, pos: int) -> tuple[int, int]:
        """1-based ``(line, column)`` of byte ``pos`` of the buffer.

        Lines are counted only when asked (for a message): the consumed part of a file is
        read again from its start; standard input counts them as it goes.
        """
        from . import _kernels as K

        pos = max(0, min(int(pos), self.filled))
        if self.offset and self.path != "-":
            self.lines_before, self.chars_before = self._count_consumed()
        lines, chars = K.line_info(self.buf, 0, pos)
        return self.lines_before + lines + 1, chars + 1 + (0 if lines else self.chars_before)

    def _count_consumed(self) -> tuple[int, int]:
        """``(newlines, characters of the last line)`` in the consumed bytes."""
        import numpy as np

        from . import _kernels as K

        lines, chars, left = 0, 0, self.offset
        stream = open_binary(self.path)
        try:
            if stream.peek(3)[:3] == BOM:
                stream.read(3)
            while left > 0:
                block = stream.read(min(left, CHUNK))
                if not block:
                    break
                left -= len(block)
                n, c = K.line_info(np.frombuffer(block, np.uint8), 0, len(block))
                lines += n
                chars = c if n else chars + c
        finally:
            stream.close()
        return lines, chars

    @property
    def data(self):
        return self.buf[: self.filled]

    def close(self) -> None:
        if self.path != "-":
            self._stream.close()


def read_text(path: str) -> str:
    """The whole (decompressed) file as text: UTF-8, a byte-order mark ignored, with an
    error naming the line and column of the first byte that is not UTF-8."""
    data = b"".join(read_chunks(path))
    if data.startswith(BOM):
        data = data[3:]
    if not data.strip():
        raise InputError("file is empty", display_name(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"byte 0x{data[exc.start]:02x} is not UTF-8 text (save the file as UTF-8)",
            display_name(path),
            line,
            column,
        ) from None
