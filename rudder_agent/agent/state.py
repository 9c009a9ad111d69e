"""Typed state of the decision graph: one request in, one outcome, the updated history and the route out.

The graph keeps nothing between invocations; the controller carries `history` from one
request to the next. That bounds memory (a checkpointer would store every step of a long
run) and lets Studio replay any request with any history. A request enters as an
:class:`AgentInput`; the other fields are written by the nodes of that one pass.
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


class Reply(BaseModel):
    """What the model returned for one request: its answer text (None: the call failed) and, with the swap
    test, the answer tokens' log-probabilities for the prompt as measured and with the what-if's figures
    exchanged."""

    text: str | None = None
    logprobs: tuple[list[dict] | None, list[dict] | None] | None = None
    seconds: float = Field(0.0, description="time the model took to answer (both prompts, with the swap test)")


class AgentInput(BaseModel):
    """One request as the controller (or Studio) hands it to the graph."""

    facts: StaticFacts
    request: DecisionRequest
    history: list[HistoryEntry] = Field(default_factory=list)


class AgentState(AgentInput):
    """What flows through the graph's nodes (graph.py); each node writes the fields it settles."""

    window: WindowSummary | None = None
    progress: Progress | None = None
    whatif: WhatIf | None = Field(None, description="replace and skip played forward on a fork of the buffer")
    reply: Reply | None = Field(None, description="the model's reply, once it was asked")
    fault: str | None = Field(None, description="why the model's reply cannot be used (the fallback decides)")
    outcome: DecisionOutcome | None = Field(None, description="None while the model's answer is pending (model_call)")
    model_call: Unanswered | None = Field(
        None, description="async: the model answers later (asked), or it still answers an earlier request (busy: "
                          "this request goes unanswered)")
    route: list[str] = Field(default_factory=list, description="the nodes this request passed, in order, up to the "
                                                                 "one running")
