"""The controller an open-loop replay asks: the recorded run's agent settings with the replay's overrides."""

from __future__ import annotations

from typing import Any

from rudder_agent.config import BufferConfig
from rudder_agent.settings.agent import AgentConfig, open_loop_settings
from rudder_agent.settings.upgrade import current_values
from rudder_agent.decision import StaticFacts
from rudder_agent.errors import InputError

AGENT_SETTINGS = open_loop_settings()
"""The agent settings an open-loop replay may override (unset: the recorded run's)."""


def agent_settings(recorded: BufferConfig, **overrides: Any) -> AgentConfig:
    """The recorded run's agent settings with ``overrides`` (None: keep the recorded value)."""
    update = {k: v for k, v in current_values(overrides).items() if v is not None}
    unknown = sorted(set(update) - set(AGENT_SETTINGS))
    if unknown:
        raise ValueError(f"open-loop replay cannot override {', '.join(unknown)}")
    return recorded.with_values({**update, "controller": "llm"}).controller


def make_agent(settings: AgentConfig, guard: bool = True) -> Any:
    """The LLMController these settings name; a bad prompt version or model string is an InputError.

    ``guard``: False asks the model in every window, also those the guard's rules settle.
    """
    from rudder_agent.agent.controller import LLMController
    from rudder_agent.agent.prompts import PromptTemplateError

    try:
        return LLMController(settings.model_copy(update={"guard": guard}))
    except PromptTemplateError as err:
        raise InputError(str(err)) from None


def start_agent(controller: Any, facts: StaticFacts, started: bool) -> None:
    """Set the controller up for one rank: the backend once, then new facts and an empty history per rank."""
    from rudder_agent.llm.errors import BackendError

    if started:
        controller.facts, controller.history = facts, []
        return
    try:
        controller.setup(facts)
    except BackendError as err:
        raise InputError(f"cannot start model {controller.config.model!r}: {err}") from None

