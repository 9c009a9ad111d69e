"""Decisions as the metric stream records them: which minibatches carry one, and the answer each carries."""

from __future__ import annotations

from rudder_agent.decision import DecisionOutcome
from rudder_agent.metrics import MinibatchMetrics


def decided(m: MinibatchMetrics) -> bool:
    """Whether a controller's decision was applied to this minibatch.

    An ``idle`` replacement (the asynchronous runner replacing because no answer arrived) is
    applied too, but it is nobody's decision: decision mixes, validity, Pass@1, oracle agreement
    and open-loop windows leave it out.
    """
    return m.decision_applied is not None and m.decision_source != "idle"


def applied_outcome(m: MinibatchMetrics, request_step: int) -> DecisionOutcome | None:
    """The answer applied to minibatch ``m`` as a controller's outcome (None when none was applied).

    A record without a source was answered by a rule; only an explicit ``decision_valid: false`` is invalid.
    """
    if m.decision_applied is None:
        return None
    return DecisionOutcome(request_step=request_step, decision=m.decision_applied, reason="recorded",
                           source=m.decision_source or "rule", valid=m.decision_valid is not False,
                           expected_hits=m.expected_hits, expected_comm=m.expected_comm)
