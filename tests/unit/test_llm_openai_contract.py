"""Contract of the OpenAI-compatible path (also the embedded llama.cpp path), against a stand-in.

The stand-in is NOT an OpenAI server: an http.server on 127.0.0.1 (ephemeral port) answering
/v1/models and /v1/chat/completions in the documented shape, recording request bodies so the
test can assert `response_format` json_schema, temperature 0, the seed and the token budget.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rudder_agent.agent.configuration import AgentConfig
from rudder_agent.agent.controller import make_backend
from rudder_agent.llm.output import DecisionAnswer, parse_answer
from tests.loopback import loopback_server

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
