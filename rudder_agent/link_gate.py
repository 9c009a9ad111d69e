"""Lets a trainer's gradient all-reduce through a slow link ahead of its feature pulls.

Measured at 200 Mbit/s (docs/benchmarks.md, "Where a minibatch's time goes"): without a buffer the main thread
spent 56% of an epoch waiting for the all-reduce, whose few hundred kB queue behind megabytes of the sampling
thread's pulls in the link's one queue. The main thread closes the gate when its backward computation ends (DDP launches the
all-reduce then) and opens it when the all-reduce is done; the sampling thread reads in chunks of a few tens of
milliseconds of the link and waits at the gate before each one, so the all-reduce queues behind one chunk at most
and the link carries pulls the rest of the time. What is read does not change, only when.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class LinkGate:
    """Args:
        max_wait_s: the longest a pull waits at the closed gate (the all-reduce is never waited for forever)."""

    def __init__(self, max_wait_s: float = 1.0):
        self.max_wait_s = max_wait_s
        self._open = threading.Event()
        self._open.set()

    def close(self) -> None:
        """Pulls wait from now on (the all-reduce is on its way)."""
        self._open.clear()

    def open(self) -> None:
        """Pulls go on."""
        self._open.set()

    @contextmanager
    def closed(self) -> Iterator[None]:
        """Pulls wait while the caller is inside."""
        self.close()
        try:
            yield
        finally:
            self.open()

    def wait(self) -> float:
        """Wait until the gate is open (at most ``max_wait_s``); the seconds waited."""
        if self._open.is_set():
            return 0.0
        tic = time.perf_counter()
        self._open.wait(self.max_wait_s)
        return time.perf_counter() - tic
