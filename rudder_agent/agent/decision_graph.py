"""The Rudder decision graph as `langgraph dev` / LangGraph Studio load it (named in langgraph.json).

Every agent setting comes from $RUDDER_AGENT_<SETTING> (e.g. $RUDDER_AGENT_MODEL,
$RUDDER_AGENT_PROMPT_VERSION, $RUDDER_AGENT_COT), unset ones from their defaults (the embedded
SmolLM2, prompt v2, no chain of thought): :meth:`AgentConfig.from_environ`. The
backend starts on the first model call, so importing this module starts nothing. Studio's
input is an AgentInput: `facts`, `request` and, optionally, `history`; its output state names
the nodes the request passed in `route` (and in `outcome.route`).
"""

from __future__ import annotations

import os

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.controller import make_backend
from rudder_agent.agent.graph import build_graph
from rudder_agent.agent.prompts import PromptSet

config = AgentConfig.from_environ(os.environ)
graph = build_graph(make_backend(config), PromptSet.load(config.prompts_dir, config.prompt_version), config)
