"""The decision vocabulary shared by controllers, the agent, replay and evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rudder_agent.metrics import MinibatchMetrics

Action = Literal["replace", "skip"]
Direction = Literal["increase", "decrease", "unchanged"]
Source = Literal["model", "fallback", "guard", "rule"]

DEFAULT_HORIZON = 8
"""The oracle's look-ahead in minibatches (here, not in replay/, so the command line imports it without torch)."""


class StaticFacts(BaseModel):
    """Graph and partition facts a controller may use; fixed for the whole run."""

    dataset: str
    num_nodes: int
    num_edges: int
    num_parts: int
    partition: int
    local_nodes: int
    halo_nodes: int
    capacity: int
    total_minibatches: int
    feature_dim: int


class DecisionRequest(BaseModel):
    """What the prefetcher sends: every minibatch's metrics since its previous request."""

    step: int = Field(description="minibatch index the request was made at")
    window: list[MinibatchMetrics]
    stale: int = Field(description="replaceable slots: empty ones plus entries below the staleness threshold")
    occupancy: int
    capacity: int


class DecisionOutcome(BaseModel):
    """A controller's answer, with its provenance so reports can count valid/invalid/guarded."""

    request_step: int
    decision: Action
    source: Source = "rule"
    valid: bool = True
    expected_hits: Direction | None = None
    expected_comm: Direction | None = None
    reason: str = ""
    latency_s: float = 0.0
