"""Late answers: in asynchronous mode the agent answers settled requests while its model still thinks.

Deterministic: the model answers only when the test opens its gate; waits have a timeout that only
turns a hang into a failure.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import DecisionRequest, WhatIf
from rudder_agent.metrics import MinibatchMetrics
from tests.unit.test_agent_graph import FACTS, REPLACE

HANG_S = 10.0


class GatedChat:
    """Delegates to the scripted backend, but each call waits until the test opens the gate."""

    def __init__(self, inner, fail: bool = False):
        self.inner, self.fail = inner, fail
        self.entered = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)

    def invoke(self, messages):
        self.entered.release()
        assert self.gate.acquire(timeout=3 * HANG_S), "the test never opened the gate"
        if self.fail:
            raise ConnectionError("model server went away")
        return self.inner.invoke(messages)

    def close(self) -> None:
        self.inner.close()


def request(step: int, replace_rows: int, skip_rows: int) -> DecisionRequest:
    """A request with its what-if already played (as a recorded run brings it)."""
    window = [MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=400, remote_inputs=100, hits=40, misses=60,
                               comm_rows=60, comm_bytes=240)]
    whatif = WhatIf(source="window", minibatches=8, remote_inputs=800, replace_rows=replace_rows,
                    skip_rows=skip_rows, replace_hits=800 - replace_rows, skip_hits=800 - skip_rows)
    return DecisionRequest(step=step, window=window, stale=20, occupancy=2_000, capacity=2_000, whatif=whatif)


CONTESTED = (400, 500)  # replace saves 20% of skip's rows: the model decides
SETTLED = (500, 499)  # 0.2% apart, below the 0.5% threshold: the what-if decides (no-difference)
SETTLED_ROUTE = ["metrics_collector", "context_builder", "what_if", "guard", "no_difference"]
"""The route of a request that brings its what-if, up to where the what-if settles it or the model is asked."""


def until(predicate, what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def answer_of(runner: ControllerRunner):
    with runner._cv:
        assert runner._cv.wait_for(lambda: runner._answer is not None, HANG_S), "no answer was posted"
    return runner.take()


@pytest.fixture
def agent(tmp_path):
    script = tmp_path / "answers.jsonl"
    script.write_text(json.dumps(REPLACE) + "\n")
    ctl = LLMController(AgentConfig(model=f"scripted:{script}", min_difference_pct=0.5, duty_cycle=1.0))
    ctl.setup(FACTS)
    return ctl


def test_settled_requests_are_answered_while_the_model_thinks(agent):
    chat = agent.backend = GatedChat(agent.backend)
    runner = ControllerRunner(agent, "async")
    try:
        runner.submit(request(9, *CONTESTED))
        assert chat.entered.acquire(timeout=HANG_S), "the contested request never reached the model"
        runner.submit(request(19, *SETTLED))
        settled = answer_of(runner)  # while the model is still inside its call
        assert (settled.request_step, settled.source, settled.decision) == (19, "no-difference", "skip")
        assert settled.route == [*SETTLED_ROUTE, "record"]

        runner.submit(request(29, *CONTESTED))  # the model is busy: this one goes unanswered, not guarded
        until(lambda: runner.stats.unanswered["busy"] == 1, "the busy request")
        assert runner.take() is None

        chat.gate.release()
        late = answer_of(runner)
        assert (late.request_step, late.source, late.decision) == (9, "model", "replace")
        assert late.whatif is not None and late.whatif.favours == "replace"
        assert late.route == [*SETTLED_ROUTE, "hand_off", "read_answer", "record"]  # handed off, read when taken
    finally:
        runner.close()
    assert dict(runner.stats.unanswered) == {"asked": 1, "busy": 1}
    assert dict(runner.stats.decisions) == {"no-difference": 1, "replace": 1}
    assert [r.request_step for r in runner.stats.answered] == [19, 9]
    assert [(h.step, h.source) for h in agent.history] == [(19, "no-difference"), (9, "model")]


def test_a_failed_late_call_falls_back_and_counts_invalid(agent):
    chat = agent.backend = GatedChat(agent.backend, fail=True)
    runner = ControllerRunner(agent, "async")
    try:
        runner.submit(request(9, *CONTESTED))
        chat.gate.release()
        late = answer_of(runner)
    finally:
        runner.close()
    assert (late.source, late.valid, late.decision) == ("fallback", False, "skip")
    assert "ConnectionError: model server went away" in late.reason
    assert late.route == [*SETTLED_ROUTE, "hand_off", "fallback", "record"]
    assert dict(runner.stats.decisions) == {"invalid": 1}


def test_sync_mode_waits_for_the_model_itself(agent):
    runner = ControllerRunner(agent, "sync")
    try:
        runner.submit(request(9, *CONTESTED))
        outcome = runner.take()
    finally:
        runner.close()
    assert runner._late is None and (outcome.source, outcome.request_step) == ("model", 9)
    assert not runner.stats.unanswered


class FreeReRanking:
    """An outlook whose keep policy re-ranks for free; counts the what-ifs played on it."""

    replacing_is_free = True

    def __init__(self):
        self.played = 0

    def what_if(self) -> WhatIf:
        self.played += 1
        return request(0, *CONTESTED).whatif


def test_while_the_model_thinks_free_re_rankings_skip_the_what_if(agent):
    chat = agent.backend = GatedChat(agent.backend)
    outlook = FreeReRanking()
    runner = ControllerRunner(agent, "async")
    try:
        for step in (9, 19, 29):
            runner.submit(request(step, *CONTESTED).model_copy(update={"whatif": None, "outlook": outlook}))
            if step == 9:
                assert chat.entered.acquire(timeout=HANG_S)
            until(lambda: sum(runner.stats.unanswered.values()) == 1 + step // 10, f"request {step}")
        chat.gate.release()
        assert answer_of(runner).request_step == 9
    finally:
        runner.close()
    assert dict(runner.stats.unanswered) == {"asked": 1, "busy": 2}
    assert outlook.played == 1  # the busy requests were left to the idle re-ranking without a what-if
