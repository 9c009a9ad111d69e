"""Progress display, the one way every command shows it: a tqdm bar on a terminal, plain lines elsewhere.

A bar redraws itself with carriage returns, which a log file or a pipe keeps as dozens of
partial lines. So a bar is drawn only when stderr is a terminal; otherwise :func:`progress`
returns a :class:`PlainProgress` that writes one ordinary line every ``interval_s`` seconds
(none at all for work that ends sooner) and a last line when it closes if it wrote any.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

PLAIN_INTERVAL_S = 30.0
"""Seconds between two plain progress lines (stderr not a terminal)."""


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stderr by default) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, leave: bool = False, interval_s: float = PLAIN_INTERVAL_S) -> Any:
    """A progress display over ``iterable`` (or updated by hand): tqdm on a terminal, else plain lines.

    Both kinds support iteration, ``update``, ``set_postfix_str``, ``write``, ``close`` and ``with``.
    """
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if is_terminal():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, interval_s=interval_s)


class PlainProgress:
    """Progress as whole lines on stderr, at most one every ``interval_s`` seconds; no carriage returns."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", interval_s: float = PLAIN_INTERVAL_S):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit, self.interval_s = total, desc, unit, interval_s
        self.n = 0
        self.postfix = ""
        self.lines = 0
        self.start = self._last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable if self.iterable is not None else ():
            yield item
            self.update()
        self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more; write a line if ``interval_s`` has passed since the last one."""
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._line(now)

    def set_postfix_str(self, text: str) -> None:
        """What is happening now, shown at the end of the next line."""
        self.postfix = text

    @staticmethod
    def write(text: str) -> None:
        """A line of its own (tqdm.write's counterpart)."""
        print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        """A last line, only if this display wrote any (short work stays silent)."""
        if self.closed:
            return
        self.closed = True
        if self.lines:
            self._line(time.monotonic(), done=True)

    def _line(self, now: float, done: bool = False) -> None:
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        state = "done" if done else "running"
        extra = f", {self.postfix}" if self.postfix and not done else ""
        self.write(f"{self.desc or 'progress'}: {count} {self.unit}{share} {state}, {now - self.start:.0f} s{extra}")
        self.lines += 1
        self._last = now
