"""The `recorded` decision source: applies at step s exactly the decision the live run applied at s.

Replaying a run with its own decisions must reproduce its per-minibatch row counts exactly;
that is the fidelity check of the whole replay path (trace, engine, warm start, clock).
"""

from __future__ import annotations

from rudder_agent.decision import DecisionOutcome
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.replay.recording import Recording

_RUNNER_FIELDS = ("requests", "dropped", "decisions", "latencies_s", "controller_wait_s")


class RecordedSource:
    """Decisions read from the recorded metric stream; the controller's counts are the recorded ones."""

    def __init__(self, recording: Recording):
        missing = [s for s in recording.steps if s not in recording.minibatches]
        if missing:
            raise RudderError(f"{recording.run_dir} rank {recording.rank}: no recorded metrics for "
                              f"{len(missing)} traced minibatches (first: step {missing[0]})")
        self._applied = {s: m["decision_applied"] for s, m in recording.minibatches.items()}
        self._controller = recording.controller

    def take(self, step: int) -> DecisionOutcome | None:
        decision = self._applied[step]
        if decision is None:
            return None
        return DecisionOutcome(request_step=step, decision=decision, reason="recorded")

    def offer(self, metrics: MinibatchMetrics) -> None:
        """Nothing to tell: the decisions are fixed."""

    def record(self) -> dict:
        return {k: self._controller[k] for k in _RUNNER_FIELDS if k in self._controller}

    def close(self) -> None:
        """Nothing to release."""
