"""Where a replayed minibatch's decision comes from: the live runner's protocol on a minibatch clock.

``take(step)`` is called before a minibatch is prepared and returns the decision to apply to
it (or None); ``offer(metrics)`` is called after, with that minibatch's metrics. This mirrors
``FeatureSource._decision`` / ``_request`` and ``ControllerRunner``, except that time is
counted in minibatches so a replay is deterministic: an asynchronous request that finds the
controller idle is decided at once and its answer becomes available ``latency`` minibatches
later; requests made while a decision is in flight or unapplied are dropped and their
metrics carried into the next request's window. Synchronous mode is latency 1.
"""

from __future__ import annotations

import math
import statistics
from typing import Protocol

from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.runner import ControllerRunner, RunnerStats
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.replay.recording import Recording


class DecisionSource(Protocol):
    """A decision per minibatch, from a controller or a recording."""

    def take(self, step: int) -> DecisionOutcome | None:
        """The decision to apply to minibatch ``step``."""

    def offer(self, metrics: MinibatchMetrics) -> None:
        """Minibatch ``metrics.step`` is done."""

    def record(self) -> dict:
        """Request/decision counts for the run's kind=controller record."""

    def close(self) -> None:
        """Release the controller."""


class InlineSource:
    """A cheap controller asked before every minibatch with the metrics since its last request."""

    def __init__(self, controller: Controller, buffer: PersistentBuffer):
        self.runner = ControllerRunner(controller, mode="inline")
        self.buffer = buffer
        self._window: list[MinibatchMetrics] = []

    def take(self, step: int) -> DecisionOutcome | None:
        request = DecisionRequest(step=step, window=self._window, stale=self.buffer.stale_count(),
                                  occupancy=self.buffer.occupancy, capacity=self.buffer.capacity)
        self._window = []
        return self.runner.submit(request)

    def offer(self, metrics: MinibatchMetrics) -> None:
        self._window.append(metrics)

    def record(self) -> dict:
        return stats_record(self.runner.stats)

    def close(self) -> None:
        self.runner.close()


class QueuedSource:
    """An asynchronous/synchronous controller whose answers arrive ``latency`` minibatches after the request."""

    def __init__(self, controller: Controller, latency: int):
        if latency < 1:
            raise ValueError("latency must be >= 1 minibatch: an answer applies to the next minibatch at the earliest")
        self.runner = ControllerRunner(controller, mode="inline")  # decides on the caller's thread, counts stats
        self.latency = latency
        self._pending: DecisionRequest | None = None
        self._carry: list[MinibatchMetrics] = []
        self._answer: DecisionOutcome | None = None
        self._ready_at = 0

    @property
    def stats(self) -> RunnerStats:
        return self.runner.stats

    def take(self, step: int) -> DecisionOutcome | None:
        if self._answer is None or step < self._ready_at:
            return None
        answer, self._answer = self._answer, None
        if self._pending is not None:  # made before this answer was applied: stale
            self.stats.dropped += 1
            self._carry, self._pending = self._pending.window, None
        return answer

    def offer(self, metrics: MinibatchMetrics) -> None:
        request = DecisionRequest(step=metrics.step, window=self._carry + [metrics], stale=metrics.stale,
                                  occupancy=metrics.occupancy, capacity=metrics.capacity)
        self._carry = []
        if self._answer is not None:  # busy: wait in the one-request slot, replacing an older request
            self.stats.requests += 1
            if self._pending is not None:
                self.stats.dropped += 1
                request = request.model_copy(update={"window": self._pending.window + request.window})
            self._pending = request
            return
        self._answer = self.runner.submit(request)
        # Guard answers need no model: live, they arrive before the next minibatch.
        instant = self._answer is not None and self._answer.source == "guard"
        self._ready_at = metrics.step + (1 if instant else self.latency)

    def record(self) -> dict:
        return stats_record(self.stats)

    def close(self) -> None:
        self.runner.close()


def stats_record(stats: RunnerStats) -> dict:
    """The runner fields of a kind=controller record, as ``FeatureSource.summary`` writes them."""
    return {"requests": stats.requests, "dropped": stats.dropped, "decisions": dict(stats.decisions),
            "latencies_s": stats.latencies_s, "controller_wait_s": stats.wait_s}


def measured_latency(recording: Recording) -> int:
    """The live controller's median latency in minibatches of the live run (at least 1)."""
    latencies = recording.controller.get("latencies_s") or []
    n = len(recording.minibatches)
    if not latencies or not n or not recording.live_seconds():
        return 1
    return max(1, math.ceil(statistics.median(latencies) / (recording.live_seconds() / n)))
