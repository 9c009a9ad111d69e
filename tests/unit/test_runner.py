"""The request/response protocol between the prefetcher and a controller thread.

Deterministic: controllers decide only when the test releases them (semaphores and events),
the runner's clock is a fake that only the controller advances, and a thread join with a
timeout only turns a hang into a failure. No assertion depends on how long anything took.
"""

from __future__ import annotations

import threading
import types
from collections import Counter

import pytest

from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.controllers import channel as channel_module
from rudder_agent.controllers import runner as runner_module
from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.controllers.baselines import ReplaceEveryMinibatch
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.controllers.wiring import open_channel
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.metrics import MinibatchMetrics

HANG_S = 10.0  # hang detector only


def metrics(step: int) -> MinibatchMetrics:
    """Distinct figures per step, so a lost or reordered metric shows."""
    return MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=10 + step, remote_inputs=step,
                            comm_rows=step, comm_bytes=16 * step)


def request(step: int) -> DecisionRequest:
    return DecisionRequest(step=step, window=[metrics(step)], stale=1, occupancy=1, capacity=2)


class GatedController(Controller):
    """Answers 'replace', but each decide() waits until the test calls release()."""

    name = "gated"

    def __init__(self):
        self.seen: list[DecisionRequest] = []
        self.closed = 0
        self._entered = threading.Semaphore(0)
        self._gate = threading.Semaphore(0)

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        self.seen.append(req)
        self._entered.release()
        if not self._gate.acquire(timeout=3 * HANG_S):
            raise TimeoutError("the test never released this decision")
        return DecisionOutcome(request_step=req.step, decision="replace", source="model", latency_s=0.25)

    def wait_entered(self) -> None:
        """Block until the next decide() call has started (it then stays in flight until release())."""
        assert self._entered.acquire(timeout=HANG_S), "the controller never started deciding"

    def release(self, n: int = 1) -> None:
        self._gate.release(n)

    def close(self) -> None:
        self.closed += 1


class FailingController(Controller):
    name = "failing"

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        raise ValueError("boom")


def wait_for_answer(runner: ControllerRunner) -> None:
    """The controller thread has posted its answer (white box: the runner's own condition variable)."""
    with runner._cv:
        assert runner._cv.wait_for(lambda: runner._answer is not None, HANG_S), "no answer was posted"


def test_async_take_never_waits_for_a_busy_controller() -> None:
    ctl = GatedController()
    runner = ControllerRunner(ctl, "async")
    answers: list = []
    done: list[int] = []

    def prefetcher() -> None:
        for step in range(1, 201):
            answers.append(runner.take())
            runner.submit(request(step))
            done.append(step)

    try:
        runner.submit(request(0))
        ctl.wait_entered()  # decision 0 is in flight and stays there until the end
        worker = threading.Thread(target=prefetcher, daemon=True)
        worker.start()
        worker.join(HANG_S)
        assert not worker.is_alive(), f"take() blocked on a busy controller after {len(done)} steps"
        assert done == list(range(1, 201)) and answers == [None] * 200
        assert runner.stats.wait_s == 0.0
        assert runner.stats.requests == 201 and runner.stats.dropped == 199  # each newer one replaced the pending one
        assert len(ctl.seen) == 1  # at most one decision in flight: nothing else was started
    finally:
        ctl.release(1000)
        runner.close()


def test_dropped_requests_metrics_reach_the_next_decided_request_in_order() -> None:
    ctl = GatedController()
    runner = ControllerRunner(ctl, "async")
    try:
        runner.submit(request(0))
        ctl.wait_entered()  # busy with 0
        for step in (1, 2, 3):
            runner.submit(request(step))
        assert runner.stats.dropped == 2  # 1 and 2 were replaced while the controller was busy
        assert runner.take() is None
        ctl.release()
        wait_for_answer(runner)
        answer = runner.take()
        assert answer.request_step == 0
        assert runner.stats.dropped == 3  # 3 was made before 0's answer was applied: stale, never decided
        runner.submit(request(4))
        ctl.wait_entered()
        assert [r.step for r in ctl.seen] == [0, 4]
        assert ctl.seen[0].window == [metrics(0)]
        assert ctl.seen[1].window == [metrics(s) for s in (1, 2, 3, 4)]  # every dropped step's metrics, in order
        ctl.release()
        wait_for_answer(runner)
        assert runner.take().request_step == 4
        assert runner.stats.requests == 5 and runner.stats.dropped == 3
        assert runner.stats.decisions == Counter(replace=2) and runner.stats.latencies_s == [0.25, 0.25]
    finally:
        ctl.release(1000)
        runner.close()


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.cpu = 0.0

    def perf_counter(self) -> float:
        return self.now

    def thread_time(self) -> float:
        return self.cpu

    def module(self) -> types.SimpleNamespace:
        """Stands in for the `time` module."""
        return types.SimpleNamespace(perf_counter=self.perf_counter, thread_time=self.thread_time)


def fake_clock(monkeypatch) -> FakeClock:
    """A FakeClock in place of the runner's and the channel's `time`."""
    clock = FakeClock()
    monkeypatch.setattr(runner_module, "time", clock.module())
    monkeypatch.setattr(channel_module, "time", clock.module())  # latency
    return clock


class TellsWhenTesterWaits(threading.Condition):
    """The runner's condition variable; sets an event when the test's thread blocks in wait()."""

    def __init__(self, tester: threading.Thread):
        super().__init__()
        self.tester = tester
        self.tester_waiting = threading.Event()

    def wait(self, timeout=None):
        if threading.current_thread() is self.tester:
            self.tester_waiting.set()
        return super().wait(timeout)


class DecidesWhileTheTakerWaits(Controller):
    """Finishes a decision only once the prefetcher is blocked in take(), advancing the fake clock by 1 s."""

    name = "patient"

    def __init__(self, cv: TellsWhenTesterWaits, clock: FakeClock, log: list):
        self.cv, self.clock, self.log = cv, clock, log

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        self.log.append(("decide", req.step))
        if not self.cv.tester_waiting.wait(3 * HANG_S):
            raise TimeoutError("take() never waited for this decision")
        self.clock.now += 1.0
        return DecisionOutcome(request_step=req.step, decision="replace", source="model")  # latency: the runner's


def test_sync_take_waits_for_the_answer_to_each_request(monkeypatch) -> None:
    clock, log = fake_clock(monkeypatch), []
    cv = TellsWhenTesterWaits(threading.current_thread())
    monkeypatch.setattr(runner_module, "threading", types.SimpleNamespace(Condition=lambda: cv, Thread=threading.Thread))
    runner = ControllerRunner(DecidesWhileTheTakerWaits(cv, clock, log), "sync")
    got = []
    try:
        got.append(runner.take())  # nothing submitted: nothing to wait for
        for step in range(10):
            cv.tester_waiting.clear()
            runner.submit(request(step))
            answer = runner.take()
            log.append(("took", answer.request_step if answer else None))
            got.append(answer)
    finally:
        cv.tester_waiting.set()
        runner.close()
    assert got[0] is None and [a.request_step for a in got[1:]] == list(range(10))
    assert log == [e for s in range(10) for e in (("decide", s), ("took", s))]
    assert runner.stats.requests == 10 and runner.stats.dropped == 0
    assert runner.stats.wait_s == 10.0  # each take() waited through exactly one decision (1 fake second each)
    assert runner.stats.latencies_s == [1.0] * 10  # measured by the runner, since the controller reports none


class TakesOneFakeSecond(Controller):
    """Answers replace after 1 fake second of its thread's CPU; may use a quarter of a CPU."""

    name = "slow"
    spec = ControllerSpec(duty_cycle=0.25)

    def __init__(self, clock: FakeClock):
        self.clock, self.seen = clock, []

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        self.seen.append([m.step for m in req.window])
        self.clock.now += 1.0
        self.clock.cpu += 1.0
        return DecisionOutcome(request_step=req.step, decision="replace", source="model")


def test_async_controller_rests_three_answer_times_at_a_quarter_duty(monkeypatch) -> None:
    clock = fake_clock(monkeypatch)
    ctl = TakesOneFakeSecond(clock)
    runner = ControllerRunner(ctl, "async")
    try:
        runner.submit(request(0))
        wait_for_answer(runner)
        assert runner.take().request_step == 0  # answered at 1 s: rests until 1 + 3 x 1 s = 4 s
        runner.submit(request(1))
        clock.now = 3.9
        runner.submit(request(2))  # wakes the thread: still 0.1 s of rest (a fake clock never gets there)
        threading.Event().wait(0.3)
        assert ctl.seen == [[0]] and runner.take() is None  # rested: no decision started, the prefetcher never waited
        clock.now = 4.0
        runner.submit(request(3))
        wait_for_answer(runner)
        assert runner.take().request_step == 3 and ctl.seen == [[0], [1, 2, 3]]  # what it rested through came along
        assert runner.stats.cpu_s == 2.0 and runner.stats.wait_s == 0.0
    finally:
        runner.close()


def test_sync_controller_never_rests(monkeypatch) -> None:
    clock = fake_clock(monkeypatch)
    ctl = TakesOneFakeSecond(clock)
    runner = ControllerRunner(ctl, "sync")
    took: list[int] = []

    def prefetcher() -> None:
        for step in range(3):
            runner.submit(request(step))
            took.append(runner.take().request_step)

    worker = threading.Thread(target=prefetcher, daemon=True)
    try:
        worker.start()
        worker.join(HANG_S)
        assert not worker.is_alive(), f"sync take() waited out a rest after {took}"
    finally:
        runner.close()
    assert took == [0, 1, 2] and ctl.seen == [[0], [1], [2]]


def test_inline_controller_answers_at_once() -> None:
    channel = open_channel(ReplaceEveryMinibatch(), PersistentBuffer(2, 0), "async")
    assert channel.label == "inline" and not hasattr(channel, "_thread")
    outcome, waited = channel.decision_for(0)
    assert outcome.decision == "replace" and outcome.request_step == 0 and waited == 0.0
    channel.offer(request(0).window[0])
    assert [m.step for m in channel._window] == [0]  # asked again before the next minibatch, with these metrics
    assert channel.stats.requests == 1 and channel.stats.decisions == Counter(replace=1)
    channel.close()


def test_controller_failure_surfaces_instead_of_hanging() -> None:
    runner = ControllerRunner(FailingController(), "sync")
    runner.submit(request(0))
    done = threading.Event()

    def take():
        with pytest.raises(RuntimeError, match="controller failing failed"):
            runner.take()
        done.set()

    t = threading.Thread(target=take, daemon=True)
    t.start()
    t.join(HANG_S)
    assert done.is_set()
    runner.close()


def test_close_returns_while_a_decision_is_in_flight() -> None:
    ctl = GatedController()
    runner = ControllerRunner(ctl, "async")
    thread = runner._thread
    try:
        runner.submit(request(0))
        ctl.wait_entered()  # the decision stays in flight until released below
        closer = threading.Thread(target=runner.close, kwargs={"timeout_s": 0.05}, daemon=True)
        closer.start()
        closer.join(HANG_S)
        assert not closer.is_alive(), "close() waited for the decision in flight"
        assert ctl.closed == 1
        assert thread.is_alive() and thread.daemon  # left inside decide(); as a daemon it cannot hold the process
    finally:
        ctl.release(1000)
    thread.join(HANG_S)
    assert not thread.is_alive()  # once the call returns, the closed runner's thread ends
