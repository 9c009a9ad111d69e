"""The controller contract: decide WHEN the buffer replaces its stale entries.

A controller answers one request at a time (:meth:`Controller.decide`) and declares what it is
in a :class:`ControllerSpec`; it receives the run's static facts before the first request and is
closed after the last. What only some controllers do (built from settings or from a replay, checked
before the run, a host-wide service, a warm start, an opening decision, late answers, a view of the
replay, a channel of their own) is an optional protocol of :mod:`rudder_agent.controllers.capabilities`.
How its answers reach the buffer is :mod:`rudder_agent.controllers.wiring`'s job, chosen from the spec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.decision import DecisionOutcome, DecisionRequest, StaticFacts, Unanswered


class Controller(ABC):
    """Base class for every controller (baselines, classifiers, the LLM agent, the oracle)."""

    name: ClassVar[str]
    spec: ControllerSpec = ControllerSpec()
    """What this controller is (a class declares it; an instance may refine it from its settings)."""
    facts: StaticFacts | None = None
    """The run's static facts, from :meth:`setup` on."""

    def setup(self, facts: StaticFacts) -> None:
        """Receive the run's static facts before the first request."""
        self.facts = facts

    @abstractmethod
    def decide(self, request: DecisionRequest) -> DecisionOutcome | Unanswered:
        """Answer one request with replace or skip (unanswered only for a controller that answers later)."""

    def run_record(self) -> dict:
        """What a run summary must record to reproduce this controller's decisions."""
        return {}

    def close(self) -> None:
        """Release models, threads or servers."""
