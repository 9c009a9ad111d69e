"""The decision vocabulary shared by controllers, the agent, replay and evaluation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from rudder_agent.metrics import MinibatchMetrics

Action = Literal["replace", "skip"]
Direction = Literal["increase", "decrease", "unchanged"]
Unanswered = Literal["asked", "busy"]
"""A request an asynchronous controller leaves without an answer now: ``asked`` (it comes later), ``busy`` (none will)."""
Source = Literal["model", "fallback", "guard", "no-difference", "rule", "idle"]

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


class WhatIf(BaseModel):
    """Both answers played forward on an ids-only fork of the buffer: what each would fetch.

    ``source``: ``window`` plays the minibatches already sampled ahead (the look-ahead window);
    ``past`` replays the most recent minibatches as a stand-in for the next ones (no window).
    """

    source: Literal["window", "past"]
    minibatches: int
    remote_inputs: int
    replace_rows: int = Field(description="remote rows fetched if the answer is replace (then the rollout)")
    skip_rows: int = Field(description="remote rows fetched if the answer is skip (then the rollout)")
    replace_hits: int
    skip_hits: int
    replace_is_free: bool = Field(False, description="the keep policy's replacement fetches no extra row")

    @property
    def difference(self) -> int:
        """Rows the better answer saves over the other."""
        return abs(self.skip_rows - self.replace_rows)

    @property
    def favours(self) -> Action:
        """The answer that fetches fewer rows. On a tie: replace when replacing is free (a look-ahead re-ranking
        that ties within the window still pays after it), else skip (decay's refill churns for nothing);
        measured on ogbn-arxiv replays (docs/agent.md)."""
        if self.replace_rows == self.skip_rows:
            return "replace" if self.replace_is_free else "skip"
        return "replace" if self.replace_rows < self.skip_rows else "skip"

    def hit_pct(self, action: Action) -> float:
        """%-Hits over the played minibatches under ``action``."""
        hits = self.replace_hits if action == "replace" else self.skip_hits
        return 100.0 * hits / self.remote_inputs if self.remote_inputs else 0.0

    def swapped(self) -> WhatIf:
        """Replace's and skip's figures exchanged: the swap test asks the model about this one too."""
        return self.model_copy(update={"replace_rows": self.skip_rows, "skip_rows": self.replace_rows,
                                       "replace_hits": self.skip_hits, "skip_hits": self.replace_hits})


class DecisionRequest(BaseModel):
    """What the prefetcher sends: every minibatch's metrics since its previous request."""

    step: int = Field(description="minibatch index the request was made at")
    window: list[MinibatchMetrics]
    stale: int = Field(description="replaceable slots: empty ones plus entries below the staleness threshold")
    occupancy: int
    capacity: int
    whatif: WhatIf | None = Field(None, description="already computed (a recorded run replayed open-loop)")
    outlook: Any = Field(None, exclude=True,
                         description="computes the what-if on demand (rudder_agent.buffer.counterfactual.Outlook)")


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
    whatif: WhatIf | None = Field(None, description="the counterfactuals the decision was made with, if any")
    route: list[str] = Field(default_factory=list, description="the agent's graph: the nodes that reached it")


class DecisionRecord(BaseModel):
    """One answered request as written to the metrics stream (kind=decision): enough to replay it open-loop."""

    rank: int
    request_step: int
    first_step: int = Field(description="first minibatch of the window the controller saw")
    last_step: int
    minibatches: int
    stale: int
    occupancy: int
    capacity: int
    outcome: DecisionOutcome
