"""Contract of the OpenAI-compatible path (also the embedded llama.cpp path), against a stand-in.

The stand-in is NOT an OpenAI server: an http.server on 127.0.0.1 (ephemeral port) answering
/v1/models and /v1/chat/completions in the documented shape, recording request bodies so the
test can assert `response_format` json_schema, temperature 0, the seed and the token budget.
"""

from __future__ import annotations

import json
import socket
import sys
from http.server import BaseHTTPRequestHandler

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import make_backend
from rudder_agent.agent.controller import LLMController
from rudder_agent.config import BufferConfig
from rudder_agent.registry import make_controller
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.backends import make_chat_model
from rudder_agent.llm.output import DecisionAnswer, ReasonedDecisionAnswer, parse_answer
from rudder_agent.metrics import MinibatchMetrics
from tests.loopback import OPENAI_MODELS, bounded, counted_decision, loopback_server, misbehaving

ANSWER = '{\n  "decision": "skip",\n  "hits": "unchanged",\n  "comm": "unchanged",\n  "reason": "steady"\n}'


class StandInOpenAI(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible server; records chat request bodies."""

    bodies: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        assert self.path == "/v1/models"
        self._send({"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "me"}]})

    def do_POST(self) -> None:
        assert self.path == "/v1/chat/completions"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        self._send({
            "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 600, "completion_tokens": 30, "total_tokens": 630},
        })


@pytest.fixture
def base_url():
    with loopback_server(StandInOpenAI) as url:
        yield f"{url}/v1"


def test_request_carries_json_schema_temperature_and_seed(base_url):
    backend = make_backend(AgentConfig(model=f"openai:m@{base_url}", seed=3, max_tokens=99))
    backend.check()
    reply = backend.invoke([SystemMessage("facts"), HumanMessage("window")])
    (body,) = StandInOpenAI.bodies
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"] == DecisionAnswer.model_json_schema()
    assert fmt["json_schema"]["strict"] is True
    assert body["temperature"] == 0 and body["seed"] == 3
    assert 99 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert body.get("stream") in (None, False)
    assert parse_answer(reply.text, DecisionAnswer).decision == "skip"


FACTS = StaticFacts(dataset="ogbn-products", num_nodes=2_449_029, num_edges=61_859_140, num_parts=2, partition=0,
                    local_nodes=1_200_000, halo_nodes=400_000, capacity=20_000, total_minibatches=1000, feature_dim=100)


def request(step: int) -> DecisionRequest:
    """A window the guard passes to the model: stale entries, a full buffer, far from the end."""
    window = [MinibatchMetrics(rank=0, epoch=0, step=s, input_nodes=4000, remote_inputs=1000, hits=300, misses=700,
                               comm_rows=700, comm_bytes=280_000) for s in range(step - 4, step + 1)]
    return DecisionRequest(step=step, window=window, stale=40, occupancy=20_000, capacity=20_000)


def acquire(semaphore, times: int) -> None:
    """Wait for ``times`` POSTs to reach the stand-in (bounded: a missing attempt fails, it does not hang)."""
    for k in range(times):
        assert semaphore.acquire(timeout=30), f"only {k} of {times} requests reached the server"


def test_llm_timeout_reaches_the_http_client():
    """AgentConfig.timeout_s (what `--llm-timeout` sets) bounds each call of the real HTTP client.

    The stand-in accepts every chat request and never answers. Without the configured 0.5 s the
    client would wait openai's default 600 s and `bounded` would fail after 30 s.
    """
    handler = misbehaving(OPENAI_MODELS, on_post="hang")
    with loopback_server(handler) as url:
        ctl = make_controller(BufferConfig.from_values({"controller": "llm", "model": f"openai:m@{url}/v1",
                                                        "timeout_s": 0.5}))

        def setup_and_decide():
            ctl.setup(FACTS)  # the warm-up call times out too (a warning, not an error)
            return counted_decision(ctl, request(10))

        outcome, stats = bounded(setup_and_decide, 30)
        acquire(handler.arrived, 4)  # warm-up and decision: one attempt plus one retry each (retries=1)
        posts = len(handler.bodies)
    assert posts == 4
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "skip")
    assert outcome.reason == "backend error: OpenAITimeoutError: Request timed out."
    assert dict(stats.decisions) == {"invalid": 1} and len(stats.latencies_s) == 1


def test_dropped_connections_are_retried_the_configured_number_of_times_then_a_counted_fallback():
    """A server that reads each chat request and hangs up: 1 + retries attempts, then a fallback."""
    handler = misbehaving(OPENAI_MODELS, on_post="close")
    with loopback_server(handler) as url:
        ctl = LLMController(AgentConfig(model=f"openai:m@{url}/v1", retries=2, warm_up=False, timeout_s=30))
        ctl.setup(FACTS)
        outcome, stats = bounded(lambda: counted_decision(ctl, request(10)))
        acquire(handler.arrived, 3)
        posts = len(handler.bodies)
    assert posts == 3
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "skip")
    assert outcome.reason == "backend error: OpenAIConnectionError: Connection error."
    assert dict(stats.decisions) == {"invalid": 1}


def test_a_server_gone_after_set_up_is_a_refused_socket_and_a_counted_fallback():
    """Set up against a live server, which then goes away: its port refuses and the call falls back."""
    handler = misbehaving(OPENAI_MODELS, on_post="close")
    with loopback_server(handler) as url:
        ctl = LLMController(AgentConfig(model=f"openai:m@{url}/v1", retries=2, warm_up=False, fallback="rule"))
        ctl.setup(FACTS)
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    outcome, stats = bounded(lambda: counted_decision(ctl, request(10)))
    assert handler.bodies == []
    # the rule fallback: %-Hits 30 is below 50 and 40 entries are stale
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "replace")
    assert outcome.reason == "backend error: OpenAIConnectionError: Connection error."
    assert dict(stats.decisions) == {"invalid": 1} and len(stats.latencies_s) == 1


def test_chain_of_thought_sends_the_reasoning_schema_and_budget(base_url, monkeypatch):
    """--cot through the OpenAI-compatible path (the embedded llama.cpp one too), without a real model."""
    answer = {"reasoning": "hits fell 10 points and 40 entries are stale", "decision": "replace", "hits": "increase",
              "comm": "increase", "reason": "stale entries"}
    monkeypatch.setattr(sys.modules[__name__], "ANSWER", json.dumps(answer))
    ctl = LLMController(AgentConfig(model=f"openai:m@{base_url}", cot=True, warm_up=False, seed=5))
    ctl.setup(FACTS)
    outcome = ctl.decide(request(10))
    ctl.close()
    (body,) = StandInOpenAI.bodies
    fmt = body["response_format"]["json_schema"]
    assert fmt["name"] == "reasoned_decision" and fmt["schema"] == ReasonedDecisionAnswer.model_json_schema()
    assert list(fmt["schema"]["properties"])[0] == "reasoning"  # it thinks before it decides
    assert 512 in (body.get("max_tokens"), body.get("max_completion_tokens")) and body["seed"] == 5
    assert (outcome.source, outcome.valid, outcome.decision, outcome.reason) == ("model", True, "replace",
                                                                                 "stale entries")
