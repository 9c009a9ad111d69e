"""The nodes of the decision graph that need no model (paper §4.2, plus What-if); graph.py wires them.

Metrics Collector, Context Builder, What-if, Guard, No-difference and Record. Each node returns
only the state keys it changes; none keeps anything between invocations (see state.py). The
nodes that ask the model and read its answer are in model_nodes.py.
"""

from __future__ import annotations

from typing import Any

from rudder_agent.agent.context import Context
from rudder_agent.agent.state import AgentState, HistoryEntry, Progress
from rudder_agent.decision import DecisionOutcome
from rudder_agent.window import summarize_window


def collect_metrics(state: AgentState) -> dict[str, Any]:
    """Metrics Collector: reduce the request's minibatches to one window summary."""
    request = state.request
    previous = state.history[-1].window if state.history else None
    return {"window": summarize_window(request.window, request.step, request.stale, request.occupancy,
                                       request.capacity, previous)}


def build_context(state: AgentState) -> dict[str, Any]:
    """Context Builder: measure the previous decision's effect on this window; note progress."""
    history = list(state.history)
    window = state.window
    if history and not history[-1].evaluated and window.minibatches:
        before = history[-1].window
        history[-1] = history[-1].model_copy(update={
            "hits_change_pp": window.hit_pct - before.hit_pct,
            "comm_change_per_mb": window.comm_per_mb - before.comm_per_mb,
        })
    total = state.facts.total_minibatches
    done = state.request.step + 1
    return {"history": history, "progress": Progress(done=min(done, total) if total else done, total=total)}


def play_what_if(state: AgentState) -> dict[str, Any]:
    """What-if: replace and skip played forward on a fork of the buffer, over the sampled window (or the
    recent past); a request that brings its own (a recorded run replayed open-loop) keeps it."""
    request = state.request
    return {"whatif": request.whatif if request.whatif is not None else request.outlook.what_if()}


def apply_guard(state: AgentState, context: Context) -> dict[str, Any]:
    """Guard: skip when a replacement cannot help, replace while empty slots wait; else nothing settled.

    With a what-if played, the blind rules of thumb (nothing stale, the last minibatches, empty
    slots) are left to it: it measures both answers.
    """
    played = state.whatif is not None
    skip = context.guard.skip_reason(state.window, state.progress, played=played)
    fill = None if skip or played else context.guard.fill_reason(state.window)
    if not (skip or fill):
        return {}
    return {"outcome": DecisionOutcome(request_step=state.request.step, decision="skip" if skip else "replace",
                                       source="guard", reason=skip or fill)}


def settle_no_difference(state: AgentState, context: Context) -> dict[str, Any]:
    """No-difference: the what-if's two answers fetch nearly the same rows, so its favourite is the answer."""
    same = context.guard.no_difference_reason(state.whatif)
    if same is None:
        return {}
    return {"outcome": DecisionOutcome(request_step=state.request.step, decision=state.whatif.favours,
                                       source="no-difference", reason=same)}


def record(state: AgentState, context: Context) -> dict[str, Any]:
    """Record: the outcome with the model's time, the what-if and the route; the history with the decision.

    Windows without minibatches carry no evidence, so they leave no history entry.
    """
    outcome = state.outcome.model_copy(update={"latency_s": state.reply.seconds if state.reply else 0.0,
                                               "whatif": state.whatif, "route": state.route})
    if not state.window.minibatches:
        return {"outcome": outcome}
    entry = HistoryEntry(step=outcome.request_step, window=state.window, decision=outcome.decision,
                         source=outcome.source, expected_hits=outcome.expected_hits,
                         expected_comm=outcome.expected_comm,
                         whatif_favours=state.whatif.favours if state.whatif is not None else None)
    return {"outcome": outcome, "history": [*state.history, entry][-max(context.config.history_len, 1):]}

