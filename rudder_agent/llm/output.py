"""The answer a model must give, as Pydantic models whose JSON schema constrains generation.

Only enums and bounded strings: a free-form number lets a small model emit digits until the
token limit. Parsing is lenient about wrappers (code fences, prose around the object, raw
newlines inside strings) and strict about content (Pydantic validation in strict mode).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rudder_agent.decision import Action, Direction

REASON_MAX_CHARS = 160
REASONING_MAX_CHARS = 800
_MAX_ANSWER_CHARS = 20_000
_MAX_OBJECT_STARTS = 32
_FENCE = re.compile(r"```[a-zA-Z]*")

Reason = Annotated[str, Field(max_length=REASON_MAX_CHARS, description="why, in at most 20 words")]
Hits = Annotated[Direction, Field(description="expected change of %-Hits after this decision")]
Comm = Annotated[Direction, Field(description="expected change of remote rows fetched per minibatch")]


class DecisionAnswer(BaseModel):
    """The plain answer: a decision and the effect the model expects from it."""

    model_config = ConfigDict(extra="forbid", title="decision")

    decision: Action
    hits: Hits
    comm: Comm
    reason: Reason


class ReasonedDecisionAnswer(BaseModel):
    """The chain-of-thought answer; `reasoning` comes first so the model thinks before deciding."""

    model_config = ConfigDict(extra="forbid", title="reasoned_decision")

    reasoning: Annotated[
        str, Field(max_length=REASONING_MAX_CHARS, description="step-by-step thinking, at most 100 words")
    ]
    decision: Action
    hits: Hits
    comm: Comm
    reason: Reason


class BriefDecisionAnswer(BaseModel):
    """The plain answer without the ``reason`` text: for a model whose every generated token is slow.

    A small model's reasons say nothing (docs/agent.md) yet are half of what it generates; readers
    still find ``reason`` on the answer, empty.
    """

    model_config = ConfigDict(extra="forbid", title="decision")

    decision: Action
    hits: Hits
    comm: Comm
    reason: ClassVar[str] = ""


AnswerModel = type[DecisionAnswer] | type[ReasonedDecisionAnswer] | type[BriefDecisionAnswer]


class InvalidAnswer(ValueError):
    """The model's text holds no schema-valid decision."""


def answer_schema(cot: bool, brief: bool = False) -> AnswerModel:
    """The answer model for a run: chain-of-thought adds a bounded `reasoning` field; ``brief`` drops the plain
    answer's `reason` (chain-of-thought keeps it)."""
    if cot:
        return ReasonedDecisionAnswer
    return BriefDecisionAnswer if brief else DecisionAnswer


def extract_json_object(text: str) -> dict:
    """The first JSON object in `text`, ignoring fences and surrounding prose."""
    text = _FENCE.sub("", text[:_MAX_ANSWER_CHARS])
    decoder = json.JSONDecoder(strict=False)  # strict=False admits raw newlines inside strings
    start = text.find("{")
    for _ in range(_MAX_OBJECT_STARTS):
        if start < 0:
            break
        try:
            value, _end = decoder.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise InvalidAnswer("no JSON object in the answer")


_DECISION_KEY = re.compile(r'"decision"\s*:\s*"?$')


def decision_logodds(logprobs: list[dict] | None) -> float:
    """log P(replace) - log P(skip) where the answer's decision value starts (OpenAI-style token log-probabilities).

    An action absent from that token's alternatives counts as likely as the least likely one listed
    (an upper bound). InvalidAnswer when the answer has no log-probabilities or no decision.
    """
    text = ""
    for token in logprobs or ():
        if _DECISION_KEY.search(text):
            top = {t["token"].strip().lstrip('"'): t["logprob"] for t in token.get("top_logprobs") or ()}
            replace = max((lp for word, lp in top.items() if word and "replace".startswith(word)), default=None)
            skip = max((lp for word, lp in top.items() if word and "skip".startswith(word)), default=None)
            if replace is not None or skip is not None:
                floor = min(top.values())
                return (floor if replace is None else replace) - (floor if skip is None else skip)
        text += token.get("token", "")
    raise InvalidAnswer("no log-probabilities at the answer's decision" if logprobs else
                        "the backend returned no log-probabilities (the swap test needs them)")


def parse_answer(text: object, schema: AnswerModel) -> DecisionAnswer | ReasonedDecisionAnswer:
    """Validate a model's raw text against the run's answer schema, or raise InvalidAnswer."""
    if not isinstance(text, str):
        raise InvalidAnswer(f"answer is {type(text).__name__}, not text")
    obj = extract_json_object(text)
    try:
        return schema.model_validate(obj, strict=True)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in err.errors()[:3])
        raise InvalidAnswer(problems) from err
