"""Typed state of the decision graph: one request in, one outcome and the updated history out.

The graph keeps nothing between invocations; the controller carries `history` from one
request to the next. That bounds memory (a checkpointer would store every step of a long
run) and lets Studio replay any request with any history.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rudder_agent.decision import (Action, DecisionOutcome, DecisionRequest, Direction, Source, StaticFacts, Unanswered,
                                   WhatIf)

Trend = Literal["rising", "falling", "flat"]


class WindowSummary(BaseModel):
    """The minibatches of one request reduced to the figures the prompt and the history use."""

    first_step: int
    last_step: int
    minibatches: int
    remote_inputs: int
    hits: int
    hit_pct: float = Field(description="hits / remote inputs over this window only, x 100")
    hit_trend_pp: float = Field(description="change of hit_pct in points vs the previous window (or within it)")
    trend: Trend
    comm_rows: int
    comm_per_mb: float
    replace_rows: int
    stale: int = Field(description="slots a replacement may overwrite (the buffer counts empty ones too)")
    occupancy: int
    capacity: int

    @property
    def free(self) -> int:
        """Empty buffer slots."""
        return max(self.capacity - self.occupancy, 0)


class Progress(BaseModel):
    """Where training stands, so the agent avoids replacements that cannot pay back."""

    done: int
    total: int

    @property
    def pending(self) -> int:
        """Minibatches still to run."""
        return max(self.total - self.done, 0)


class HistoryEntry(BaseModel):
    """One past decision, the window it was made on, and its measured effect."""

    step: int
    window: WindowSummary
    decision: Action
    source: Source
    expected_hits: Direction | None = None
    expected_comm: Direction | None = None
    whatif_favours: Action | None = Field(None, description="the answer the what-if favoured, if one was played")
    hits_change_pp: float | None = Field(None, description="next window's hit_pct minus this window's")
    comm_change_per_mb: float | None = Field(None, description="next window's comm_per_mb minus this window's")

    @property
    def evaluated(self) -> bool:
        """Whether the window after this decision has arrived."""
        return self.hits_change_pp is not None


class AgentState(BaseModel):
    """What flows through Metrics Collector -> Context Builder -> What-if -> Decision Maker."""

    facts: StaticFacts
    request: DecisionRequest
    history: list[HistoryEntry] = Field(default_factory=list)
    window: WindowSummary | None = None
    progress: Progress | None = None
    whatif: WhatIf | None = Field(None, description="replace and skip played forward on a fork of the buffer")
    outcome: DecisionOutcome | None = Field(None, description="None while the model's answer is pending (model_call)")
    model_call: Unanswered | None = Field(
        None, description="async: the model answers later (asked), or it still answers an earlier request (busy: "
                          "this request goes unanswered)")
