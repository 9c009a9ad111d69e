"""Lets a trainer's gradient all-reduce through a slow link ahead of its feature pulls.

Measured at 200 Mbit/s (docs/benchmarks.md, "Where a minibatch's time goes"): without a buffer the main thread
spent 56% of an epoch waiting for the all-reduce, whose few hundred kB queue behind megabytes of the sampling
thread's pulls in the link's one queue. The main thread closes the gate for its backward pass and all-reduce;
the sampling thread reads in chunks of a few tens of milliseconds of the link and waits at the gate before each
one, so the all-reduce queues behind one chunk at most. What is read does not change, only when.
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

    @contextmanager
    def closed(self) -> Iterator[None]:
        """Pulls wait while the caller (the main thread's backward pass and all-reduce) is inside."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def wait(self) -> float:
        """Wait until the gate is open (at most ``max_wait_s``); the seconds waited."""
        if self._open.is_set():
            return 0.0
        tic = time.perf_counter()
        self._open.wait(self.max_wait_s)
        return time.perf_counter() - tic
