"""The controller interface: decides WHEN the buffer replaces its stale entries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from rudder_agent.decision import DecisionOutcome, DecisionRequest, StaticFacts


class Controller(ABC):
    """Base class for every controller (baselines, classifiers, the LLM agent, the oracle)."""

    name: ClassVar[str]
    uses_buffer: ClassVar[bool] = True
    inline: ClassVar[bool] = False
    """Cheap, deterministic controllers are evaluated by the prefetcher itself each minibatch."""

    def setup(self, facts: StaticFacts) -> None:
        """Receive the run's static facts before the first request."""
        self.facts = facts

    def warm_start(self, remote_ids: np.ndarray, remote_degrees: np.ndarray, capacity: int) -> np.ndarray:
        """Ids to load into the empty buffer before training; none by default (the paper's choice)."""
        return np.empty(0, dtype=np.int64)

    @abstractmethod
    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        """Answer one request with replace or skip."""

    def run_record(self) -> dict:
        """What a run summary must record to reproduce this controller's decisions."""
        return {}

    def close(self) -> None:
        """Release models, threads or servers."""
