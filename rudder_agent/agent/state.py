"""Typed state of the decision graph: one request in, one outcome and the updated history out.

The graph keeps nothing between invocations; the controller carries `history` from one
request to the next. That bounds memory (a checkpointer would store every step of a long
run) and lets Studio replay any request with any history.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from rudder_agent.decision import (Action, DecisionOutcome, DecisionRequest, Direction, Source, StaticFacts, Unanswered,
                                   WhatIf)
from rudder_agent.window import WindowSummary


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
