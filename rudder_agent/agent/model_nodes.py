"""The nodes of the decision graph that ask the model and read its answer; graph.py wires them.

Ask Model (or, asynchronously, Hand-off to the deciding thread's slow call), Read Answer, Swap Test and Fallback. A
failed call or an answer that cannot be read leaves a ``fault`` in the state; the fallback
turns it into a decision, counted invalid, so training never stops on the model.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.graph.state import CompiledStateGraph

from rudder_agent.agent.context import Context
from rudder_agent.agent.guard import rule_decision
from rudder_agent.agent.state import AgentState, Reply
from rudder_agent.decision import Action, DecisionOutcome, Unanswered
from rudder_agent.llm.output import InvalidAnswer, decision_logodds, parse_answer
from rudder_agent.log import get_logger

REASON_CHARS = 200

log = get_logger(__name__)


def ask_model(state: AgentState, context: Context) -> dict[str, Any]:
    """Ask Model (blocking): the prompt as measured and, for the swap test, the prompt with the what-if's
    figures exchanged; both are asked before either answer is read. A backend failure of any kind is a fault."""
    tic = time.perf_counter()
    try:
        shown = context.chat.invoke(context.prompt(state))
        if context.config.swaps(state.whatif):
            swapped = context.chat.invoke(context.prompt(state.model_copy(update={"whatif": state.whatif.swapped()})))
            reply, fault = Reply(text=shown.text, logprobs=(answer_logprobs(shown), answer_logprobs(swapped))), None
        else:
            reply, fault = Reply(text=shown.text), None
    except Exception as err:  # a backend failure of any kind must not stop training
        reply, fault = Reply(), f"backend error: {type(err).__name__}: {err}"
    return {"reply": reply.model_copy(update={"seconds": time.perf_counter() - tic}), "fault": fault}


def hand_off(state: AgentState, context: Context, answers: CompiledStateGraph) -> dict[str, Any]:
    """Hand-off (asynchronous mode): :func:`ask_model` runs on a thread of its own and the graph ends unanswered;
    ``answers`` (the answer path) reads the reply when it is taken. Busy: the model still answers an earlier
    request."""
    handed = context.hand_off
    asked = handed.late.ask(state.request, partial(ask_model, state, context=context),
                            partial(read_reply, handed.read, answers, state))
    return {"outcome": None, "model_call": Unanswered.ASKED if asked else Unanswered.BUSY}


def read_reply(read, answers: CompiledStateGraph, state: AgentState, reply: dict[str, Any]) -> DecisionOutcome:
    """The hand-off's reply (Ask Model's update) read by ``read`` on the answer path, from the state asked from."""
    return read(answers, state.model_copy(update=reply))


def read_answer(state: AgentState, context: Context) -> dict[str, Any]:
    """Read Answer: the reply checked against the run's answer schema; the model's word, or a fault."""
    try:
        answer = parse_answer(state.reply.text, context.schema)
    except InvalidAnswer as err:
        return {"fault": f"invalid answer: {err}"}
    log.debug("llm_decision", step=state.request.step, decision=answer.decision, hits=answer.hits,
              comm=answer.comm, reason=answer.reason, reasoning=getattr(answer, "reasoning", None))
    return {"outcome": DecisionOutcome(request_step=state.request.step, decision=answer.decision, source="model",
                                       expected_hits=answer.hits, expected_comm=answer.comm,
                                       reason=answer.reason[:REASON_CHARS])}


def apply_swap_test(state: AgentState) -> dict[str, Any]:
    """Swap Test: the decision read from how the model's preference moved between the two prompts."""
    said = state.outcome
    try:
        shown, swapped = (decision_logodds(logprobs) for logprobs in state.reply.logprobs)
    except InvalidAnswer as err:
        return {"fault": f"invalid answer: {err}"}
    decision, reason = swap_test(shown, swapped, said.decision, said.reason)
    return {"outcome": said.model_copy(update={"decision": decision, "reason": reason[:REASON_CHARS]})}


def fall_back(state: AgentState, context: Context) -> dict[str, Any]:
    """Fallback: the run's fallback policy answers (skip, or the rule), counted invalid with the fault as reason."""
    config = context.config
    decision = rule_decision(state.window, config.low_hit_pct) if config.fallback == "rule" else "skip"
    text = state.reply.text if state.reply is not None else None
    log.warning("llm_fallback", step=state.request.step, decision=decision, policy=config.fallback,
                cause=state.fault[:REASON_CHARS], answer=None if text is None else str(text)[:REASON_CHARS])
    return {"outcome": DecisionOutcome(request_step=state.request.step, decision=decision, source="fallback",
                                       valid=False, reason=state.fault[:REASON_CHARS])}


def swap_test(shown: float, swapped: float, said: Action, reason: str) -> tuple[Action, str]:
    """The model's decision by the swap test: replace when it favours replace more with the figures as measured.

    ``shown``/``swapped``: log P(replace) - log P(skip) for the two prompts. A model biased towards one word
    has both high (or both low); only the difference says whether it read the figures. Equal: its own answer.
    """
    decision = said if shown == swapped else "replace" if shown > swapped else "skip"
    return decision, f"swap test {shown:+.2f} vs {swapped:+.2f} (said {said}): {reason}"


def answer_logprobs(message: BaseMessage) -> list[dict] | None:
    """The answer tokens' log-probabilities an OpenAI-style backend returned (None: none)."""
    return (message.response_metadata.get("logprobs") or {}).get("content")
