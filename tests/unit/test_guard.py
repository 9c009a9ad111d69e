"""The guard (rudder_agent/agent/guard.py): its exact boundaries, and the fill path through the real controller.

Skip: no new metrics; no stale entry and no empty slot; fewer than ``end_fraction`` of the minibatches
pending. Fill: more than ``fill_fraction`` of the slots empty -> replace. Either answers without the model.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.agent.guard import Guard
from rudder_agent.agent.state import Progress, WindowSummary
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.backends import ScriptedBackend
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay
from tests.unit.test_replay import make_run

FAR = Progress(done=10, total=200)  # 190 pending: far from the end
SKIP = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "scripted skip"}
REPLACE = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "scripted replace"}


def window(stale: int = 5, occupancy: int = 100, capacity: int = 100, minibatches: int = 3) -> WindowSummary:
    fields = {name: 0 for name in WindowSummary.model_fields}
    return WindowSummary.model_validate({**fields, "minibatches": minibatches, "stale": stale, "occupancy": occupancy,
                                         "capacity": capacity, "trend": "flat"})


@pytest.mark.parametrize("end_fraction,total,pending_kept", [(0.05, 200, 10), (0.25, 8, 2), (0.5, 6, 3)])
def test_end_fraction_boundary(end_fraction, total, pending_kept):
    guard, w = Guard(end_fraction=end_fraction), window()
    at = Progress(done=total - pending_kept, total=total)  # pending exactly end_fraction x total: still asks
    below = Progress(done=total - pending_kept + 1, total=total)  # one fewer pending: too late to pay back
    assert at.pending == pending_kept and guard.skip_reason(w, at) is None
    assert guard.skip_reason(w, below) == f"last {100 * end_fraction:g}% of minibatches: a refill cannot pay back"
    assert guard.skip_reason(w, Progress(done=total, total=total)) is not None  # nothing pending at all


def test_unknown_total_never_ends():
    assert Guard().skip_reason(window(), Progress(done=5, total=0)) is None


@pytest.mark.parametrize("fill_fraction,capacity,free_kept", [(0.1, 100, 10), (0.1, 2_000, 200), (0.5, 10, 5),
                                                              (0.0, 50, 0)])
def test_fill_fraction_boundary(fill_fraction, capacity, free_kept):
    guard = Guard(fill_fraction=fill_fraction)
    at = window(occupancy=capacity - free_kept, capacity=capacity)  # free exactly fill_fraction x capacity: ask
    above = window(occupancy=capacity - free_kept - 1, capacity=capacity)  # one more empty slot: fill
    assert at.free == free_kept and guard.fill_reason(at) is None
    assert guard.fill_reason(above) == f"{free_kept + 1} of {capacity} slots are empty: fill them"


def test_no_buffer_capacity_never_fills():
    assert Guard(fill_fraction=0.0).fill_reason(window(occupancy=0, capacity=0)) is None


def test_nothing_to_replace_needs_both_no_stale_and_no_free():
    guard, reason = Guard(), "nothing to replace: no stale entries and no empty slots"
    assert guard.skip_reason(window(stale=0, occupancy=100), FAR) == reason
    assert guard.skip_reason(window(stale=0, occupancy=99), FAR) is None  # one empty slot
    assert guard.skip_reason(window(stale=1, occupancy=100), FAR) is None  # one stale entry


def test_no_minibatches_skips_and_never_fills():
    empty = window(stale=50, occupancy=0, minibatches=0)
    assert Guard().skip_reason(empty, FAR) == "no new minibatch metrics"
    assert Guard().fill_reason(empty) is None
    assert Guard().fill_reason(window(stale=50, occupancy=0, minibatches=1)) == "100 of 100 slots are empty: fill them"


@pytest.mark.parametrize("w,progress", [
    (window(minibatches=0), FAR),  # no metrics
    (window(stale=0, occupancy=100), FAR),  # nothing to replace
    (window(), Progress(done=199, total=200)),  # last 5%
    (window(occupancy=0), FAR),  # all slots empty
])
def test_disabled_guard_always_asks_the_model(w, progress):
    assert Guard().skip_reason(w, progress) is not None or Guard().fill_reason(w) is not None  # guarded when enabled
    off = Guard(enabled=False)
    assert off.skip_reason(w, progress) is None and off.fill_reason(w) is None


# --- the fill path through the real `llm` controller (scripted backend) -------------------------------------

FACTS = StaticFacts(dataset="ogbn-arxiv", num_nodes=169_343, num_edges=1_166_243, num_parts=2, partition=0,
                    local_nodes=85_000, halo_nodes=40_000, capacity=2_000, total_minibatches=100, feature_dim=128)


def request(step: int, occupancy: int, stale: int = 20) -> DecisionRequest:
    m = MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=400, remote_inputs=100, hits=30, misses=70,
                         comm_rows=70, comm_bytes=280)
    return DecisionRequest(step=step, window=[m], stale=stale, occupancy=occupancy, capacity=2_000)


@pytest.fixture
def model_calls(monkeypatch) -> list:
    """Every call that reaches the scripted model (the guard must answer without one)."""
    calls: list = []
    real = ScriptedBackend.invoke

    def invoke(self, messages):
        calls.append(messages)
        return real(self, messages)

    monkeypatch.setattr(ScriptedBackend, "invoke", invoke)
    return calls


@pytest.fixture
def script(tmp_path):  # answers in order, cycling: which one comes back tells how many calls were made
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(a) for a in [SKIP, REPLACE]) + "\n")
    return path


def test_controller_fills_without_the_model_and_counts_it_as_guarded(script, model_calls):
    ctl = LLMController(AgentConfig(model=f"scripted:{script}"))
    ctl.setup(FACTS)
    runner = ControllerRunner(ctl, "sync")
    try:
        runner.submit(request(9, occupancy=1_799))  # 201 of 2000 empty: more than 10%
        filled = runner.take()
        assert (filled.source, filled.decision, filled.valid) == ("guard", "replace", True)
        assert filled.reason == "201 of 2000 slots are empty: fill them" and model_calls == []
        runner.submit(request(19, occupancy=1_800))  # exactly 10% empty: the model decides
        asked = runner.take()
        assert len(model_calls) == 1
        assert (asked.source, asked.decision, asked.reason) == ("model", "skip", "scripted skip")  # 1st answer
        runner.submit(request(98, occupancy=0))  # last 5% with empty slots: the skip rule wins, no fill
        late = runner.take()
        assert (late.source, late.decision) == ("guard", "skip") and len(model_calls) == 1
    finally:
        runner.close()
    assert runner.stats.decisions == Counter(guarded=2, skip=1) and runner.stats.requests == 3
    assert len(runner.stats.latencies_s) == 1  # guard answers are not model latencies
    assert [(h.step, h.decision, h.source) for h in ctl.history] == [
        (9, "replace", "guard"), (19, "skip", "model"), (98, "skip", "guard")]


def replay_rows(run, guard: bool, script) -> tuple[list, dict]:
    rows: list = []
    record = replay(load_recording(run, 0), LLMController(AgentConfig(model=f"scripted:{script}", guard=guard, whatif=False)),
                    lambda r, kind: rows.append(r) if kind == "minibatch" else None, mode="async",
                    latency_minibatches=1, progress=False)
    return rows, record


def test_replay_applies_the_guards_fill_at_the_next_minibatch(tmp_path, model_calls):
    script = tmp_path / "skip.jsonl"  # the model would only ever skip
    script.write_text(json.dumps(SKIP) + "\n")
    # 20 minibatches of 12 remote ids (100..199) each; capacity ceil(0.25 x 40 halo) = 10, empty at the start
    run = make_run(tmp_path / "run", [[100 + (7 * s + k) % 100 for k in range(12)] for s in range(20)],
                   halo=40, per_epoch=10)
    rows, record = replay_rows(run, True, script)
    assert record["capacity"] == 10 and model_calls == []  # every answer here came from the guard
    # the opening decision fills the empty buffer at the first minibatch, before any request is answered
    assert (rows[0].occupancy, rows[0].decision_applied, rows[0].decision_source) == (0, "replace", "guard")
    assert rows[1].occupancy == 10  # the fill really loaded the empty slots
    assert (rows[1].decision_applied, rows[1].decision_source) == ("replace", "guard")  # step 0's answer, at once
    assert record["decisions"] == {"guarded": 21} and record["requests"] == 20
    # The same run without the guard: the model is asked every time, skips, and the buffer stays empty.
    rows, record = replay_rows(run, False, script)
    assert len(model_calls) == 20 and record["decisions"] == {"skip": 20}
    assert {r.occupancy for r in rows} == {0} and sum(r.hits for r in rows) == 0
