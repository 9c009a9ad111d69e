"""How a controller's decisions reach the buffer: one protocol on three clocks.

Per minibatch the step asks ``decision_for(step)`` for the decision to apply to minibatch
``step`` (before preparing it) and ``offer``s that minibatch's metrics afterwards.
- :class:`InlineChannel`: cheap, deterministic controllers answer on the caller's thread
  before every minibatch, with the metrics since their previous request (baselines, oracle).
- :class:`rudder_agent.controllers.runner.ControllerRunner`: a daemon thread, async or sync.
- :class:`ClockedChannel`: replay's minibatch clock, an answer applies ``latency`` minibatches
  after its request.
- ``rudder_agent.replay.recorded_decisions.RecordedChannel``: the decisions a recorded run applied.

Drop and carry (paper §4.5.1, without its pause/unpause race) live in :class:`RequestSlot`,
written once: the slot holds at most one pending request; a newer one replaces it (the
older is dropped and its metrics carried into the newer one's window); when an answer is
applied, a request still pending was made before it and is stale: dropped, its metrics
carried into the next request. At most one decision is in flight.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from dataclasses import dataclass, field

from typing import TYPE_CHECKING, Protocol

from rudder_agent.decision import DecisionOutcome, DecisionRecord, DecisionRequest, LooksAhead, Unanswered
from rudder_agent.metrics import MinibatchMetrics

if TYPE_CHECKING:
    from rudder_agent.buffer.persistent import PersistentBuffer
    from rudder_agent.controllers.spec import ControllerSpec


class Decider(Protocol):
    """What a channel needs of a controller (rudder_agent.controllers.base.Controller has it)."""

    name: str
    spec: ControllerSpec

    def decide(self, request: DecisionRequest) -> DecisionOutcome | Unanswered:
        """Answer one request (or leave it unanswered, for a controller that answers later)."""

    def close(self) -> None:
        """Release the controller."""


@dataclass
class RunnerStats:
    """What the run summary reports about the controller."""

    requests: int = 0
    dropped: int = 0
    decisions: Counter = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    wait_s: float = 0.0
    cpu_s: float = 0.0
    """CPU time the controller's thread spent deciding (live, threaded channels)."""
    unanswered: Counter = field(default_factory=Counter)
    """Requests left unanswered when decided: ``asked`` (answered later, then counted above), ``busy`` (never)."""
    answered: deque = field(default_factory=deque)
    """DecisionRecords (rank -1) not yet written to the metrics stream; the step drains them."""
    keep_records: bool = True
    """False for controllers asked before every minibatch (their decisions are in the minibatch records)."""

    def record(self, outcome: DecisionOutcome, request: DecisionRequest | None = None) -> None:
        tally = outcome.source.tally
        self.decisions[tally or ("invalid" if not outcome.valid else outcome.decision)] += 1
        if tally is None:  # settled without asking: no answer time to count
            self.latencies_s.append(outcome.latency_s)
        if request is not None and self.keep_records:
            window = request.window
            self.answered.append(DecisionRecord(
                rank=-1, request_step=request.step, first_step=window[0].step if window else request.step,
                last_step=window[-1].step if window else request.step, minibatches=len(window), stale=request.stale,
                occupancy=request.occupancy, capacity=request.capacity, outcome=outcome))

    def as_record(self) -> dict:
        """The runner fields of a run's kind=controller record (and of summary.json)."""
        return {"requests": self.requests, "dropped": self.dropped, "decisions": dict(self.decisions),
                "latencies_s": self.latencies_s, "controller_wait_s": self.wait_s, "controller_cpu_s": self.cpu_s,
                "unanswered": dict(self.unanswered)}


def decide(controller: Decider, request: DecisionRequest, stats: RunnerStats) -> DecisionOutcome | None:
    """Ask the controller, time the answer if it did not, and count it (None: left unanswered, counted apart)."""
    tic = time.perf_counter()
    outcome = controller.decide(request)
    if not isinstance(outcome, DecisionOutcome):
        stats.unanswered[Unanswered(outcome)] += 1
        return None
    if not outcome.latency_s:
        outcome = outcome.model_copy(update={"latency_s": time.perf_counter() - tic})
    stats.record(outcome, request)
    return outcome


class RequestSlot:
    """The one-request slot with drop/carry of stale requests; not thread-safe (callers lock)."""

    def __init__(self, stats: RunnerStats):
        self.stats = stats
        self.pending: DecisionRequest | None = None
        self._carry: list[MinibatchMetrics] = []

    def put(self, request: DecisionRequest) -> None:
        """A new request replaces a pending one (dropped); carried metrics go first in its window."""
        self.stats.requests += 1
        if self.pending is not None:
            self.stats.dropped += 1
            self._carry += self.pending.window
        if self._carry:
            request = request.model_copy(update={"window": self._carry + request.window})
            self._carry = []
        self.pending = request

    def pop(self) -> DecisionRequest | None:
        """The pending request, now in flight."""
        request, self.pending = self.pending, None
        return request

    def answer_applied(self) -> None:
        """An answer is applied: a request made before it is stale (dropped, its metrics carried)."""
        if self.pending is not None:
            self.stats.dropped += 1
            self._carry, self.pending = self.pending.window, None


def request_after(metrics: MinibatchMetrics, outlook: LooksAhead | None = None) -> DecisionRequest:
    """The request a finished minibatch makes: its own metrics, the buffer state it left, the way to look ahead."""
    return DecisionRequest(step=metrics.step, window=[metrics], stale=metrics.stale, occupancy=metrics.occupancy,
                           capacity=metrics.capacity, outlook=outlook)


class DecisionChannel(ABC):
    """Where the step takes decisions from and sends metrics to.

    Args (of the channels that ask a controller after each minibatch):
        opening: applied to the first minibatch, before any answer can arrive (capabilities.Opens).
        outlook: the step's view ahead, handed to the controller with each request.
        replaces_between_answers: the step replaces on minibatches without an answer if that is free
            (ControllerSpec.replaces_between_answers).
    """

    stats: RunnerStats
    label: str
    """How decisions reach the buffer: inline, async, sync or recorded."""
    latency: int | None = None
    """Replay's answer delay in minibatches (None: not on a minibatch clock)."""
    opening: DecisionOutcome | None = None
    outlook: LooksAhead | None = None
    replaces_between_answers: bool = False

    def answers(self, opening: DecisionOutcome | None, outlook: LooksAhead | None,
                replaces_between_answers: bool) -> None:
        """Keep the constructor arguments every asking channel takes (see the class's Args)."""
        self.opening, self.outlook, self.replaces_between_answers = opening, outlook, replaces_between_answers

    def take_opening(self) -> DecisionOutcome | None:
        """The opening decision, once (counted like any other)."""
        outcome, self.opening = self.opening, None
        if outcome is not None:
            self.stats.record(outcome)
        return outcome

    @abstractmethod
    def decision_for(self, step: int) -> tuple[DecisionOutcome | None, float]:
        """The decision to apply to minibatch ``step`` and the seconds waited for it."""

    @abstractmethod
    def offer(self, metrics: MinibatchMetrics) -> None:
        """Minibatch ``metrics.step`` is done."""

    def record(self) -> dict:
        """Request/decision counts for the run's kind=controller record."""
        return self.stats.as_record()

    @abstractmethod
    def close(self) -> None:
        """Release the controller."""


class InlineChannel(DecisionChannel):
    """A cheap controller asked before every minibatch with the metrics since its last request."""

    label = "inline"

    def __init__(self, controller: Decider, buffer: PersistentBuffer):
        self.controller, self.buffer = controller, buffer
        self.stats = RunnerStats(keep_records=False)
        self._window: list[MinibatchMetrics] = []

    def decision_for(self, step: int) -> tuple[DecisionOutcome | None, float]:
        request = DecisionRequest(step=step, window=self._window, stale=self.buffer.stale_count(),
                                  occupancy=self.buffer.occupancy, capacity=self.buffer.capacity)
        self._window = []
        self.stats.requests += 1
        return decide(self.controller, request, self.stats), 0.0

    def offer(self, metrics: MinibatchMetrics) -> None:
        self._window.append(metrics)

    def close(self) -> None:
        self.controller.close()


class ClockedChannel(DecisionChannel):
    """Replay's clock: an answer decided at once becomes available ``latency`` minibatches after its request.

    Guard answers need no model: live, they arrive before the next minibatch, so they apply after 1.
    """

    def __init__(self, controller: Decider, latency: int, mode: str = "async", *,
                 opening: DecisionOutcome | None = None, outlook: LooksAhead | None = None,
                 replaces_between_answers: bool = False):
        if latency < 1:
            raise ValueError("latency must be >= 1 minibatch: an answer applies to the next minibatch at the earliest")
        self.controller, self.latency, self.label = controller, latency, mode
        self.answers(opening, outlook, replaces_between_answers)
        self.stats = RunnerStats()
        self.slot = RequestSlot(self.stats)
        self._answer: DecisionOutcome | None = None
        self._ready_at = 0

    def decision_for(self, step: int) -> tuple[DecisionOutcome | None, float]:
        if self.opening is not None:
            return self.take_opening(), 0.0
        if self._answer is None or step < self._ready_at:
            return None, 0.0
        answer, self._answer = self._answer, None
        self.slot.answer_applied()
        return answer, 0.0

    def offer(self, metrics: MinibatchMetrics) -> None:
        self.slot.put(request_after(metrics, self.outlook))
        if self._answer is not None:  # busy: the request waits in the slot
            return
        self._answer = decide(self.controller, self.slot.pop(), self.stats)
        self._ready_at = metrics.step + (1 if self._answer.source.arrives_next_minibatch else self.latency)

    def close(self) -> None:
        self.controller.close()
