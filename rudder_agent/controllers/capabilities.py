"""What some controllers can do beyond deciding: each an optional protocol, implemented by the classes that need it.

A controller implements :class:`rudder_agent.controllers.base.Controller` (decide a request) and,
where it has one of these capabilities, the matching method; whoever builds, checks or wires
controllers (the registry, the channels, the trainer, the replay) asks for the protocol, and a
class without it gets the plain behaviour: built without arguments, nothing to check, no service,
an empty warm start, no opening decision, answers on the deciding thread, the channel its spec picks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rudder_agent.buffer.engine import BufferEngine
    from rudder_agent.buffer.persistent import PersistentBuffer
    from rudder_agent.controllers.base import Controller
    from rudder_agent.controllers.channel import DecisionChannel
    from rudder_agent.controllers.late import LateAnswers
    from rudder_agent.decision import DecisionOutcome, LooksAhead
    from rudder_agent.settings.buffer import BufferConfig


@runtime_checkable
class Configured(Protocol):
    """A class built from its own settings (its variant of ``BufferConfig.controller``)."""

    @classmethod
    def from_settings(cls, settings: Any) -> Controller:
        """The controller ``settings`` describe."""


@runtime_checkable
class Checked(Protocol):
    """A class whose settings can be checked before anything starts."""

    @classmethod
    def preflight(cls, settings: Any) -> None:
        """Raise :class:`rudder_agent.errors.SettingError` naming the field at fault.

        Quick and without side effects: it starts no model server and no thread (a remote server is only
        asked if it answers).
        """


@runtime_checkable
class ReplayOnly(Protocol):
    """An analysis class built from the replayed recording rather than from settings (oracle, recorded)."""

    replay_options: ClassVar[tuple[str, ...] | None]
    """The replay overrides it takes besides the buffer's own; None: every one given."""

    @classmethod
    def from_replay(cls, recorded: BufferConfig, recording: Any, **overrides) -> Controller:
        """The controller for a replay of ``recording`` (recorded with ``recorded``), with ``overrides``."""

    @classmethod
    def preflight_replay(cls, recorded: BufferConfig, **overrides) -> None:
        """Check the overrides it takes, before the replay starts."""


Place = Callable[[list[str]], list[str]]
"""Turns a command line into one that runs it on a given machine (its namespace, or ssh to its host)."""


class SharedRuntime(Protocol):
    """A service of one machine (e.g. an embedded model server) the launcher starts there before its trainers."""

    def start(self) -> dict[str, str]:
        """Start it; the environment variables trainers need to reach it."""

    def close(self) -> None:
        """Stop it."""


@runtime_checkable
class SharesRuntime(Protocol):
    """A class whose trainers on one machine share a service, started once per machine by the launcher."""

    @classmethod
    def shared_runtime(cls, settings: Any, *, seed: int, parallel: int, host: str, nice: int,
                       place: Place | None = None) -> SharedRuntime | None:
        """The service its settings need (None: none for these settings), for ``parallel`` trainers, listening
        on ``host``; ``place`` starts its processes on the machine (None: here)."""


@runtime_checkable
class WarmStarts(Protocol):
    """Loads rows into the empty buffer before training (``ControllerSpec.warm_starts``)."""

    def warm_start(self, remote_ids: np.ndarray, remote_degrees: np.ndarray, capacity: int) -> np.ndarray:
        """The ids to load."""


@runtime_checkable
class Opens(Protocol):
    """Has a decision for the first minibatch, before any request could be answered."""

    def opening(self, buffer: PersistentBuffer) -> DecisionOutcome | None:
        """That decision (None: none for this buffer)."""


@runtime_checkable
class AnswersLater(Protocol):
    """Asynchronous mode: hands the slow part of a request to a call on a thread of its own."""

    def answer_later(self, late: LateAnswers) -> None:
        """From now on ``decide`` may hand work to ``late`` and leave the request :class:`Unanswered`; the
        deciding thread takes the answer from ``late`` when it is ready."""


@runtime_checkable
class ReadsReplay(Protocol):
    """Reads the replay's engine and stream (the oracle sees the future through them)."""

    def bind(self, engine: BufferEngine, recording: Any) -> None:
        """Receive them before the first request."""


@runtime_checkable
class OwnsChannel(Protocol):
    """Brings its answers to the buffer its own way (the recorded run's decisions)."""

    def open_channel(self, buffer: PersistentBuffer, mode: str, outlook: LooksAhead | None = None,
                     latency: int | None = None) -> DecisionChannel:
        """The channel its answers take."""
