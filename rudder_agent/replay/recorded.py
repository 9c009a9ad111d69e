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
        self._rows = recording.minibatches
        self._controller = recording.controller

    def take(self, step: int) -> DecisionOutcome | None:
        m = self._rows[step]
        if m["decision_applied"] is None:
            return None
        return DecisionOutcome(request_step=step, decision=m["decision_applied"], reason="recorded",
                               source=m.get("decision_source") or "rule", valid=m.get("decision_valid") is not False,
                               expected_hits=m.get("expected_hits"), expected_comm=m.get("expected_comm"))

    def offer(self, metrics: MinibatchMetrics) -> None:
        """Nothing to tell: the decisions are fixed."""

    def record(self) -> dict:
        return {k: self._controller[k] for k in _RUNNER_FIELDS if k in self._controller}

    def close(self) -> None:
        """Nothing to release."""
