"""The `recorded` controller: applies at step s exactly the decision the live run applied at s.

Replaying a run with its own decisions must reproduce its per-minibatch row counts exactly;
that is the fidelity check of the whole replay path (trace, engine, warm start, clock).
"""

from __future__ import annotations

import numpy as np

from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.config import BufferConfig
from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.controllers.channel import DecisionChannel, RunnerStats
from rudder_agent.decision import DecisionOutcome, DecisionRequest, LooksAhead
from rudder_agent.errors import RudderError
from rudder_agent.records.decisions import applied_outcome
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.replay.recording import Recording

_RUNNER_FIELDS = ("requests", "dropped", "decisions", "latencies_s", "controller_wait_s")


class RecordedDecisions(Controller):
    """Replay-only: the live run's own decisions, warm start and agent record."""

    name = "recorded"
    replay_options = None  # it takes the recorded run's decisions, whatever the overrides

    def __init__(self, recording: Recording):
        missing = [s for s in recording.steps if s not in recording.minibatches]
        if missing:
            raise RudderError(f"{recording.run_dir} rank {recording.rank}: no recorded metrics for "
                              f"{len(missing)} traced minibatches (first: step {missing[0]})")
        self.recording = recording
        self.spec = ControllerSpec(uses_buffer=recording.meta.config.buffer.controller.name != "none",
                                   warm_starts=bool(len(recording.meta.warm_ids)))

    @classmethod
    def from_replay(cls, recorded: BufferConfig, recording: Recording, **overrides) -> Controller:
        return cls(recording)

    @classmethod
    def preflight_replay(cls, recorded: BufferConfig, **overrides) -> None:
        """Nothing of its own to check: it takes the recorded run's decisions, whatever the settings."""

    def warm_start(self, remote_ids: np.ndarray, remote_degrees: np.ndarray, capacity: int) -> np.ndarray:
        """The recorded warm start (kept in the live degree order)."""
        return np.asarray(remote_ids, dtype=np.int64)[:capacity]

    def open_channel(self, buffer: PersistentBuffer, mode: str, outlook: LooksAhead | None = None,
                     latency: int | None = None) -> DecisionChannel:
        return RecordedChannel(self.recording)

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        raise RuntimeError("recorded decisions are read from the recording by RecordedChannel, never decided")

    def run_record(self) -> dict:
        return self.recording.controller.get("agent", {})


class RecordedChannel(DecisionChannel):
    """Decisions read from the recorded metric stream; the controller's counts are the recorded ones."""

    label = "recorded"

    def __init__(self, recording: Recording):
        self._rows = recording.minibatches
        self._controller = recording.controller
        self.stats = RunnerStats()

    def decision_for(self, step: int) -> tuple[DecisionOutcome | None, float]:
        return applied_outcome(self._rows[step], step), 0.0

    def offer(self, metrics: MinibatchMetrics) -> None:
        """Nothing to tell: the decisions are fixed."""

    def record(self) -> dict:
        return {k: self._controller[k] for k in _RUNNER_FIELDS if k in self._controller}

    def close(self) -> None:
        """Nothing to release."""
