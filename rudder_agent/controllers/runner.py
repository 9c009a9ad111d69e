"""Runs a controller beside the prefetcher: inline, or in a daemon thread (async or sync).

Protocol (paper §4.5.1, without its pause/unpause race): the prefetcher submits one
request per minibatch. The request slot holds at most one pending request; a newer one
replaces it (the older is counted as dropped). At most one decision is in flight, and
the controller answers nothing new until its last answer has been taken and applied:
requests made before that are stale and dropped. Dropped requests' metrics are carried
into the next request's window, so the agent's context loses nothing. In asynchronous
mode the prefetcher only polls and never waits; in synchronous mode it waits for the
answer to its previous request before preparing the next minibatch (the wait is measured).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from rudder_agent.controllers.base import Controller
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.log import get_logger

log = get_logger(__name__)


@dataclass
class RunnerStats:
    """What the run summary reports about the controller."""

    requests: int = 0
    dropped: int = 0
    decisions: Counter = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    wait_s: float = 0.0
    applied_steps: list[int] = field(default_factory=list)

    def record(self, outcome: DecisionOutcome) -> None:
        kind = "guarded" if outcome.source == "guard" else ("invalid" if not outcome.valid else outcome.decision)
        self.decisions[kind] += 1
        if outcome.source != "guard":
            self.latencies_s.append(outcome.latency_s)


class ControllerRunner:
    """Owns the controller's thread and the request/response hand-off."""

    def __init__(self, controller: Controller, mode: str = "async"):
        self.controller = controller
        self.mode = "inline" if controller.inline else mode
        self.stats = RunnerStats()
        self._cv = threading.Condition()
        self._pending: DecisionRequest | None = None
        self._carry: list = []
        self._answer: DecisionOutcome | None = None
        self._busy = False
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if self.mode != "inline":
            self._thread = threading.Thread(target=self._serve, name=f"rudder-{controller.name}", daemon=True)
            self._thread.start()

    def submit(self, request: DecisionRequest) -> DecisionOutcome | None:
        """Hand a request over; inline controllers answer at once, the others later."""
        self.stats.requests += 1
        if self.mode == "inline":
            outcome = self._decide(request)
            self._answer = outcome
            return outcome
        with self._cv:
            if self._pending is not None:
                self.stats.dropped += 1
                self._carry += self._pending.window
            if self._carry:
                request = request.model_copy(update={"window": self._carry + request.window})
                self._carry = []
            self._pending = request
            self._cv.notify_all()
        return None

    def take(self) -> DecisionOutcome | None:
        """The newest unapplied answer: never blocks in async mode, waits for it in sync mode."""
        if self.mode == "sync":
            tic = time.perf_counter()
            with self._cv:
                while (self._pending is not None or self._busy) and self._error is None and not self._closed:
                    self._cv.wait(0.5)
            self.stats.wait_s += time.perf_counter() - tic
        if self._error is not None:
            raise RuntimeError(f"controller {self.controller.name} failed") from self._error
        with self._cv:
            answer, self._answer = self._answer, None
            if answer is not None and self._pending is not None:
                self.stats.dropped += 1  # made before this answer was applied: stale
                self._carry, self._pending = self._pending.window, None
            self._cv.notify_all()
        return answer

    def _decide(self, request: DecisionRequest) -> DecisionOutcome:
        tic = time.perf_counter()
        outcome = self.controller.decide(request)
        if not outcome.latency_s:
            outcome = outcome.model_copy(update={"latency_s": time.perf_counter() - tic})
        self.stats.record(outcome)
        return outcome

    def _serve(self) -> None:
        while True:
            with self._cv:
                while (self._pending is None or self._answer is not None) and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                request, self._pending, self._busy = self._pending, None, True
            try:
                outcome = self._decide(request)
            except BaseException as exc:  # surfaced to the prefetcher by take()
                log.error("controller failed", controller=self.controller.name, error=repr(exc))
                with self._cv:
                    self._error, self._busy = exc, False
                    self._cv.notify_all()
                return
            with self._cv:
                self._answer, self._busy = outcome, False
                self._cv.notify_all()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (it is a daemon, so a stuck model call cannot hold the process)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.controller.close()
