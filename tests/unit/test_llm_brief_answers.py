"""The embedded model's answer, as short as the schema allows: no reason text, one line, nothing else changed."""

from __future__ import annotations

import json
import sys

import pytest

from rudder_agent.agent.controller import LLMController, make_backend
from rudder_agent.agent.prompts import answer_format
from rudder_agent.llm.backends import answer_model
from rudder_agent.llm.compact import one_line_grammar
from rudder_agent.llm.embedded import SHARED_ENDPOINT_ENV
from rudder_agent.llm.output import (BriefDecisionAnswer, DecisionAnswer, InvalidAnswer, ReasonedDecisionAnswer,
                                     parse_answer)
from rudder_agent.settings.agent import AgentConfig
from tests.unit import test_llm_openai_contract as contract
from tests.unit.test_llm_openai_contract import FACTS, StandInOpenAI, base_url, request  # noqa: F401 (fixture)

BRIEF = {"decision": "replace", "hits": "increase", "comm": "increase"}


@pytest.mark.parametrize("model, cot, expected", [
    ("llamacpp:smollm2-135m", False, BriefDecisionAnswer), ("llamacpp:smollm2-135m", True, ReasonedDecisionAnswer),
    ("openai:m@http://h/v1", False, DecisionAnswer), ("ollama:gemma3:4b", False, DecisionAnswer),
    ("scripted:a.jsonl", False, DecisionAnswer)])
def test_only_the_embedded_model_gives_brief_answers(model, cot, expected):
    assert answer_model(model, cot) is expected


def test_a_brief_answer_has_no_reason_field_and_reads_as_an_empty_reason():
    schema = BriefDecisionAnswer.model_json_schema()
    assert list(schema["properties"]) == ["decision", "hits", "comm"] == schema["required"]
    assert "reason" not in answer_format(BriefDecisionAnswer)  # the prompt shows the answer it may give
    assert parse_answer(json.dumps(BRIEF), BriefDecisionAnswer).reason == ""
    with pytest.raises(InvalidAnswer):
        parse_answer(json.dumps({**BRIEF, "reason": "x"}), BriefDecisionAnswer)


def test_the_one_line_grammar_is_the_schema_without_free_whitespace():
    grammar = one_line_grammar(BriefDecisionAnswer.model_json_schema())
    head, _, body = grammar.partition("%json ")
    assert head == "%llguidance {}\nstart: "
    sent = json.loads(body)
    assert sent.pop("x-guidance") == {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
    assert sent == BriefDecisionAnswer.model_json_schema()


def test_the_embedded_backend_sends_the_brief_schema_as_a_one_line_grammar(base_url, tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(16))
    monkeypatch.setenv(SHARED_ENDPOINT_ENV, base_url)
    monkeypatch.setattr(contract, "ANSWER", json.dumps(BRIEF))
    StandInOpenAI.bodies.clear()
    ctl = LLMController(AgentConfig(model=f"llamacpp:{gguf}", warm_up=False, swap_test="off"))
    ctl.setup(FACTS)
    outcome = ctl.decide(request(10))
    ctl.close()
    (body,) = StandInOpenAI.bodies
    assert "response_format" not in body
    assert body["grammar"] == one_line_grammar(BriefDecisionAnswer.model_json_schema())
    assert (outcome.source, outcome.valid, outcome.decision, outcome.reason) == ("model", True, "replace", "")


def test_other_openai_compatible_servers_keep_the_full_schema_in_response_format(base_url):
    body = make_backend(AgentConfig(model=f"openai:m@{base_url}"))._constraint()
    assert body["response_format"]["json_schema"]["schema"] == DecisionAnswer.model_json_schema()
    assert "extra_body" not in body
