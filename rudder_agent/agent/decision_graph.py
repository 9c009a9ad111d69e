"""The Rudder decision graph as `langgraph dev` / LangGraph Studio load it (named in langgraph.json).

The model, prompt version and chain-of-thought switch come from $RUDDER_AGENT_MODEL,
$RUDDER_AGENT_PROMPT and $RUDDER_AGENT_COT (defaults: the embedded SmolLM2, v2, off). The
backend starts on the first model call, so importing this module starts nothing. Studio's
input is an AgentInput: `facts`, `request` and, optionally, `history`; its output state names
the nodes the request passed in `route` (and in `outcome.route`).
"""

from __future__ import annotations

import os

from rudder_agent.agent.configuration import AgentConfig
from rudder_agent.agent.controller import make_backend
from rudder_agent.agent.graph import build_graph
from rudder_agent.agent.prompts import PromptSet

defaults = AgentConfig()
config = AgentConfig(
    model=os.environ.get("RUDDER_AGENT_MODEL", defaults.model),
    prompt_version=os.environ.get("RUDDER_AGENT_PROMPT", defaults.prompt_version),
    cot=os.environ.get("RUDDER_AGENT_COT", "0").lower() in ("1", "true", "yes"),
)
graph = build_graph(make_backend(config), PromptSet.load(config.prompts_dir, config.prompt_version), config)
