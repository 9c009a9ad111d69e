"""The graph LangGraph Studio loads (rudder_agent/agent/decision_graph.py): its model, prompt version and
chain-of-thought switch come from $RUDDER_AGENT_MODEL, $RUDDER_AGENT_PROMPT and $RUDDER_AGENT_COT.

Studio imports the module and runs its ``graph``; so does this test, with a scripted model. The live
`langgraph dev` server is test_studio.py."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from rudder_agent.agent import prompts
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.metrics import MinibatchMetrics

FACTS = StaticFacts(dataset="cora", num_nodes=2708, num_edges=10556, num_parts=2, partition=0, local_nodes=1354,
                    halo_nodes=191, capacity=48, total_minibatches=30, feature_dim=1433)
MODULE = "rudder_agent.agent.decision_graph"
ANSWER = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "scripted"}
REASONED = {"reasoning": "hits are steady and the buffer is full", **ANSWER}
STUDIO_ROUTE = ["metrics_collector", "context_builder", "guard", "ask_model", "read_answer", "record"]
"""The nodes :func:`studio_input` passes: no what-if (none recorded, no buffer to fork), so the model decides."""


def studio_input() -> dict:
    """A full buffer with stale entries, a third into training: the guard lets the model decide."""
    window = [MinibatchMetrics(rank=0, epoch=0, step=s, input_nodes=900, remote_inputs=300, hits=60, misses=240,
                               comm_rows=240, comm_bytes=240 * 1433 * 4) for s in range(5, 10)]
    request = DecisionRequest(step=9, window=window, stale=30, occupancy=48, capacity=48)
    return {"facts": FACTS.model_dump(), "request": request.model_dump()}


def load_studio_graph(monkeypatch, tmp_path, answer: dict, **env: str):
    """decision_graph imported afresh under ``env`` (RUDDER_AGENT_*), the model scripted to give ``answer``;
    returns the module and the prompt versions it loaded."""
    script = tmp_path / "answers.jsonl"
    script.write_text(json.dumps(answer) + "\n")
    monkeypatch.setenv("RUDDER_AGENT_MODEL", f"scripted:{script}")
    for name in ("RUDDER_AGENT_PROMPT", "RUDDER_AGENT_COT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loaded: list[str] = []
    load = prompts.PromptSet.load.__func__
    monkeypatch.setattr(prompts.PromptSet, "load", classmethod(lambda cls, root, version: loaded.append(version)
                                                               or load(cls, root, version)))
    # imported afresh, and afterwards sys.modules as it was (a test that runs the module by path expects it absent)
    monkeypatch.setitem(sys.modules, MODULE, sys.modules.get(MODULE))
    del sys.modules[MODULE]
    return importlib.import_module(MODULE), loaded


def test_the_defaults_are_the_runs_defaults(monkeypatch, tmp_path):
    module, loaded = load_studio_graph(monkeypatch, tmp_path, ANSWER)
    assert (module.config.prompt_version, module.config.cot, loaded) == ("v2", False, ["v2"])
    result = module.graph.invoke(studio_input())
    outcome = result["outcome"]
    assert (outcome.source, outcome.decision, outcome.reason) == ("model", "skip", "scripted")
    assert result["route"] == outcome.route == STUDIO_ROUTE


@pytest.mark.parametrize("cot", ["1", "true", "yes"])
def test_prompt_and_chain_of_thought_from_the_environment(monkeypatch, tmp_path, cot):
    module, loaded = load_studio_graph(monkeypatch, tmp_path, REASONED, RUDDER_AGENT_PROMPT="v1", RUDDER_AGENT_COT=cot)
    assert (module.config.prompt_version, module.config.cot, loaded) == ("v1", True, ["v1"])
    # the reasoned answer passes only the chain-of-thought schema: without CoT it would be a fallback
    outcome = module.graph.invoke(studio_input())["outcome"]
    assert (outcome.source, outcome.valid, outcome.decision) == ("model", True, "skip")


def test_without_chain_of_thought_a_reasoned_answer_is_refused(monkeypatch, tmp_path):
    module, _ = load_studio_graph(monkeypatch, tmp_path, REASONED, RUDDER_AGENT_COT="0")
    outcome = module.graph.invoke(studio_input())["outcome"]
    assert (outcome.source, outcome.valid) == ("fallback", False)
