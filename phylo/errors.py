"""One exception hierarchy for the whole library.

Every error a user can cause by giving the wrong input is an :class:`InputError`, which
knows the file, line and column where the problem is.  The command-line front ends catch
:class:`PhyloError` and print its one-line message with exit status 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class PhyloError(Exception):
    """Base class of every error the library raises on purpose."""


class InputError(PhyloError, ValueError):
    """Bad input: a file, a tree string, an option value.

    Parameters
    ----------
    message
        What was wrong and, where possible, what was expected.
    path
        The file (or ``"<stdin>"``, ``"<string>"``) the problem is in.
    line, column
        1-based position of the problem, when known.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column

    def located(
        self, path: str | None = None, line: int | None = None, column: int | None = None
    ) -> InputError:
        """Return a copy with missing location fields filled in."""
        return InputError(
            self.message,
            self.path if self.path is not None else path,
            self.line if self.line is not None else line,
            self.column if self.column is not None else column,
        )

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        return where + self.message


class ModelError(PhyloError):
    """A fitted model or numerical setting that cannot be used as asked."""


def clip(text: str, limit: int = 60) -> str:
    """``text`` cut to at most ``limit`` characters for a message (a taxon name of 100,000
    characters must not fill the terminal): the start, ``...`` and the full length."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 20, 10)]}... ({len(text)} characters)"
