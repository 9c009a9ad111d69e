"""Where the decision graph goes after each node that may settle a request; graph.py puts them on its edges.

Each route reads only what the nodes wrote to the state, except :func:`route_what_if`, which also
reads the run's settings. ``ask`` is the model's turn: Ask Model, or Hand-off in asynchronous mode.
"""

from __future__ import annotations

from typing import Literal

from rudder_agent.agent.context import Context
from rudder_agent.agent.state import AgentState


def route_what_if(state: AgentState, context: Context) -> Literal["what_if", "guard"]:
    """Play the what-if unless it is off, there is no buffer to fork, or the guard settles the request anyway;
    a request that brings its own what-if (a recorded run replayed open-loop) always keeps it."""
    request = state.request
    if request.whatif is not None:
        return "what_if"
    plays = context.config.whatif and request.outlook is not None and not context.guard.obvious(state.window,
                                                                                                   state.progress)
    return "what_if" if plays else "guard"


def route_guard(state: AgentState) -> Literal["record", "no_difference", "ask"]:
    """Settled by the guard: record it; else a played what-if may settle it; else the model decides."""
    if state.outcome is not None:
        return "record"
    return "no_difference" if state.whatif is not None else "ask"


def route_no_difference(state: AgentState) -> Literal["record", "ask"]:
    """Settled because both answers fetch nearly the same rows: record it; else the model decides."""
    return "record" if state.outcome is not None else "ask"


def route_reply(state: AgentState) -> Literal["fallback", "read_answer"]:
    """A failed call goes to the fallback; a reply is read."""
    return "fallback" if state.fault is not None else "read_answer"


def route_answer(state: AgentState) -> Literal["fallback", "swap_test", "record"]:
    """An unreadable answer goes to the fallback; with the swap test's second reply, the swap test decides."""
    if state.fault is not None:
        return "fallback"
    return "swap_test" if state.reply.logprobs is not None else "record"


def route_swap_test(state: AgentState) -> Literal["fallback", "record"]:
    """Log-probabilities the swap test cannot read go to the fallback."""
    return "fallback" if state.fault is not None else "record"
