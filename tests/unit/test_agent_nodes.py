"""The nodes of the decision graph: collector and context builder on their own; guard, model, fallback and
record through the graph, from the state the first two nodes leave."""

from __future__ import annotations

import json
import types

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

from rudder_agent.agent import model_nodes
from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.graph import build_graph
from rudder_agent.agent.guard import Guard, rule_decision
from rudder_agent.agent.nodes import build_context, collect_metrics
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState, HistoryEntry, Progress
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.paths import PROMPTS_DIR

FACTS = StaticFacts(dataset="ogbn-arxiv", num_nodes=169_343, num_edges=1_166_243, num_parts=2, partition=0,
                    local_nodes=85_000, halo_nodes=40_000, capacity=2_000, total_minibatches=200, feature_dim=128)
PROMPTS = PromptSet.load(PROMPTS_DIR, "v1")
ANSWER = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "hits falling, stale present"}


def batch(step: int, hits: int, remote: int = 100, replace_rows: int = 0) -> MinibatchMetrics:
    return MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=400, remote_inputs=remote, hits=hits,
                            misses=remote - hits, replace_rows=replace_rows, comm_rows=remote - hits + replace_rows,
                            comm_bytes=4 * (remote - hits + replace_rows))


def state(hits: list[int], first: int = 0, stale: int = 20, occupancy: int = 2_000, history=()) -> AgentState:
    window = [batch(first + i, h) for i, h in enumerate(hits)]
    step = first + max(len(hits) - 1, 0)
    request = DecisionRequest(step=step, window=window, stale=stale, occupancy=occupancy, capacity=2_000)
    return AgentState(facts=FACTS, request=request, history=list(history))


def prepared(s: AgentState) -> AgentState:
    """The state as the first two nodes leave it."""
    s = s.model_copy(update=collect_metrics(s))
    return s.model_copy(update=build_context(s))


def decide(chat, **config):
    """The graph with ``chat`` as its model: state in, the final state's fields out."""
    return build_graph(chat, PROMPTS, AgentConfig(model="scripted:unused", **config)).invoke


def maker(*answers: str, **config):
    return decide(FakeListChatModel(responses=list(answers) or ["unused"]), **config)


def test_collector_hits_are_per_window_not_cumulative():
    first = prepared(state([10, 10]))
    entry = HistoryEntry(step=1, window=first.window, decision="skip", source="model")
    window = collect_metrics(state([60, 80], first=2, history=[entry]))["window"]
    assert window.hit_pct == pytest.approx(70.0)
    assert window.hit_trend_pp == pytest.approx(60.0) and window.trend == "rising"
    assert (window.first_step, window.last_step, window.minibatches) == (2, 3, 2)
    assert window.comm_per_mb == pytest.approx(30.0)


def test_collector_trend_within_window_without_history():
    window = collect_metrics(state([50, 50, 20, 20]))["window"]
    assert window.hit_pct == pytest.approx(35.0)
    assert window.hit_trend_pp == pytest.approx(-30.0) and window.trend == "falling"
    assert collect_metrics(state([50, 50]))["window"].trend == "flat"


def test_collector_counts_replacement_rows_in_comm():
    s = state([50])
    s.request.window[0] = batch(0, 50, replace_rows=300)
    window = collect_metrics(s)["window"]
    assert (window.replace_rows, window.comm_rows) == (300, 350)


def test_collector_handles_an_empty_window():
    window = collect_metrics(state([], first=7))["window"]
    assert (window.minibatches, window.hit_pct, window.comm_per_mb, window.trend) == (0, 0.0, 0.0, "flat")


def test_context_builder_measures_the_previous_decisions_effect():
    old = prepared(state([30, 30]))
    older = HistoryEntry(step=0, window=old.window, decision="skip", source="guard", hits_change_pp=1.0,
                         comm_change_per_mb=0.0)
    last = HistoryEntry(step=1, window=old.window, decision="replace", source="model")
    s = prepared(state([50, 50], first=2, history=[older, last]))
    assert s.history[0] == older
    assert s.history[1].hits_change_pp == pytest.approx(20.0)
    assert s.history[1].comm_change_per_mb == pytest.approx(-20.0)
    assert s.progress == Progress(done=4, total=200) and s.progress.pending == 196


def test_context_builder_waits_for_a_window_with_minibatches():
    last = HistoryEntry(step=1, window=prepared(state([30])).window, decision="replace", source="model")
    s = prepared(state([], first=5, history=[last]))
    assert not s.history[0].evaluated


@pytest.mark.parametrize("stale,occupancy,done,reason", [
    (0, 2_000, 10, "nothing to replace"),
    (5, 2_000, 195, "last 5%"),
    (0, 1_000, 10, None),
    (5, 2_000, 189, None),
])
def test_guard(stale, occupancy, done, reason):
    window = prepared(state([10], stale=stale, occupancy=occupancy)).window
    got = Guard(end_fraction=0.05).skip_reason(window, Progress(done=done, total=200))
    assert (got is None) if reason is None else (reason in got)
    assert Guard(enabled=False).skip_reason(window, Progress(done=done, total=200)) is None


def test_guard_skips_windows_without_metrics():
    window = prepared(state([])).window
    assert "no new minibatch" in Guard().skip_reason(window, Progress(done=1, total=200))


@pytest.mark.parametrize("hits,stale,occupancy,expected", [
    ([90, 90], 5, 2_000, "skip"),
    ([20, 20], 5, 2_000, "replace"),
    ([95, 70], 5, 2_000, "replace"),
    ([20, 20], 0, 2_000, "skip"),
    ([20, 20], 0, 1_500, "replace"),
])
def test_rule_fallback(hits, stale, occupancy, expected):
    window = prepared(state(hits, stale=stale, occupancy=occupancy)).window
    assert rule_decision(window, low_hit_pct=50.0) == expected


def test_the_models_validated_answer_is_the_decision(monkeypatch):
    clock = [100.0]  # the node's clock, advanced only by the model call: latency is the call's, exactly
    monkeypatch.setattr(model_nodes, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def model(_):
        clock[0] += 2.5
        return AIMessage(json.dumps(ANSWER))

    out = decide(RunnableLambda(model))(prepared(state([40, 20])))
    outcome = out["outcome"]
    assert (outcome.source, outcome.valid, outcome.decision) == ("model", True, "replace")
    assert (outcome.expected_hits, outcome.expected_comm) == ("increase", "increase")
    assert outcome.reason == ANSWER["reason"] and outcome.latency_s == 2.5
    (entry,) = out["history"]
    assert (entry.step, entry.decision, entry.source, entry.expected_hits) == (1, "replace", "model", "increase")


def test_the_guard_skips_without_calling_the_model():
    never = RunnableLambda(lambda _: pytest.fail("the model must not be called"))
    outcome = decide(never)(prepared(state([40, 20], stale=0)))["outcome"]
    assert (outcome.source, outcome.decision, outcome.valid) == ("guard", "skip", True)


@pytest.mark.parametrize("policy,expected", [("skip", "skip"), ("rule", "replace")])
def test_invalid_answer_falls_back_and_is_counted(policy, expected):
    out = maker('{"decision": "evict"}', fallback=policy)(prepared(state([40, 20])))
    outcome = out["outcome"]
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, expected)
    assert outcome.reason.startswith("invalid answer: decision")
    assert out["history"][0].source == "fallback"


@pytest.mark.parametrize("error", [TimeoutError("read timed out"), ConnectionError("refused"), RuntimeError("boom")])
def test_backend_errors_fall_back(error):
    def fail(_):
        raise error

    outcome = decide(RunnableLambda(fail), fallback="rule")(prepared(state([40, 20])))["outcome"]
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "replace")
    assert outcome.reason.startswith(f"backend error: {type(error).__name__}")


def test_chain_of_thought_answer_needs_reasoning():
    plain = json.dumps(ANSWER)
    assert maker(plain, cot=True)(prepared(state([40, 20])))["outcome"].source == "fallback"
    reasoned = json.dumps({"reasoning": "hits fell 20 points; 20 stale entries", **ANSWER})
    assert maker(reasoned, cot=True)(prepared(state([40, 20])))["outcome"].source == "model"


@pytest.mark.parametrize("history_len,kept", [(3, 3), (0, 1)])
def test_history_is_bounded(history_len, kept):
    dm = maker(json.dumps(ANSWER), history_len=history_len)
    s = prepared(state([40, 20]))
    for _ in range(6):
        s = s.model_copy(update=dm(s))
    assert len(s.history) == kept


def test_windows_without_minibatches_leave_no_history():
    out = maker(json.dumps(ANSWER))(prepared(state([])))
    assert out["outcome"].source == "guard" and out["history"] == []


def test_guard_fills_empty_slots_without_the_model() -> None:
    from rudder_agent.agent.state import WindowSummary

    fields = {name: 0 for name in WindowSummary.model_fields}
    base = WindowSummary.model_validate({**fields, "minibatches": 3, "capacity": 100, "trend": "flat"})
    guard = Guard()
    assert guard.fill_reason(base.model_copy(update={"occupancy": 0})) is not None
    assert guard.fill_reason(base.model_copy(update={"occupancy": 95})) is None
    assert Guard(enabled=False).fill_reason(base.model_copy(update={"occupancy": 0})) is None
