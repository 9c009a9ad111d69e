"""Contract of the Ollama backend, checked against a stand-in for Ollama's HTTP API.

The stand-in is NOT Ollama: it is a tiny http.server on 127.0.0.1 (ephemeral port) that
answers /api/tags and /api/chat the way Ollama documents them (NDJSON chunks when the request
streams). It records each request body so the test can assert what we send: the answer's JSON
schema in `format`, temperature 0 and the seed in `options`.
"""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler

import pytest

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import LLMController
from rudder_agent.config import BufferConfig
from rudder_agent.registry import make_controller
from rudder_agent.decision import DecisionRequest, StaticFacts
from rudder_agent.llm.errors import BackendError
from rudder_agent.llm.output import DecisionAnswer, ReasonedDecisionAnswer
from rudder_agent.metrics import MinibatchMetrics
from tests.loopback import OLLAMA_TAGS, bounded, counted_decision, loopback_server, misbehaving

ANSWER = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "hits fell, 40 stale entries"}
STAMP = "2025-01-01T00:00:00Z"


class StandInOllama(BaseHTTPRequestHandler):
    """Answers like Ollama's /api/tags and /api/chat; records chat request bodies."""

    models = ["llama3.2:latest"]
    answer = json.dumps(ANSWER)
    bodies: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, payload: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        assert self.path == "/api/tags"
        models = [{"name": m, "model": m, "modified_at": STAMP, "size": 1, "digest": "0", "details": {}}
                  for m in self.models]
        self._send(json.dumps({"models": models}).encode(), "application/json")

    def do_POST(self) -> None:
        assert self.path == "/api/chat"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        half = len(self.answer) // 2
        parts = [self.answer[:half], self.answer[half:]]
        chunks = [{"model": body["model"], "created_at": STAMP, "message": {"role": "assistant", "content": p},
                   "done": False} for p in parts]
        final = {"model": body["model"], "created_at": STAMP, "message": {"role": "assistant", "content": ""},
                 "done": True, "done_reason": "stop", "prompt_eval_count": 500, "eval_count": 30}
        if body.get("stream", True):
            self._send("".join(json.dumps(c) + "\n" for c in [*chunks, final]).encode(), "application/x-ndjson")
        else:
            self._send(json.dumps({**final, "message": {"role": "assistant", "content": self.answer}}).encode(),
                       "application/json")


@pytest.fixture
def ollama_host():
    with loopback_server(StandInOllama) as url:
        yield url


FACTS = StaticFacts(dataset="ogbn-products", num_nodes=2_449_029, num_edges=61_859_140, num_parts=2, partition=0,
                    local_nodes=1_200_000, halo_nodes=400_000, capacity=20_000, total_minibatches=1000, feature_dim=100)


def request(step: int) -> DecisionRequest:
    window = [MinibatchMetrics(rank=0, epoch=0, step=s, input_nodes=4000, remote_inputs=1000, hits=300, misses=700,
                               comm_rows=700, comm_bytes=280_000) for s in range(step - 4, step + 1)]
    return DecisionRequest(step=step, window=window, stale=40, occupancy=20_000, capacity=20_000)


def controller(host: str, **kwargs) -> LLMController:
    ctl = LLMController(AgentConfig(model="ollama:llama3.2", ollama_host=host, seed=7, **kwargs))
    ctl.setup(FACTS)
    return ctl


def test_request_carries_schema_temperature_and_seed(ollama_host):
    ctl = controller(ollama_host)
    outcome = ctl.decide(request(10))
    ctl.close()
    warm_up, body = StandInOllama.bodies
    # the set-up warm-up carries the same static system message, so the runtime's prompt cache is reused
    assert warm_up["messages"][0] == body["messages"][0]
    assert body["model"] == "llama3.2"
    assert body["format"] == DecisionAnswer.model_json_schema()
    assert body["options"]["temperature"] == 0
    assert body["options"]["seed"] == 7
    assert body["options"]["num_predict"] == 160
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "%-Hits 30.0" in body["messages"][1]["content"]
    assert outcome.source == "model" and outcome.valid
    assert (outcome.decision, outcome.expected_hits, outcome.expected_comm) == ("replace", "increase", "increase")
    assert outcome.reason == ANSWER["reason"]


def test_chain_of_thought_sends_the_reasoning_schema(ollama_host, monkeypatch):
    monkeypatch.setattr(StandInOllama, "answer", json.dumps({"reasoning": "hits are low; stale exists", **ANSWER}))
    ctl = controller(ollama_host, cot=True)
    outcome = ctl.decide(request(10))
    ctl.close()
    assert StandInOllama.bodies[0]["format"] == ReasonedDecisionAnswer.model_json_schema()
    assert StandInOllama.bodies[0]["options"]["num_predict"] == 512
    assert outcome.valid and outcome.decision == "replace"


def test_invalid_answer_from_ollama_is_a_counted_fallback(ollama_host, monkeypatch):
    monkeypatch.setattr(StandInOllama, "answer", '{"decision": "evict"}')
    ctl = controller(ollama_host, fallback="rule")
    outcome = ctl.decide(request(10))
    ctl.close()
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "replace")


def test_model_not_pulled_fails_setup(ollama_host):
    ctl = LLMController(AgentConfig(model="ollama:qwen2.5:7b", ollama_host=ollama_host))
    with pytest.raises(BackendError, match=r"qwen2.5:7b.*ollama pull"):
        ctl.setup(FACTS)


def acquire(semaphore, times: int) -> None:
    """Wait for ``times`` POSTs to reach the stand-in (bounded: a missing attempt fails, it does not hang)."""
    for k in range(times):
        assert semaphore.acquire(timeout=30), f"only {k} of {times} requests reached the server"


def test_llm_timeout_reaches_the_http_client(monkeypatch):
    """AgentConfig.timeout_s (what `--llm-timeout` sets) bounds each call of Ollama's real httpx client.

    The stand-in accepts every chat request and never answers; without the configured 0.5 s the
    Ollama client waits forever (it has no default timeout) and `bounded` fails after 30 s.
    """
    handler = misbehaving(OLLAMA_TAGS, on_post="hang")
    with loopback_server(handler) as url:
        monkeypatch.setenv("OLLAMA_HOST", url)  # how a `rudder train` user points at their Ollama
        ctl = make_controller(BufferConfig.from_values(dict(controller="llm", model="ollama:llama3.2", timeout_s=0.5)))

        def setup_and_decide():
            ctl.setup(FACTS)  # the warm-up call times out too (a warning, not an error)
            return counted_decision(ctl, request(10))

        outcome, stats = bounded(setup_and_decide, 30)
        acquire(handler.arrived, 4)  # warm-up and decision: one attempt plus one retry each (retries=1)
        posts = len(handler.bodies)
    assert posts == 4
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "skip")
    assert outcome.reason == "backend error: ReadTimeout: timed out"
    assert dict(stats.decisions) == {"invalid": 1} and len(stats.latencies_s) == 1


def test_dropped_connections_are_retried_the_configured_number_of_times_then_a_counted_fallback():
    """A server that reads each chat request and hangs up: 1 + retries attempts, then a fallback."""
    handler = misbehaving(OLLAMA_TAGS, on_post="close")
    with loopback_server(handler) as url:
        ctl = controller(url, retries=2, warm_up=False, timeout_s=30)
        outcome, stats = bounded(lambda: counted_decision(ctl, request(10)))
        acquire(handler.arrived, 3)
        posts = len(handler.bodies)
    assert posts == 3
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "skip")
    assert outcome.reason.startswith("backend error: RemoteProtocolError: Server disconnected")
    assert dict(stats.decisions) == {"invalid": 1}


def test_a_server_gone_after_set_up_is_a_refused_socket_and_a_counted_fallback():
    """Set up against a live server, which then goes away: its port refuses and the call falls back."""
    handler = misbehaving(OLLAMA_TAGS, on_post="close")
    with loopback_server(handler) as url:
        ctl = controller(url, retries=2, warm_up=False, fallback="rule")
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    outcome, stats = bounded(lambda: counted_decision(ctl, request(10)))
    assert handler.bodies == []
    assert (outcome.source, outcome.valid, outcome.decision) == ("fallback", False, "replace")  # the rule policy
    assert outcome.reason == "backend error: ConnectError: [Errno 111] Connection refused"
    assert dict(stats.decisions) == {"invalid": 1} and len(stats.latencies_s) == 1
