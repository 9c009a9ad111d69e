"""The controller interface: decides WHEN the buffer replaces its stale entries.

Everything a controller needs from the run is declared here as a hook with a harmless
default, so nothing outside a controller's own code asks for its name or type:
``from_settings``/``from_replay`` (how it is built), ``warm_starts``/``warm_start`` (rows loaded
before training), ``bind`` (analysis controllers see the replayed engine and stream),
``shared_runtime`` (one host-wide service for every trainer, e.g. an embedded model server),
``open_channel`` (how its answers reach the buffer), ``preflight``/``preflight_replay`` (what can be
checked before anything starts).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

import numpy as np

from rudder_agent.decision import DecisionOutcome, DecisionRequest, StaticFacts, Unanswered
from rudder_agent.errors import RudderError
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.upgrade import current_values

if TYPE_CHECKING:
    from rudder_agent.buffer.engine import BufferEngine
    from rudder_agent.buffer.persistent import PersistentBuffer
    from rudder_agent.controllers.channel import DecisionChannel


class SharedRuntime(Protocol):
    """A host-wide service (e.g. an embedded model server) the launcher starts before the trainers."""

    def start(self) -> dict[str, str]:
        """Start it; the environment variables trainers need to reach it."""

    def close(self) -> None:
        """Stop it."""


class Controller(ABC):
    """Base class for every controller (baselines, classifiers, the LLM agent, the oracle)."""

    name: ClassVar[str]
    uses_buffer: ClassVar[bool] = True
    inline: ClassVar[bool] = False
    """Cheap, deterministic controllers are evaluated by the prefetcher itself each minibatch."""
    warm_starts: ClassVar[bool] = False
    """True when ``warm_start`` loads rows before training (MassiveGNN); the paper's buffer starts empty."""
    replaces_between_answers: ClassVar[bool] = False
    """Whether minibatches without a fresh answer replace when replacing fetches nothing (lfu, lookahead).

    An asynchronous controller slower than the trainer answers a few minibatches in many; under a
    keep policy whose re-ranking is free, those minibatches keep re-ranking instead of freezing.
    """
    thread_nice: ClassVar[int] = 0
    """Nice value of the controller's own thread in asynchronous mode (0: the trainer's priority)."""
    duty_cycle: float = 1.0
    """Asynchronous mode: the largest share of one CPU the controller's thread may use; it rests in between (1: never)."""
    sees_ahead: ClassVar[bool] = False
    """Whether requests should bring minibatches sampled ahead (the LLM agent's What-if plays them)."""
    replay_options: ClassVar[tuple[str, ...] | None] = None
    """The replay overrides this controller takes besides the scoring policy; None: every BufferConfig field."""

    @classmethod
    def from_settings(cls, settings: Any) -> Controller:
        """The controller its own settings (its variant of ``BufferConfig.controller``) describe."""
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
        """The settings a replay builds this controller from (pydantic's ValidationError if they are invalid)."""
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

    def open_channel(self, buffer: PersistentBuffer, mode: str, latency: int | None = None) -> DecisionChannel:
        """How answers reach the buffer: inline, a thread (live, ``latency`` None) or replay's minibatch clock."""
        from rudder_agent.controllers.channel import ClockedChannel, InlineChannel
        from rudder_agent.controllers.runner import ControllerRunner

        if self.inline:
            return InlineChannel(self, buffer)
        channel = ControllerRunner(self, mode) if latency is None else ClockedChannel(
            self, 1 if mode == "sync" else latency, mode)
        channel.opening = self.opening(buffer)
        channel.replaces_between_answers = self.replaces_between_answers
        return channel

    def opening(self, buffer: PersistentBuffer) -> DecisionOutcome | None:
        """The decision for the first minibatch, before any request could be answered (none by default)."""
        return None

    @abstractmethod
    def decide(self, request: DecisionRequest) -> DecisionOutcome | Unanswered:
        """Answer one request with replace or skip (unanswered only after :meth:`answer_later` said yes)."""

    def answer_later(self, notify: Callable[[], None]) -> bool:
        """Asynchronous mode: may slow answers come later, off the deciding thread? ``notify`` when one is ready.

        Then ``decide`` may leave a request :data:`Unanswered` and :meth:`late_answer` delivers it. No by default.
        """
        return False

    def late_answer(self) -> tuple[DecisionRequest, DecisionOutcome] | None:
        """A request answered later (see :meth:`answer_later`), with its answer; None when none is ready."""
        return None

    def run_record(self) -> dict:
        """What a run summary must record to reproduce this controller's decisions."""
        return {}

    def close(self) -> None:
        """Release models, threads or servers."""
