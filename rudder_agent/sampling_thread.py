"""The one thread that samples a trainer's minibatches and fetches their features, in the loader's order.

DGL's random engine is per thread, and ``dgl.seed(s)`` seeds the calling thread's with ``s`` plus that thread's
index among the threads that used an engine so far. Where sampling runs therefore decides what it samples.
The built-in trainer (ahead of training, ``--prefetch P``) and :meth:`rudder_agent.attach.BufferedFeatures.iterate`
(the caller waiting) both sample on this thread, made and seeded the same way, so a user's script run under
``rudder train`` samples the neighbours the built-in trainer samples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import dgl

T = TypeVar("T")


class SamplingThread:
    """Args:
        seed: seeds the thread's DGL generator as it starts (None: DGL's own, random, seed)."""

    def __init__(self, seed: int | None):
        self.seed = seed
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rudder-sample",
                                        initializer=dgl.seed if seed is not None else None,
                                        initargs=(seed,) if seed is not None else ())

    def results(self, prepare: Callable[[], T | None], depth: int) -> Iterator[T]:
        """``prepare()``'s results, made on this thread, until it returns None.

        ``depth``: results made while the caller works on the last one (0: none, the caller waits for each).
        One thread makes them in order, so the depth changes when a result is made, never what it is.
        """
        queue = deque(self._pool.submit(prepare) for _ in range(max(depth, 1)))
        while (item := queue.popleft().result()) is not None:
            if depth:
                queue.append(self._pool.submit(prepare))
            yield item
            if not depth:
                queue.append(self._pool.submit(prepare))
        for rest in queue:  # the rest found the source exhausted
            rest.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
