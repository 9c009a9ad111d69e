"""Decisions as the metric stream records them: the answer applied to a minibatch, and kind=decision records."""

from __future__ import annotations

from rudder_agent.decision import DecisionOutcome
from rudder_agent.records.minibatch import MinibatchMetrics


def applied_outcome(m: MinibatchMetrics, request_step: int) -> DecisionOutcome | None:
    """The answer applied to minibatch ``m`` as a controller's outcome (None when none was applied).

    A record without a source was answered by a rule; only an explicit ``decision_valid: false`` is invalid.
    """
    if m.decision_applied is None:
        return None
    return DecisionOutcome(request_step=request_step, decision=m.decision_applied, reason="recorded",
                           source=m.decision_source or "rule", valid=m.decision_valid is not False,
                           expected_hits=m.expected_hits, expected_comm=m.expected_comm)
