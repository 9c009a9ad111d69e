"""The answer schema constrains generation tightly, and parsing is lenient only about wrappers."""

from __future__ import annotations

import json

import pytest

from rudder_agent.llm.output import (
    REASON_MAX_CHARS,
    DecisionAnswer,
    InvalidAnswer,
    ReasonedDecisionAnswer,
    answer_schema,
    parse_answer,
)

GOOD = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "stale entries, hits falling"}


def _types(schema: dict) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for value in schema.values():
        if isinstance(value, dict):
            found |= _types(value)
    return found


def test_schema_has_only_enums_and_bounded_strings():
    schema = DecisionAnswer.model_json_schema()
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"decision", "hits", "comm", "reason"}
    assert props["decision"]["enum"] == ["replace", "skip"]
    assert props["hits"]["enum"] == props["comm"]["enum"] == ["increase", "decrease", "unchanged"]
    assert props["reason"]["maxLength"] == REASON_MAX_CHARS
    assert not {"number", "integer"} & _types(schema)


def test_chain_of_thought_schema_puts_bounded_reasoning_first():
    assert answer_schema(False) is DecisionAnswer
    assert answer_schema(True) is ReasonedDecisionAnswer
    schema = ReasonedDecisionAnswer.model_json_schema()
    assert list(schema["properties"])[0] == "reasoning"
    assert schema["properties"]["reasoning"]["maxLength"] > REASON_MAX_CHARS
    assert "reasoning" not in DecisionAnswer.model_json_schema()["properties"]


@pytest.mark.parametrize("text", [
    json.dumps(GOOD),
    "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
    "Sure! Here is my answer: " + json.dumps(GOOD) + " Hope this helps.",
    '{"decision": "replace", "hits": "increase", "comm": "increase", "reason": "stale entries,\nhits falling"}',
    "{not json} " + json.dumps(GOOD),
    json.dumps(GOOD) + json.dumps({**GOOD, "decision": "skip"}),
])
def test_lenient_about_wrappers(text):
    answer = parse_answer(text, DecisionAnswer)
    assert answer.decision == "replace" and answer.hits == "increase"


@pytest.mark.parametrize("text,needle", [
    ("", "no JSON object"),
    ("replace", "no JSON object"),
    ('{"decision": "replace", "hits": "increase"', "no JSON object"),
    (json.dumps({**GOOD, "decision": "evict"}), "decision"),
    (json.dumps({**GOOD, "decision": "Replace"}), "decision"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "comm"}), "comm"),
    (json.dumps({**GOOD, "confidence": "high"}), "confidence"),
    (json.dumps({**GOOD, "reason": 5}), "reason"),
    (json.dumps({**GOOD, "reason": "x" * (REASON_MAX_CHARS + 1)}), "reason"),
    (json.dumps(["replace", "increase"]), "no JSON object"),
])
def test_strict_about_content(text, needle):
    with pytest.raises(InvalidAnswer, match=needle):
        parse_answer(text, DecisionAnswer)


def test_reasoning_required_only_with_chain_of_thought():
    with pytest.raises(InvalidAnswer, match="reasoning"):
        parse_answer(json.dumps(GOOD), ReasonedDecisionAnswer)
    with pytest.raises(InvalidAnswer, match="reasoning"):
        parse_answer(json.dumps({**GOOD, "reasoning": "hits fall"}), DecisionAnswer)
    assert parse_answer(json.dumps({"reasoning": "hits fall", **GOOD}), ReasonedDecisionAnswer).reasoning == "hits fall"


@pytest.mark.parametrize("value", [None, 42, b"{}", ["{}"]])
def test_non_text_is_invalid(value):
    with pytest.raises(InvalidAnswer, match="not text"):
        parse_answer(value, DecisionAnswer)
