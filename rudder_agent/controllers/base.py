"""The controller contract: decide WHEN the buffer replaces its stale entries.

A controller answers one request at a time (:meth:`Controller.decide`) and declares what it is
in a :class:`ControllerSpec` (no runner, launcher or channel probes it for attributes). The
remaining hooks have harmless defaults: how it is built (``from_settings``/``from_replay``), what
can be checked before anything starts (``preflight``/``preflight_replay``), a host-wide service
(``shared_runtime``), rows loaded before training (``warm_start``), the first minibatch's decision
(``opening``), analysis controllers' view of a replay (``bind``), and, for a controller whose
answers take long, answers delivered later (``answer_later``). How its answers
reach the buffer is :mod:`rudder_agent.controllers.channel`'s job, chosen from the spec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.decision import DecisionOutcome, DecisionRequest, LooksAhead, StaticFacts, Unanswered
from rudder_agent.errors import RudderError
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.controllers import CONTROLLER_NAMES
from rudder_agent.settings.upgrade import current_values

if TYPE_CHECKING:
    from rudder_agent.buffer.engine import BufferEngine
    from rudder_agent.buffer.persistent import PersistentBuffer
    from rudder_agent.controllers.channel import DecisionChannel
    from rudder_agent.controllers.late import LateAnswers


class SharedRuntime(Protocol):
    """A host-wide service (e.g. an embedded model server) the launcher starts before the trainers."""

    def start(self) -> dict[str, str]:
        """Start it; the environment variables trainers need to reach it."""

    def close(self) -> None:
        """Stop it."""


class Controller(ABC):
    """Base class for every controller (baselines, classifiers, the LLM agent, the oracle)."""

    name: ClassVar[str]
    spec: ControllerSpec = ControllerSpec()
    """What this controller is (a class declares it; an instance may refine it from its settings)."""
    facts: StaticFacts | None = None
    """The run's static facts, from :meth:`setup` on."""
    replay_options: ClassVar[tuple[str, ...] | None] = None
    """The replay overrides this controller takes besides the buffer's own; None: its settings variant's."""

    @classmethod
    def from_settings(cls, settings: Any) -> Controller:
        """The controller its own settings (its variant of ``BufferConfig.controller``; None: it has none) describe."""
        return cls()

    @classmethod
    def from_replay(cls, recorded: BufferConfig, recording: Any, **overrides) -> Controller:
        """The controller for a replay: the recorded run's settings with ``overrides`` (settings by name)."""
        try:
            settings = cls.replay_settings(recorded, **overrides)
        except ValueError as exc:
            raise RudderError(f"cannot replay controller {cls.name!r}: {exc}") from None
        return cls.from_settings(settings)

    @classmethod
    def replay_settings(cls, recorded: BufferConfig, **overrides) -> Any:
        """The settings a replay builds this controller from (pydantic's ValidationError if they are invalid);
        None for a controller without a settings variant."""
        if cls.name not in CONTROLLER_NAMES:
            return None
        return recorded.with_values({**current_values(overrides), "controller": cls.name}).controller

    @classmethod
    def preflight(cls, settings: Any) -> None:
        """Check, before anything starts, that ``settings`` can build this controller; nothing to check by default.

        Raises :class:`rudder_agent.errors.SettingError` naming the field at fault. Quick and without
        side effects: it starts no model server and no thread (a remote server is only asked if it answers).
        """

    @classmethod
    def preflight_replay(cls, recorded: BufferConfig, **overrides) -> None:
        """:meth:`preflight` for a replay with ``overrides`` of the recorded run's settings."""
        cls.preflight(cls.replay_settings(recorded, **overrides))

    @classmethod
    def shared_runtime(cls, settings: Any, *, seed: int, parallel: int, host: str,
                       nice: int) -> SharedRuntime | None:
        """A service every trainer of a host shares, started once by the launcher; none by default."""
        return None

    def setup(self, facts: StaticFacts) -> None:
        """Receive the run's static facts before the first request."""
        self.facts = facts

    def warm_start(self, remote_ids: np.ndarray, remote_degrees: np.ndarray, capacity: int) -> np.ndarray:
        """Ids to load into the empty buffer before training; none by default (the paper's choice)."""
        return np.empty(0, dtype=np.int64)

    def bind(self, engine: BufferEngine, recording: Any) -> None:
        """Analysis controllers (the oracle) read the replay's engine and stream; the others ignore them."""

    def open_channel(self, buffer: PersistentBuffer, mode: str, outlook: LooksAhead | None = None,
                     latency: int | None = None) -> DecisionChannel:
        """How answers reach the buffer: inline, a thread (live, ``latency`` None) or replay's minibatch clock.

        ``outlook``: what requests carry to play answers forward (the step's view ahead).
        """
        from rudder_agent.controllers.channel import ClockedChannel, InlineChannel
        from rudder_agent.controllers.runner import ControllerRunner

        if self.spec.inline:
            return InlineChannel(self, buffer)
        answers = {"opening": self.opening(buffer), "outlook": outlook,
                   "replaces_between_answers": self.spec.replaces_between_answers}
        if latency is None:
            return ControllerRunner(self, mode, **answers)
        return ClockedChannel(self, 1 if mode == "sync" else latency, mode, **answers)

    def opening(self, buffer: PersistentBuffer) -> DecisionOutcome | None:
        """The decision for the first minibatch, before any request could be answered (none by default)."""
        return None

    @abstractmethod
    def decide(self, request: DecisionRequest) -> DecisionOutcome | Unanswered:
        """Answer one request with replace or skip (unanswered only after :meth:`answer_later` said yes)."""

    def answer_later(self, late: LateAnswers) -> bool:
        """Asynchronous mode: will slow answers be handed to ``late`` (a call on a thread of its own)? No by default.

        Then ``decide`` may hand a request's slow part to ``late`` and leave the request
        :class:`Unanswered`; the deciding thread takes the answer from ``late`` when it is ready.
        """
        return False

    def run_record(self) -> dict:
        """What a run summary must record to reproduce this controller's decisions."""
        return {}

    def close(self) -> None:
        """Release models, threads or servers."""
