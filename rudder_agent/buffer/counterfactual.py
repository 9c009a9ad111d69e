"""What-if play on ids-only forks of a buffer: what replace and skip would each fetch over the next minibatches.

The oracle (replay) and the agent's What-if node (live and replay) both judge a decision by
playing it forward on a fork; the real buffer is never touched. A fork copies ids, scores and
the keep policy's state, never feature rows: O(capacity) ids plus the policy's access log.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.decision import WhatIf


def fork(engine: BufferEngine) -> BufferEngine:
    """An engine over an ids-only copy of ``engine``'s buffer (slots, scores, id table, candidates) and keep policy."""
    twin = copy.copy(engine)
    if engine.buffer is not None:
        twin.buffer = engine.buffer.ids_only()
    twin.keep = copy.deepcopy(engine.keep)
    return twin


@dataclass(frozen=True)
class Played:
    """What one fork fetched over the minibatches it played."""

    rows: int
    hits: int
    remote: int


def play(engine: BufferEngine, inputs: Sequence[np.ndarray], replace_first: bool, rollout_replace: bool = True,
         windows: Sequence[Sequence[np.ndarray]] | None = None, in_place: bool = False) -> Played:
    """Play ``inputs`` on a fork of ``engine``: the first minibatch with ``replace_first``, the rest with the rollout.

    ``windows[i]``: the look-ahead window minibatch i would see (default: the played minibatches after it).
    ``in_place``: ``engine`` is already a disposable fork; play on it instead of copying it again.
    """
    twin = engine if in_place else fork(engine)
    rows = hits = remote = 0
    for i, ids in enumerate(inputs):
        upcoming = windows[i] if windows is not None else inputs[i + 1:]
        plan = twin.prepare(ids, replace=replace_first if i == 0 else rollout_replace, upcoming=upcoming)
        twin.complete(plan, None)
        rows, hits, remote = rows + plan.counts.comm_rows, hits + plan.counts.hits, remote + plan.counts.remote_inputs
    return Played(rows, hits, remote)


def what_if(engine: BufferEngine, inputs: Sequence[np.ndarray], source: str, disposable: bool = False) -> WhatIf | None:
    """Replace and skip played over ``inputs`` (None when there is nothing to play or no buffer).

    ``disposable``: ``engine`` is a fork nobody else reads; the second branch is played on it (one copy fewer).
    """
    if engine.buffer is None or not len(inputs):
        return None
    r = play(engine, inputs, True)
    s = play(engine, inputs, False, in_place=disposable)
    return WhatIf(source=source, minibatches=len(inputs), remote_inputs=r.remote, replace_rows=r.rows,
                  skip_rows=s.rows, replace_hits=r.hits, skip_hits=s.hits, replace_is_free=not engine.keep.fetches_rows)


class Outlook:
    """One trainer's view ahead: its engine, the minibatches sampled ahead and the most recent ones.

    The step updates it after every minibatch under ``lock``; a controller thread asks
    :meth:`what_if` whenever it decides, and gets counterfactuals on the state of that moment.
    """

    def __init__(self, engine: BufferEngine, past: int = 8):
        self.engine = engine
        self.lock = threading.Lock()
        self.upcoming: list[np.ndarray] = []
        self.recent: deque[np.ndarray] = deque(maxlen=past)

    def advance(self, ids: np.ndarray, upcoming: Sequence[np.ndarray]) -> None:
        """Minibatch ``ids`` is done; ``upcoming`` are sampled after it (call with ``lock`` held)."""
        self.recent.append(ids)
        self.upcoming = list(upcoming)

    @property
    def replacing_is_free(self) -> bool:
        """The keep policy's replacement fetches no extra row (it re-ranks: lfu, lookahead)."""
        return not self.engine.keep.fetches_rows

    def what_if(self) -> WhatIf | None:
        """Counterfactuals over the sampled window, or over the recent minibatches when nothing is sampled ahead."""
        with self.lock:
            inputs, source = (self.upcoming, "window") if self.upcoming else (list(self.recent), "past")
            if self.engine.buffer is None or not inputs:
                return None
            twin = fork(self.engine)  # the state of this moment; the step may go on once the lock is released
        return what_if(twin, inputs, source, disposable=True)
