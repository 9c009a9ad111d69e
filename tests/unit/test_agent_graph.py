"""The compiled graph and the `llm` controller, end to end with the scripted backend."""

from __future__ import annotations

import json
import runpy
import threading

import pytest

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController, make_backend
from rudder_agent.agent.graph import build_graph
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState
from rudder_agent.controllers.base import Controller
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.errors import BackendError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.paths import PROJECT_ROOT, PROMPTS_DIR

FACTS = StaticFacts(dataset="ogbn-arxiv", num_nodes=169_343, num_edges=1_166_243, num_parts=2, partition=0,
                    local_nodes=85_000, halo_nodes=40_000, capacity=2_000, total_minibatches=100, feature_dim=128)
REPLACE = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "hits falling, stale present"}
SKIP = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "hits steady"}


def request(step: int, hit_pct: int, stale: int = 20, size: int = 5) -> DecisionRequest:
    window = [MinibatchMetrics(rank=0, epoch=0, step=s, input_nodes=400, remote_inputs=100, hits=hit_pct,
                               misses=100 - hit_pct, comm_rows=100 - hit_pct, comm_bytes=400 * (100 - hit_pct))
              for s in range(step - size + 1, step + 1)]
    return DecisionRequest(step=step, window=window, stale=stale, occupancy=2_000, capacity=2_000)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(a) for a in [REPLACE, SKIP, "not json"]) + "\n")
    return path


MODEL_ROUTE = ["metrics_collector", "context_builder", "guard", "ask_model", "read_answer"]
"""A request the guard leaves to the model, without a what-if (none recorded, no buffer to fork)."""


def test_graph_runs_the_nodes_of_the_requests_route_in_order(script):
    config = AgentConfig(model=f"scripted:{script}")
    prompts = PromptSet.load(PROMPTS_DIR, "v1")
    graph = build_graph(make_backend(config), prompts, config)
    steps = [name for chunk in graph.stream(AgentState(facts=FACTS, request=request(9, 30)), stream_mode="updates")
             for name in chunk]
    assert steps == [*MODEL_ROUTE, "record"]
    result = graph.invoke({"facts": FACTS.model_dump(), "request": request(9, 30).model_dump()})
    assert result["outcome"].decision == "skip" and result["outcome"].source == "model"  # second scripted answer
    assert len(result["history"]) == 1
    assert result["route"] == [*MODEL_ROUTE, "record"] and result["outcome"].route == [*MODEL_ROUTE, "record"]


@pytest.mark.parametrize("req, route, source", [
    (request(9, 30, stale=0), ["metrics_collector", "context_builder", "guard", "record"], "guard"),
    (request(9, 30), [*MODEL_ROUTE, "record"], "model"),
    (request(19, 30), [*MODEL_ROUTE, "fallback", "record"], "fallback"),  # the third scripted answer is not JSON
])
def test_each_outcome_carries_the_route_that_reached_it(script, req, route, source):
    ctl = LLMController(AgentConfig(model=f"scripted:{script}"))
    ctl.setup(FACTS)
    if source == "fallback":
        ctl.decide(request(9, 30))
        ctl.decide(request(14, 30))
    outcome = ctl.decide(req)
    assert (outcome.source, outcome.route) == (source, route)


def test_a_passs_own_fields_do_not_carry_into_the_next_request(script):
    """Only facts, request and history go in: a previous pass's outcome, fault or route is not read."""
    config = AgentConfig(model=f"scripted:{script}")
    graph = build_graph(make_backend(config), PromptSet.load(PROMPTS_DIR, "v2"), config)
    first = graph.invoke(AgentState(facts=FACTS, request=request(9, 30)))
    again = graph.invoke(AgentState(**{**first, "request": request(19, 30), "fault": "stale"}))
    assert again["outcome"].request_step == 19 and again["outcome"].decision == "skip"  # the second answer
    assert again["route"] == [*MODEL_ROUTE, "record"] and len(again["history"]) == 2


def test_controller_carries_history_and_measures_effects(script):
    ctl = LLMController(AgentConfig(model=f"scripted:{script}", fallback="rule"))
    assert isinstance(ctl, Controller) and ctl.name == "llm"
    ctl.setup(FACTS)
    outcomes = [ctl.decide(request(step, hits)) for step, hits in [(9, 30), (19, 50), (29, 45), (39, 20)]]
    ctl.close()
    assert [(o.source, o.decision, o.valid) for o in outcomes] == [
        ("model", "replace", True), ("model", "skip", True), ("fallback", "replace", False), ("model", "replace", True)]
    assert [o.request_step for o in outcomes] == [9, 19, 29, 39]
    history = ctl.history
    assert [h.step for h in history] == [9, 19, 29, 39]
    assert [h.hits_change_pp for h in history] == [pytest.approx(20.0), pytest.approx(-5.0), pytest.approx(-25.0), None]
    assert history[0].comm_change_per_mb == pytest.approx(-20.0)


def test_guard_and_end_of_training(script):
    ctl = LLMController(AgentConfig(model=f"scripted:{script}"))
    ctl.setup(FACTS)
    assert ctl.decide(request(9, 30, stale=0)).source == "guard"
    late = ctl.decide(request(97, 30))
    assert (late.source, late.decision) == ("guard", "skip") and "last 5%" in late.reason


def test_run_record_identifies_prompt_and_model(script):
    ctl = LLMController(AgentConfig(model=f"scripted:{script}", cot=True, seed=11))
    record = ctl.run_record()
    assert record == {"prompt_version": "v2", "prompt_sha256": PromptSet.load(PROMPTS_DIR, "v2").sha256,
                      "model": f"scripted:{script}", "cot": True, "swap_test": "auto", "fallback": "skip", "seed": 11}


def test_setup_fails_fast_on_a_bad_backend(tmp_path):
    with pytest.raises(BackendError, match="not found"):
        LLMController(AgentConfig(model=f"scripted:{tmp_path / 'missing.jsonl'}")).setup(FACTS)


def test_decide_from_a_background_thread(script):
    ctl = LLMController(AgentConfig(model=f"scripted:{script}"))
    ctl.setup(FACTS)
    results = []
    worker = threading.Thread(target=lambda: results.extend(ctl.decide(request(s, 30)) for s in (9, 19, 29)))
    worker.start()
    worker.join(timeout=30)
    ctl.close()
    assert [o.decision for o in results] == ["replace", "skip", "skip"]


def test_studio_module_exposes_the_graph_without_starting_a_backend(script, monkeypatch):
    monkeypatch.setenv("RUDDER_AGENT_MODEL", f"scripted:{script}")
    specs = json.loads((PROJECT_ROOT / "langgraph.json").read_text())["graphs"]
    assert specs == {"rudder_decision": "rudder_agent.agent.decision_graph:graph"}  # the packaged module
    module, name = specs["rudder_decision"].split(":")
    graph = runpy.run_module(module)[name]  # a fresh import: it reads $RUDDER_AGENT_MODEL now
    assert set(graph.get_graph().nodes) >= {"metrics_collector", "context_builder", "what_if", "guard", "no_difference",
                                            "ask_model", "read_answer", "swap_test", "fallback", "record"}
    assert graph.invoke({"facts": FACTS, "request": request(9, 30)})["outcome"].decision == "replace"
