"""The What-if node: counterfactuals on a fork, the no-difference guard, and the numbers reaching prompt v2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.messages import AIMessage

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.graph import build_graph
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState
from rudder_agent.buffer.counterfactual import Outlook, fork, what_if
from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.settings.keep import keep_policy
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.controllers.channel import RunnerStats
from rudder_agent.decision import DecisionOutcome, WhatIf
from rudder_agent.paths import PROMPTS_DIR
from tests.unit.test_agent_graph import FACTS, REPLACE, request

A, B = np.array([150, 151]), np.array([5, 150, 151])  # ids >= 100 are remote for partition 0


def engine(policy: str = "lookahead", window: int = 2, capacity: int = 4) -> BufferEngine:
    return BufferEngine(PersistentBuffer(capacity, 0), np.array([100, 200]), 0, keep_policy(policy).build(window))


def test_replace_and_skip_played_by_hand() -> None:
    """Empty buffer, the next two minibatches read 150 and 151: replacing now fetches them once, skipping twice."""
    e = engine()
    w = what_if(e, [B, B], "window")
    assert (w.replace_rows, w.skip_rows, w.replace_hits, w.skip_hits, w.remote_inputs) == (2, 4, 2, 0, 4)
    assert w.favours == "replace" and w.difference == 2 and w.hit_pct("replace") == 50.0
    assert e.buffer.occupancy == 0 and e.keep._position == [0]  # the real buffer was never touched


def test_fork_copies_ids_and_policy_but_no_rows() -> None:
    e = BufferEngine(PersistentBuffer(4, 3), np.array([100, 200]), 0, keep_policy("lfu").build(0))
    e.buffer.warm_load(A, __import__("torch").ones(2, 3))
    twin = fork(e)
    assert twin.buffer.feature_dim == 0 and twin.buffer.occupancy == 2 and e.buffer.feature_dim == 3
    twin.complete(twin.prepare(np.array([160, 161, 162]), replace=True), None)
    assert sorted(e.buffer.slot_ids[e.buffer.slot_ids >= 0]) == [150, 151]  # the original kept its state


def test_outlook_plays_the_window_else_the_recent_past() -> None:
    e = engine()
    outlook = Outlook(e)
    assert outlook.what_if() is None  # nothing sampled, nothing seen
    outlook.advance(B, [])
    assert outlook.what_if().source == "past"
    outlook.advance(B, [B, B])
    w = outlook.what_if()
    assert w.source == "window" and w.minibatches == 2


class Recorder:
    """A chat model that answers REPLACE and keeps every prompt it was sent."""

    def __init__(self):
        self.prompts: list[str] = []

    def invoke(self, messages):
        self.prompts.append("\n".join(m.content for m in messages))
        return AIMessage(json.dumps(REPLACE))


class FixedOutlook:
    def __init__(self, whatif: WhatIf):
        self.whatif, self.calls = whatif, 0

    def what_if(self) -> WhatIf:
        self.calls += 1
        return self.whatif


def decide(whatif: WhatIf, version: str = "v2", min_difference_pct: float = 0.5, stale: int = 20, size: int = 5):
    chat, outlook = Recorder(), FixedOutlook(whatif)
    config = AgentConfig(model="scripted:unused", prompt_version=version, min_difference_pct=min_difference_pct)
    graph = build_graph(chat, PromptSet.load(PROMPTS_DIR, version), config)
    req = request(9, 30, stale=stale, size=size).model_copy(update={"outlook": outlook})
    outcome = graph.invoke(AgentState(facts=FACTS, request=req))["outcome"]
    return outcome, chat, outlook


CLEAR = WhatIf(source="window", minibatches=8, remote_inputs=10_000, replace_rows=4_321, skip_rows=5_000,
               replace_hits=5_679, skip_hits=5_000)
CLOSE = CLEAR.model_copy(update={"replace_rows": 4_990})


def test_the_whatif_numbers_reach_prompt_v2_and_the_model_decides_when_they_differ() -> None:
    outcome, chat, outlook = decide(CLEAR)
    assert outcome.source == "model" and outcome.whatif == CLEAR and outlook.calls == 1
    (prompt,) = chat.prompts
    assert "replace now: 4,321 rows fetched, %-Hits 56.8" in prompt
    assert "skip now: 5,000 rows fetched, %-Hits 50.0" in prompt
    assert "replace fetches 679 fewer rows than skip" in prompt and "next 8 minibatches" in prompt


def test_v1_is_unchanged_by_the_whatif() -> None:
    _, chat, _ = decide(CLEAR, version="v1")
    assert "4,321" not in chat.prompts[0] and "what-if" not in chat.prompts[0].lower()


def test_no_difference_guard_decides_without_the_model_and_counts_apart() -> None:
    outcome, chat, _ = decide(CLOSE)  # 10 rows of 5,000: under 0.5%
    assert chat.prompts == [] and outcome.source == "no-difference" and outcome.decision == "replace"
    assert "differ by 10 rows" in outcome.reason
    outcome, chat, _ = decide(CLOSE, min_difference_pct=0)  # 0: the model is always asked
    assert outcome.source == "model" and len(chat.prompts) == 1
    stats = RunnerStats()
    for source in ("no-difference", "guard", "model"):
        stats.record(DecisionOutcome(request_step=1, decision="skip", source=source))
    assert stats.decisions == {"no-difference": 1, "guarded": 1, "skip": 1} and len(stats.latencies_s) == 1


def test_no_whatif_is_played_when_the_guard_settles_the_request() -> None:
    outcome, chat, outlook = decide(CLEAR, size=0)  # no new minibatch: skip without a what-if
    assert outcome.source == "guard" and outlook.calls == 0 and outcome.whatif is None and chat.prompts == []


def test_with_a_whatif_the_model_judges_full_buffers_and_the_end_of_training() -> None:
    """'Nothing stale' and 'last 5%' are rules of thumb for the blind agent; a what-if measures both answers."""
    outcome, chat, outlook = decide(CLEAR, stale=0)
    assert outcome.source == "model" and outlook.calls == 1


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_recorded_whatif_is_used_as_is(version) -> None:
    chat = Recorder()
    config = AgentConfig(model="scripted:unused", prompt_version=version)
    graph = build_graph(chat, PromptSet.load(PROMPTS_DIR, version), config)
    req = request(9, 30).model_copy(update={"whatif": CLEAR})
    out = graph.invoke(AgentState(facts=FACTS, request=req))
    assert out["whatif"] == CLEAR and out["outcome"].source == "model"


@pytest.mark.parametrize("policy, idle", [("lookahead", True), ("decay", False)])
def test_between_answers_the_agent_keeps_a_lookahead_buffer_reranking(tmp_path, policy, idle) -> None:
    """A slow agent (answers 4 minibatches late) must not freeze a buffer whose re-ranking is free."""
    from rudder_agent.agent.controller import LLMController
    from rudder_agent.replay.recording import load_recording
    from rudder_agent.replay.simulator import replay
    from tests.unit.test_replay import SKIP_ANSWER, make_run, random_inputs

    script = tmp_path / "skip.jsonl"
    script.write_text(json.dumps(SKIP_ANSWER) + "\n")
    run = make_run(tmp_path / "run", random_inputs(16), policy=policy, per_epoch=16)
    rows: list = []
    replay(load_recording(run, 0), LLMController(AgentConfig(model=f"scripted:{script}", min_difference_pct=0)),
           lambda r, kind: rows.append(r) if kind == "minibatch" else None, mode="async", latency_minibatches=4,
           progress=False, policy=policy, lookahead=2)
    sources = [m.decision_source for m in rows]
    assert sources[0] == "guard" and "model" in sources  # the opening, then late answers
    unanswered = [m for m in rows[1:] if m.decision_source in (None, "idle")]
    assert unanswered and all((m.decision_source == "idle") == idle for m in unanswered)
    assert all(m.decision_applied == "replace" for m in unanswered if m.decision_source == "idle")
