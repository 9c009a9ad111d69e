"""Controllers by name: the one table of them, above agent/, classifiers/ and replay/.

Nothing below this module names a controller; each controller class declares what it is in its
:class:`rudder_agent.controllers.spec.ControllerSpec` and what else it can do through the optional
protocols of :mod:`rudder_agent.controllers.capabilities`; the functions here build, check and serve
a controller by name, with the plain behaviour for a class without the protocol. A new controller is
one module and one entry here, live and in replay; a controller with settings of its own adds its
variant to :mod:`rudder_agent.settings.controllers` (one without is held by its generic variant).
"""

from __future__ import annotations

import importlib
from typing import Any

from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.capabilities import Checked, Configured, Place, ReplayOnly, SharedRuntime, SharesRuntime
from rudder_agent.errors import RudderError, SettingError
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.controllers import CONTROLLER_NAMES
from rudder_agent.settings.upgrade import current_values

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

REPLAY_ONLY: frozenset[str] = frozenset({"oracle", "recorded"})
"""Controllers that see the future or the past: replay only."""

LIVE: tuple[str, ...] = tuple(name for name in CONTROLLERS if name not in REPLAY_ONLY)
"""Controllers a live run can use."""


def controller_class(name: str) -> type[Controller]:
    """The class registered under ``name``."""
    try:
        module, _, attr = CONTROLLERS[name].partition(":")
    except KeyError:
        raise RudderError(f"unknown controller {name!r}; choose one of {', '.join(CONTROLLERS)}") from None
    return getattr(importlib.import_module(module), attr)


def built(cls: type[Controller], settings: Any) -> Controller:
    """``cls`` built from its own settings (a class without settings takes no arguments)."""
    return cls.from_settings(settings) if isinstance(cls, Configured) else cls()


def make_controller(cfg: BufferConfig) -> Controller:
    """The live controller ``cfg.controller`` names, configured by its own settings."""
    return built(controller_class(cfg.controller.name), cfg.controller)


def replay_settings(cls: type[Controller], recorded: BufferConfig, **overrides) -> Any:
    """The settings a replay builds ``cls`` from: the recorded run's with ``overrides`` (settings by name);
    pydantic's ValidationError if they are invalid; None for a controller without a settings variant."""
    if cls.name not in CONTROLLER_NAMES:
        return None
    return recorded.with_values({**current_values(overrides), "controller": cls.name}).controller


def replay_controller(name: str, recorded: BufferConfig, recording, **overrides) -> Controller:
    """A controller for a replay: configured like the recorded run, plus ``overrides``."""
    cls = controller_class(name)
    if isinstance(cls, ReplayOnly):
        return cls.from_replay(recorded, recording, **overrides)
    try:
        settings = replay_settings(cls, recorded, **overrides)
    except ValueError as exc:
        raise RudderError(f"cannot replay controller {cls.name!r}: {exc}") from None
    return built(cls, settings)


def preflight(settings: Any) -> None:
    """Check, before anything starts, that ``settings`` (one controller's variant) name a live controller and
    can build it."""
    if settings.name not in LIVE:
        *others, last = (repr(name) for name in LIVE)
        raise SettingError("controller", f"Input should be {', '.join(others)} or {last} (got {settings.name!r})")
    cls = controller_class(settings.name)
    if isinstance(cls, Checked):
        cls.preflight(settings)


def replay_options(cls: type[Controller]) -> tuple[str, ...] | None:
    """The replay overrides ``cls`` takes besides the buffer's own (None: its settings variant's)."""
    return cls.replay_options if isinstance(cls, ReplayOnly) else None


def preflight_replay(cls: type[Controller], recorded: BufferConfig, **overrides) -> None:
    """:func:`preflight` for a replay of ``cls`` with ``overrides`` of the recorded run's settings."""
    if isinstance(cls, ReplayOnly):
        cls.preflight_replay(recorded, **overrides)
        return
    settings = replay_settings(cls, recorded, **overrides)
    if isinstance(cls, Checked):
        cls.preflight(settings)


def shared_runtime(settings: Any, *, seed: int, parallel: int, host: str, nice: int,
                   place: Place | None = None) -> SharedRuntime | None:
    """The machine-wide service the controller ``settings`` configure needs, started by the launcher (or None)."""
    cls = controller_class(settings.name)
    if not isinstance(cls, SharesRuntime):
        return None
    return cls.shared_runtime(settings, seed=seed, parallel=parallel, host=host, nice=nice, place=place)
