"""What the decision graph's nodes share: the model, the prompts, the settings and, asynchronously, the hand-off.

Made once per graph and bound to its nodes when the graph is built. It holds live objects (a chat
backend that may run an embedded server, the deciding thread's slow-call slot), so it is not passed per invocation:
Studio, which sends only JSON, runs the same graph the controller does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from langchain_core.messages import BaseMessage
from langgraph.graph.state import CompiledStateGraph

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.guard import Guard
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState
from rudder_agent.controllers.late import LateAnswers
from rudder_agent.decision import DecisionOutcome
from rudder_agent.llm.backends import answer_model
from rudder_agent.llm.output import AnswerModel


class ChatModel(Protocol):
    """Anything that answers a chat turn: a ChatBackend or a LangChain chat model."""

    def invoke(self, messages: list[BaseMessage]) -> BaseMessage: ...


@dataclass(frozen=True)
class HandOff:
    """Asynchronous mode: where the Hand-off node sends the model call, and who reads its reply when it is taken."""

    late: LateAnswers
    """The deciding thread's slow call (controllers/late.py): the model answers on a thread of its own."""
    read: Callable[[CompiledStateGraph, AgentState], DecisionOutcome]
    """The controller runs the answer path on the state asked from, with the reply, and its own history."""


@dataclass(frozen=True)
class Context:
    """The graph's dependencies. ``hand_off``: the model answers later, off the deciding thread (asynchronous mode)."""

    chat: ChatModel
    prompts: PromptSet
    config: AgentConfig
    hand_off: HandOff | None = None

    @property
    def guard(self) -> Guard:
        """The rules that answer without the model."""
        return Guard.from_config(self.config)

    @property
    def schema(self) -> AnswerModel:
        """The answer the model must give (with a reasoning field under chain-of-thought; no reason text from the
        embedded model)."""
        return answer_model(self.config.model, self.config.cot)

    def prompt(self, state: AgentState) -> list[BaseMessage]:
        """The messages the model is sent for this state (the run's prompt version)."""
        return self.prompts.messages(state, self.schema, self.config.guard_end_fraction, self.config.history_len)
