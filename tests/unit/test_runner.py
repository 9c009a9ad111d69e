"""The request/response protocol between the prefetcher and a controller thread."""

from __future__ import annotations

import threading
import time

import pytest

from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.baselines import ReplaceEveryMinibatch
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.metrics import MinibatchMetrics


def request(step: int) -> DecisionRequest:
    m = MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=10, remote_inputs=4, comm_rows=4, comm_bytes=16)
    return DecisionRequest(step=step, window=[m], stale=1, occupancy=1, capacity=2)


class SlowController(Controller):
    """Answers 'replace' after a fixed delay; remembers every request it saw."""

    name = "slow"

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self.seen: list[DecisionRequest] = []

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        self.seen.append(req)
        time.sleep(self.delay_s)
        return DecisionOutcome(request_step=req.step, decision="replace", source="model")


class FailingController(Controller):
    name = "failing"

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        raise ValueError("boom")


def test_async_never_waits_and_drops_stale_requests() -> None:
    ctl = SlowController(delay_s=0.05)
    runner = ControllerRunner(ctl, "async")
    answers = []
    for step in range(60):
        tic = time.perf_counter()
        answer = runner.take()
        assert time.perf_counter() - tic < 0.01  # the prefetcher never blocks on the controller
        if answer is not None:
            answers.append((step, answer))
        runner.submit(request(step))
        time.sleep(0.005)
    runner.close()
    assert answers, "some decisions must arrive"
    assert runner.stats.dropped > 0
    assert runner.stats.wait_s == 0.0
    # At most one decision in flight, and every decision answers a request made after the
    # previous answer was applied (no stale request is ever decided).
    applied_at = [s for s, _ in answers]
    for (prev_step, _), (_, ans) in zip(answers, answers[1:]):
        assert ans.request_step >= prev_step
    assert len(ctl.seen) <= len(applied_at) + 1
    # Dropped requests' metrics are carried forward, never lost.
    assert sum(len(r.window) for r in ctl.seen) >= len(ctl.seen)
    seen_steps = [m.step for r in ctl.seen for m in r.window]
    assert seen_steps == sorted(seen_steps) and len(set(seen_steps)) == len(seen_steps)


def test_sync_waits_for_every_answer() -> None:
    ctl = SlowController(delay_s=0.02)
    runner = ControllerRunner(ctl, "sync")
    got = []
    for step in range(10):
        got.append(runner.take())
        runner.submit(request(step))
    got.append(runner.take())
    runner.close()
    assert got[0] is None
    assert [a.request_step for a in got[1:]] == list(range(10))
    assert runner.stats.dropped == 0
    assert runner.stats.wait_s >= 10 * 0.02 * 0.8


def test_inline_controller_answers_at_once() -> None:
    runner = ControllerRunner(ReplaceEveryMinibatch(), "async")
    assert runner.mode == "inline"
    assert runner.submit(request(0)).decision == "replace"
    runner.close()


def test_controller_failure_surfaces_instead_of_hanging() -> None:
    runner = ControllerRunner(FailingController(), "sync")
    runner.submit(request(0))
    done = threading.Event()

    def take():
        with pytest.raises(RuntimeError, match="controller failing failed"):
            runner.take()
        done.set()

    t = threading.Thread(target=take)
    t.start()
    t.join(5)
    assert done.is_set()
    runner.close()


def test_close_returns_even_while_a_decision_is_in_flight() -> None:
    runner = ControllerRunner(SlowController(delay_s=2.0), "async")
    runner.submit(request(0))
    time.sleep(0.05)
    tic = time.perf_counter()
    runner.close(timeout_s=0.2)
    assert time.perf_counter() - tic < 1.0

