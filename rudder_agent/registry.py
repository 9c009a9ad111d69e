"""Controllers by name: the one table of them, above agent/, classifiers/ and replay/.

Nothing below this module names a controller; each controller class declares what it is in its
:class:`rudder_agent.controllers.spec.ControllerSpec` and what it needs through the hooks of
:class:`rudder_agent.controllers.base.Controller`. A new controller is one module and one entry
here (it replays at once); a live one also adds its settings variant to
:mod:`rudder_agent.settings.controllers`.
"""

from __future__ import annotations

import importlib
from rudder_agent.controllers.base import Controller
from rudder_agent.errors import RudderError
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.controllers import CONTROLLER_NAMES

CONTROLLERS: dict[str, str] = {
    "none": "rudder_agent.controllers.baselines:NoBuffer",
    "fixed": "rudder_agent.controllers.baselines:ReplaceEveryMinibatch",
    "massivegnn": "rudder_agent.controllers.baselines:MassiveGNN",
    "llm": "rudder_agent.agent.controller:LLMController",
    "classifier": "rudder_agent.classifiers.controller:ClassifierController",
    "oracle": "rudder_agent.replay.oracle:Oracle",
    "recorded": "rudder_agent.replay.recorded_decisions:RecordedDecisions",
}
"""name -> "module:Class", imported on first use (the agent pulls in LangChain; baselines should not)."""

LIVE: tuple[str, ...] = CONTROLLER_NAMES
"""Controllers a live run can use; the others (oracle, recorded) see the future or the past: replay only."""


def controller_class(name: str) -> type[Controller]:
    """The class registered under ``name``."""
    try:
        module, _, attr = CONTROLLERS[name].partition(":")
    except KeyError:
        raise RudderError(f"unknown controller {name!r}; choose one of {', '.join(CONTROLLERS)}") from None
    return getattr(importlib.import_module(module), attr)


def make_controller(cfg: BufferConfig) -> Controller:
    """The live controller ``cfg.controller`` names, configured by its own settings."""
    return controller_class(cfg.controller.name).from_settings(cfg.controller)


def replay_controller(name: str, recorded: BufferConfig, recording, **overrides) -> Controller:
    """A controller for a replay: configured like the recorded run, plus ``overrides``."""
    return controller_class(name).from_replay(recorded, recording, **overrides)
