"""The nodes of the decision graph (paper §4.2, plus What-if); graph.py chains them.

Metrics Collector -> Context Builder -> What-if -> Decision Maker. Each node returns only the
state keys it changes; none keeps anything between invocations (see state.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.messages import BaseMessage

from rudder_agent.agent.configuration import AgentConfig
from rudder_agent.agent.guard import Guard, rule_decision
from rudder_agent.agent.lane import Asked, ModelLane
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState, HistoryEntry, Progress
from rudder_agent.decision import Action, DecisionOutcome
from rudder_agent.llm.output import InvalidAnswer, answer_schema, decision_logodds, parse_answer
from rudder_agent.log import get_logger
from rudder_agent.window import summarize_window

REASON_CHARS = 200

log = get_logger(__name__)


class ChatModel(Protocol):
    """Anything that answers a chat turn: a ChatBackend or a LangChain chat model."""

    def invoke(self, messages: list[BaseMessage]) -> BaseMessage: ...


def collect_metrics(state: AgentState) -> dict[str, Any]:
    """Metrics Collector: reduce the request's minibatches to one window summary."""
    request = state.request
    previous = state.history[-1].window if state.history else None
    return {"window": summarize_window(request.window, request.step, request.stale, request.occupancy,
                                       request.capacity, previous)}


def build_context(state: AgentState) -> dict[str, Any]:
    """Context Builder: measure the previous decision's effect on this window; note progress."""
    history = list(state.history)
    window = state.window
    if history and not history[-1].evaluated and window.minibatches:
        before = history[-1].window
        history[-1] = history[-1].model_copy(update={
            "hits_change_pp": window.hit_pct - before.hit_pct,
            "comm_change_per_mb": window.comm_per_mb - before.comm_per_mb,
        })
    total = state.facts.total_minibatches
    done = state.request.step + 1
    return {"history": history, "progress": Progress(done=min(done, total) if total else done, total=total)}


class WhatIf:
    """What-if: replace and skip played forward on a fork of the buffer, over the sampled window (or the recent past).

    Not played when the guard settles the answer anyway, nor when the request brings its own
    (a recorded run replayed open-loop), nor without an outlook (no buffer to fork).
    """

    def __init__(self, config: AgentConfig):
        self.enabled = config.whatif
        self.guard = Guard.from_config(config)

    def __call__(self, state: AgentState) -> dict[str, Any]:
        request = state.request
        if request.whatif is not None:
            return {"whatif": request.whatif}
        if not self.enabled or request.outlook is None or self.guard.obvious(state.window, state.progress):
            return {"whatif": None}
        return {"whatif": request.outlook.what_if()}


class DecisionMaker:
    """Decision Maker: guard, prompt, model, validation, fallback; records the decision."""

    def __init__(self, chat: ChatModel, prompts: PromptSet, config: AgentConfig, lane: ModelLane | None = None):
        self.chat = chat
        self.prompts = prompts
        self.config = config
        self.schema = answer_schema(config.cot)
        self.guard = Guard.from_config(config)
        self.lane = lane
        """Asynchronous mode: the model answers later, on a thread of its own (agent/lane.py)."""

    def __call__(self, state: AgentState) -> dict[str, Any]:
        start = time.perf_counter()
        step = state.request.step
        skip = self.guard.skip_reason(state.window, state.progress, played=state.whatif is not None)
        fill = None if skip or state.whatif is not None else self.guard.fill_reason(state.window)
        same = None if skip or fill else self.guard.no_difference_reason(state.whatif)
        if skip or fill:
            outcome = DecisionOutcome(request_step=step, decision="skip" if skip else "replace",
                                      source="guard", reason=skip or fill)
        elif same:
            outcome = DecisionOutcome(request_step=step, decision=state.whatif.favours, source="no-difference",
                                      reason=same)
        elif self.lane is not None:
            asked = self.lane.ask(state, self.consult, self.conclude)
            return {"outcome": None, "model_call": "asked" if asked else "busy"}
        else:
            outcome = self._ask(state)
        outcome = outcome.model_copy(update={"latency_s": time.perf_counter() - start, "whatif": state.whatif})
        return {"outcome": outcome, "history": self._record(state, outcome)}

    def conclude(self, asked: Asked, history: list[HistoryEntry]) -> tuple[DecisionOutcome, list[HistoryEntry]]:
        """A consultation the lane finished: its outcome, and ``history`` (the controller's, by now) with it recorded."""
        state = asked.state.model_copy(update={"history": history})
        outcome = self._answer(state, asked.reply, asked.error)
        outcome = outcome.model_copy(update={"latency_s": asked.seconds, "whatif": state.whatif})
        return outcome, self._record(state, outcome)

    def consult(self, state: AgentState) -> Reply:
        """Ask the model (blocking); with the swap test, once more with the what-if's figures exchanged."""
        shown = self.chat.invoke(self.prompt(state))
        if not self.config.swaps(state.whatif):
            return Reply(shown.text)
        swapped = self.chat.invoke(self.prompt(state.model_copy(update={"whatif": state.whatif.swapped()})))
        return Reply(shown.text, (answer_logprobs(shown), answer_logprobs(swapped)))

    def prompt(self, state: AgentState) -> list[BaseMessage]:
        """The messages the model is sent for this state (the run's prompt version)."""
        return self.prompts.messages(state, self.schema, self.config.guard_end_fraction, self.config.history_len)

    def _ask(self, state: AgentState) -> DecisionOutcome:
        reply = error = None
        try:
            reply = self.consult(state)
        except Exception as err:  # a backend failure of any kind must not stop training
            error = err
        return self._answer(state, reply, error)

    def _answer(self, state: AgentState, reply: Reply | None, error: Exception | None) -> DecisionOutcome:
        """The model's reply (or the error its call ended with) checked; failures fall back, counted."""
        if error is not None:
            return self._fallback(state, f"backend error: {type(error).__name__}: {error}", None)
        try:
            answer = parse_answer(reply.text, self.schema)
            decision, reason = answer.decision, answer.reason
            if reply.swap is not None:
                decision, reason = swap_test(*map(decision_logodds, reply.swap), answer.decision, answer.reason)
        except InvalidAnswer as err:
            return self._fallback(state, f"invalid answer: {err}", reply.text)
        log.debug("llm_decision", step=state.request.step, decision=decision, hits=answer.hits,
                  comm=answer.comm, reason=reason, reasoning=getattr(answer, "reasoning", None))
        return DecisionOutcome(
            request_step=state.request.step,
            decision=decision,
            source="model",
            expected_hits=answer.hits,
            expected_comm=answer.comm,
            reason=reason[:REASON_CHARS],
        )

    def _fallback(self, state: AgentState, cause: str, text: str | None) -> DecisionOutcome:
        decision = rule_decision(state.window, self.config.low_hit_pct) if self.config.fallback == "rule" else "skip"
        log.warning("llm_fallback", step=state.request.step, decision=decision, policy=self.config.fallback,
                    cause=cause[:REASON_CHARS], answer=None if text is None else str(text)[:REASON_CHARS])
        return DecisionOutcome(request_step=state.request.step, decision=decision, source="fallback",
                               valid=False, reason=cause[:REASON_CHARS])

    def _record(self, state: AgentState, outcome: DecisionOutcome) -> list[HistoryEntry]:
        """History plus this decision; windows without minibatches carry no evidence, so no entry."""
        if not state.window.minibatches:
            return state.history
        entry = HistoryEntry(step=outcome.request_step, window=state.window, decision=outcome.decision,
                             source=outcome.source, expected_hits=outcome.expected_hits,
                             expected_comm=outcome.expected_comm,
                             whatif_favours=state.whatif.favours if state.whatif is not None else None)
        return [*state.history, entry][-max(self.config.history_len, 1):]


@dataclass(frozen=True)
class Reply:
    """What one consultation of the model returned: the answer text, and with the swap test the log-probabilities
    of the answers to the prompt as measured and to the prompt with replace's and skip's figures exchanged."""

    text: str
    swap: tuple[list[dict] | None, list[dict] | None] | None = None


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
