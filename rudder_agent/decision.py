"""The decision vocabulary shared by controllers, the agent, replay and evaluation."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from rudder_agent.metrics import MinibatchMetrics

Action = Literal["replace", "skip"]
Direction = Literal["increase", "decrease", "unchanged"]


class Unanswered(StrEnum):
    """A request an asynchronous controller leaves without an answer now."""

    ASKED = "asked"
    """Its answer comes later (the model's own thread is on it)."""
    BUSY = "busy"
    """None will: the model is answering an earlier request."""


class Source(StrEnum):
    """Where an answer came from; what a channel does with it depends on this type's properties, not its name."""

    MODEL = "model"
    FALLBACK = "fallback"
    GUARD = "guard"
    NO_DIFFERENCE = "no-difference"
    RULE = "rule"
    IDLE = "idle"

    @property
    def tally(self) -> str | None:
        """The decision count it is tallied under instead of replace/skip/invalid (settled without asking)."""
        return {Source.GUARD: "guarded", Source.NO_DIFFERENCE: "no-difference"}.get(self)

    @property
    def arrives_next_minibatch(self) -> bool:
        """Answered without a model call before the next minibatch live, so replay's clock applies it after one."""
        return self is Source.GUARD


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
    buffer_sharers: int = Field(1, description="trainers sharing the buffer: its machine's trainers with "
                                               "--buffer-scope machine (capacity is then the machine's), else 1")


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


@runtime_checkable
class LooksAhead(Protocol):
    """What a request may carry to play answers forward (rudder_agent.buffer.counterfactual.Outlook has it)."""

    @property
    def replacing_is_free(self) -> bool:
        """The keep policy's replacement fetches no extra row."""

    def what_if(self) -> WhatIf | None:
        """Replace and skip played forward on a fork of the buffer, at this moment."""


class DecisionRequest(BaseModel):
    """What the prefetcher sends: every minibatch's metrics since its previous request."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    step: int = Field(description="minibatch index the request was made at")
    window: list[MinibatchMetrics]
    stale: int = Field(description="replaceable slots: empty ones plus entries below the staleness threshold")
    occupancy: int
    capacity: int
    whatif: WhatIf | None = Field(None, description="already computed (a recorded run replayed open-loop)")
    outlook: LooksAhead | None = Field(None, exclude=True, description="computes the what-if on demand")


class DecisionOutcome(BaseModel):
    """A controller's answer, with its provenance so reports can count valid/invalid/guarded."""

    request_step: int
    decision: Action
    source: Source = Source.RULE
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
