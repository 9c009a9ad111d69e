"""The threaded decision channel: a controller in a daemon thread beside the prefetcher.

The prefetcher offers one request per minibatch into the shared :class:`RequestSlot` (drop and
carry of stale requests are written there, once). The thread decides the pending request only
when its previous answer has been taken and applied, so at most one answer waits, and, in
asynchronous mode, after the rest its duty cycle asks for (:class:`Rest`), at the priority its spec
names. In asynchronous mode a controller may also hand a request's slow part to a call on a thread
of its own (:class:`rudder_agent.controllers.late.LateAnswers`, given to a controller that
:class:`rudder_agent.controllers.capabilities.AnswersLater`)
and leave the request unanswered; this thread takes the call's answer when it is ready. While that
call runs, a request whose replacement is free is left unanswered at once (busy): the buffer re-ranks
between answers anyway (``ControllerSpec.replaces_between_answers``). The prefetcher only polls and
never waits; in synchronous mode it waits for the answer to its previous request before preparing
the next minibatch (the wait is measured).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Literal

from rudder_agent.controllers.channel import DecisionChannel, Decider, RequestSlot, RunnerStats, decide, request_after
from rudder_agent.controllers.capabilities import AnswersLater
from rudder_agent.controllers.late import LateAnswers
from rudder_agent.decision import DecisionOutcome, DecisionRequest, LooksAhead, Unanswered
from rudder_agent.log import get_logger
from rudder_agent.metrics import MinibatchMetrics

log = get_logger(__name__)


@dataclass
class Rest:
    """An asynchronous controller's duty cycle: after an answer that cost ``c`` CPU seconds, rest ``c (1/share - 1)``.

    Its thread then uses at most ``share`` of one CPU, so its what-if play and prompt building never
    crowd training out on a small host (a model's own wait costs its thread nothing: the embedded
    server runs at the lowest priority). Requests made while it rests wait in the slot (dropped and
    carried as usual).
    """

    share: float = 1.0
    until: float = float("-inf")

    def after(self, cost_s: float, now: float) -> None:
        """An answer that cost ``cost_s`` ended at ``now``: rest in proportion."""
        if self.share < 1.0:
            self.until = now + cost_s * (1.0 / self.share - 1.0)

    def remaining(self, now: float) -> float:
        """How long the controller still rests at ``now`` (0: it may decide)."""
        return max(self.until - now, 0.0)


def duty_share(controller: Decider, mode: str) -> float:
    """The share of one CPU an asynchronous controller's thread may use; sync mode waits for every answer (1)."""
    return controller.spec.duty_cycle if mode == "async" else 1.0


def lower_this_thread(nice: int) -> None:
    """Give the calling thread a lower CPU priority (Linux: nice is per thread), so its work never slows training.

    Asynchronous decisions may arrive late, never block: the agent's what-if play and prompt building
    then run on CPU time the trainer leaves idle. A no-op where the OS refuses or nice is 0.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as err:  # e.g. not permitted: run at the trainer's priority
        log.warning("controller thread priority unchanged", error=str(err))


class ControllerRunner(DecisionChannel):
    """Owns the controller's thread and the request/response hand-off (Args: see DecisionChannel)."""

    def __init__(self, controller: Decider, mode: Literal["async", "sync"] = "async", *,
                 opening: DecisionOutcome | None = None, outlook: LooksAhead | None = None,
                 replaces_between_answers: bool = False):
        if mode not in ("async", "sync"):
            raise ValueError(f"mode must be async or sync, not {mode!r}")
        self.controller, self.mode, self.label = controller, mode, mode
        self.answers(opening, outlook, replaces_between_answers)
        self.stats = RunnerStats()
        self._cv = threading.Condition()
        self._slot = RequestSlot(self.stats)
        self._rest = Rest(duty_share(controller, mode))
        self._answer: DecisionOutcome | None = None
        self._busy = False
        self._closed = False
        self._error: BaseException | None = None
        self._late: LateAnswers | None = None
        """Slow answers (the agent's model) come later, off this thread; requests settled without them never wait."""
        if mode == "async" and isinstance(controller, AnswersLater):
            self._late = LateAnswers(self._wake)
            controller.answer_later(self._late)
        self._thread = threading.Thread(target=self._serve, name=f"rudder-{controller.name}", daemon=True)
        self._thread.start()

    def submit(self, request: DecisionRequest) -> None:
        """Hand a request over; the thread answers it later (or drops it for a newer one)."""
        with self._cv:
            self._slot.put(request)
            self._cv.notify_all()

    def take(self) -> DecisionOutcome | None:
        """The newest unapplied answer: never blocks in async mode, waits for it in sync mode."""
        if self.mode == "sync":
            tic = time.perf_counter()
            with self._cv:
                while (self._slot.pending is not None or self._busy) and self._error is None and not self._closed:
                    self._cv.wait(0.5)
            self.stats.wait_s += time.perf_counter() - tic
        if self._error is not None:
            raise RuntimeError(f"controller {self.controller.name} failed") from self._error
        with self._cv:
            answer, self._answer = self._answer, None
            if answer is not None:
                self._slot.answer_applied()
            self._cv.notify_all()
        return answer

    def decision_for(self, step: int) -> tuple[DecisionOutcome | None, float]:
        if self.opening is not None:
            return self.take_opening(), 0.0
        tic = time.perf_counter()
        outcome = self.take()
        return outcome, time.perf_counter() - tic

    def offer(self, metrics: MinibatchMetrics) -> None:
        self.submit(request_after(metrics, self.outlook))

    def _wake(self) -> None:
        """A late answer is ready (called from the controller's own thread)."""
        with self._cv:
            self._cv.notify_all()

    def _late_answer(self) -> DecisionOutcome | None:
        """A late answer, counted like any other (None: none is ready)."""
        late = self._late.take() if self._late is not None else None
        if late is None:
            return None
        request, outcome = late
        self.stats.record(outcome, request)
        return outcome

    def _decide(self, request: DecisionRequest) -> DecisionOutcome | None:
        """The controller's answer (None: unanswered); busy without asking it when a slow call runs and
        replacing is free."""
        if self._late is not None and not self._late.free and request.outlook is not None \
                and request.outlook.replacing_is_free:
            self.stats.unanswered[Unanswered.BUSY] += 1
            return None
        return decide(self.controller, request, self.stats)

    def _serve(self) -> None:
        if self.mode == "async":
            lower_this_thread(self.controller.spec.thread_nice)
        while True:
            with self._cv:
                while not self._closed:
                    if self._answer is not None:
                        self._cv.wait()  # one answer at a time: the previous one is applied first
                    elif (late := self._late_answer()) is not None:
                        self._answer = late
                        self._cv.notify_all()
                    elif self._slot.pending is None:
                        self._cv.wait()
                    elif rest := self._rest.remaining(time.perf_counter()):
                        self._cv.wait(rest)  # the duty cycle: requests made meanwhile wait in the slot
                    else:
                        break
                if self._closed:
                    return
                request, self._busy = self._slot.pop(), True
            cpu = time.thread_time()
            try:
                outcome = self._decide(request)
            except BaseException as exc:  # surfaced to the prefetcher by take()
                log.error("controller failed", controller=self.controller.name, error=repr(exc))
                with self._cv:
                    self._error, self._busy = exc, False
                    self._cv.notify_all()
                return
            cpu = time.thread_time() - cpu
            self._rest.after(cpu, time.perf_counter())
            self.stats.cpu_s += cpu
            with self._cv:
                self._answer, self._busy = outcome, False
                self._cv.notify_all()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (it is a daemon, so a stuck model call cannot hold the process)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout_s)
        self.controller.close()
