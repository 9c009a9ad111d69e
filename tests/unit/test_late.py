"""The slow call: one at a time on a thread of its own, read when the deciding thread takes it."""

from __future__ import annotations

import threading

from rudder_agent.controllers.late import LateAnswers
from rudder_agent.decision import DecisionOutcome, DecisionRequest

HANG_S = 10.0


def request(step: int) -> DecisionRequest:
    return DecisionRequest(step=step, window=[], stale=0, occupancy=0, capacity=1)


def test_one_call_at_a_time_read_when_taken() -> None:
    gate, ready = threading.Event(), threading.Event()
    late = LateAnswers(ready.set)
    read_on: list[str] = []

    def read(result: str) -> DecisionOutcome:
        read_on.append(threading.current_thread().name)
        return DecisionOutcome(request_step=9, decision=result)

    assert late.ask(request(9), lambda: (gate.wait(HANG_S), "replace")[1], read)
    assert late.take() is None and not late.free  # still running
    assert not late.ask(request(19), lambda: "skip", read)  # busy: refused
    gate.set()
    assert ready.wait(HANG_S), "notify was never called"
    assert not late.free  # its answer waits to be taken
    taken_request, outcome = late.take()
    assert (taken_request.step, outcome.decision) == (9, "replace")
    assert read_on == [threading.current_thread().name]  # read by the taker, not the call's thread
    assert late.free and late.take() is None
