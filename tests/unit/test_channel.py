"""The decision channels: drop/carry written once (RequestSlot) and the replay clock built on it."""

from __future__ import annotations

from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.controllers.channel import ClockedChannel, RequestSlot, RunnerStats, request_after
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.metrics import MinibatchMetrics


def metrics(step: int) -> MinibatchMetrics:
    return MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=10, remote_inputs=4, comm_rows=4, comm_bytes=16,
                            stale=1, occupancy=1, capacity=2)


def steps(request: DecisionRequest) -> list[int]:
    return [m.step for m in request.window]


def test_a_newer_request_replaces_the_pending_one_and_carries_its_metrics():
    slot = RequestSlot(stats := RunnerStats())
    slot.put(request_after(metrics(0)))
    slot.put(request_after(metrics(1)))
    slot.put(request_after(metrics(2)))
    assert steps(slot.pop()) == [0, 1, 2] and slot.pop() is None
    assert (stats.requests, stats.dropped) == (3, 2)


def test_an_applied_answer_makes_the_pending_request_stale_and_carries_it_into_the_next():
    slot = RequestSlot(stats := RunnerStats())
    slot.put(request_after(metrics(0)))
    slot.pop()  # in flight
    slot.put(request_after(metrics(1)))
    slot.answer_applied()
    assert slot.pending is None and stats.dropped == 1
    slot.put(request_after(metrics(2)))
    assert steps(slot.pop()) == [1, 2] and stats.dropped == 1


def test_nothing_pending_when_an_answer_is_applied_drops_nothing():
    slot = RequestSlot(stats := RunnerStats())
    slot.answer_applied()
    slot.put(request_after(metrics(5)))
    assert steps(slot.pop()) == [5] and stats.dropped == 0


class Echo(Controller):
    """Answers replace; remembers the windows it saw."""

    name = "echo"

    def __init__(self, source: str = "model"):
        self.seen: list[list[int]] = []
        self.source = source

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        self.seen.append(steps(request))
        return DecisionOutcome(request_step=request.step, decision="replace", source=self.source, latency_s=1.0)


def run_clock(channel: ClockedChannel, n: int) -> list[int | None]:
    applied = []
    for s in range(n):
        outcome, wait = channel.decision_for(s)
        assert wait == 0.0
        applied.append(None if outcome is None else outcome.request_step)
        channel.offer(metrics(s))
    return applied


def test_clocked_answers_apply_latency_minibatches_after_their_request_and_lose_no_metric():
    ctl = Echo()
    channel = ClockedChannel(ctl, latency=3)
    applied = run_clock(channel, 8)
    # decided at 0 (ready at 3), applied at 3; request 1 waits, 2 replaces it (1 dropped), 2 is stale when 0's
    # answer is applied (dropped); both carried into the request made after minibatch 3, decided at once.
    assert applied == [None, None, None, 0, None, None, 3, None]
    assert ctl.seen == [[0], [1, 2, 3], [4, 5, 6]]
    # every request is decided, dropped, or still pending at the end (the one made after minibatch 7)
    assert (channel.record()["requests"], channel.record()["dropped"], len(ctl.seen)) == (8, 4, 3)
    assert channel.slot.pending is not None and steps(channel.slot.pending) == [7]


def test_guard_answers_apply_at_the_next_minibatch():
    channel = ClockedChannel(Echo(source="guard"), latency=5)
    assert run_clock(channel, 4) == [None, 0, 1, 2]


def test_replay_never_rests_whatever_the_duty_cycle():
    ctl = Echo()
    ctl.spec = ControllerSpec(duty_cycle=0.25)  # a live asynchronous runner would rest; replay's clock charges no CPU
    assert run_clock(ClockedChannel(ctl, latency=2), 6) == [None, None, 0, None, 2, None]
    assert ctl.seen == [[0], [1, 2], [3, 4]]
