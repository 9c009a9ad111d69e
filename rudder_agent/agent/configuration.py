"""The agent's configuration: the `llm` variant of the run's settings tree (:mod:`rudder_agent.settings.agent`)."""

from __future__ import annotations

from rudder_agent.settings.agent import SWAP_TEST_TOP_LOGPROBS, AgentConfig

__all__ = ["SWAP_TEST_TOP_LOGPROBS", "AgentConfig"]
