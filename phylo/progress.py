"""A progress line on standard error: done / total, rate and ETA.

Silent when standard error is not a terminal or when ``quiet`` is set, so batch logs stay
clean.  Updates are throttled to a few per second.

The rate (and the ETA from it) counts from the first update on: the first unit of work
often includes one-off costs (on a first run, compiling the kernels takes seconds), which
would otherwise make the line read "0 iterations/s".  Until a second update there is no
rate to show.
"""

from __future__ import annotations

import sys
import time


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class Progress:
    """Report progress of ``total`` units of work (``total=None`` when unknown).

    Use as a context manager; call :meth:`update` with the number of units just done.
    """

    def __init__(
        self,
        description: str,
        total: int | None = None,
        unit: str = "",
        quiet: bool = False,
        stream=None,
        interval: float = 0.2,
    ):
        self.description = description
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = (not quiet) and getattr(self.stream, "isatty", lambda: False)()
        self.interval = interval
        self.done = 0
        self.start = time.monotonic()
        self._first: tuple[float, int] | None = None  # time and count at the first update
        self._last = 0.0
        self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def rate(self) -> float | None:
        """Units per second since the first update (``None`` before a second one)."""
        if self._first is None:
            return None
        t1, d1 = self._first
        elapsed = time.monotonic() - t1
        if self.done <= d1 or elapsed <= 0:
            return None
        return (self.done - d1) / elapsed

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.rate()
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 20)
            eta_s = _fmt_time((self.total - self.done) / rate) if rate else "?"
            return (
                f"{self.description}: [{bar:<20}] {self.done}/{self.total}{unit} "
                f"{100 * frac:3.0f}% elapsed {_fmt_time(elapsed)} ETA {eta_s}"
            )
        if rate is None:
            return f"{self.description}: {self.done}{unit}"
        per_s = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
        return f"{self.description}: {self.done}{unit} ({per_s}{unit}/s)"

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._first is None:
            self._first = (time.monotonic(), self.done)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.interval or (self.total and self.done >= self.total):
            self._last = now
            text = self.line()
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self._width = len(text)

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
