"""Builds the agent's graph: the nodes (nodes.py, model_nodes.py) joined by the routes of routes.py.

    metrics_collector -> context_builder -(route_what_if)-> [what_if ->] guard
    guard -(route_guard)-> record | no_difference | ask
    no_difference -(route_no_difference)-> record | ask
    ask = ask_model -(route_reply)-> read_answer | fallback        (asynchronous: hand_off -> end)
    read_answer -(route_answer)-> swap_test | fallback | record
    swap_test -(route_swap_test)-> fallback | record;  fallback -> record -> end

Every node appends its name to the state's ``route``, which Record copies into the outcome.
In asynchronous mode the reply comes back later through the answer path alone (:func:`answer_graph`),
run by the controller with its history when the deciding thread takes the answer.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.agent.context import ChatModel, Context, HandOff
from rudder_agent.agent.model_nodes import apply_swap_test, ask_model, fall_back, hand_off, read_answer
from rudder_agent.agent.nodes import (apply_guard, build_context, collect_metrics, play_what_if, record,
                                      settle_no_difference)
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.routes import (route_answer, route_guard, route_no_difference, route_reply, route_swap_test,
                                       route_what_if)
from rudder_agent.agent.state import AgentInput, AgentState

Node = Callable[[AgentState], dict[str, Any]]


def build_graph(chat: ChatModel, prompts: PromptSet, config: AgentConfig,
                later: HandOff | None = None) -> CompiledStateGraph:
    """The compiled decision graph: one request in (facts, request, history), outcome and history out.

    ``later``: the model answers on a thread of its own (asynchronous mode); the graph then ends
    without an outcome when the model must decide, and the reply is read when it is taken.
    """
    context = Context(chat, prompts, config, later)
    builder = StateGraph(AgentState, input_schema=AgentInput)
    add_step(builder, "metrics_collector", collect_metrics)
    add_step(builder, "context_builder", build_context)
    add_step(builder, "what_if", play_what_if)
    add_step(builder, "guard", partial(apply_guard, context=context))
    add_step(builder, "no_difference", partial(settle_no_difference, context=context))
    builder.add_edge(START, "metrics_collector")
    builder.add_edge("metrics_collector", "context_builder")
    builder.add_conditional_edges("context_builder", partial(route_what_if, context=context), ["what_if", "guard"])
    builder.add_edge("what_if", "guard")
    ask = "ask_model" if later is None else "hand_off"
    builder.add_conditional_edges("guard", route_guard, {"record": "record", "no_difference": "no_difference",
                                                         "ask": ask})
    builder.add_conditional_edges("no_difference", route_no_difference, {"record": "record", "ask": ask})
    if later is None:
        add_step(builder, "ask_model", partial(ask_model, context=context))
        builder.add_conditional_edges("ask_model", route_reply, ["fallback", "read_answer"])
        add_answer_path(builder, context)
    else:
        add_step(builder, "hand_off", partial(hand_off, context=context, answers=answer_graph(context)))
        builder.add_edge("hand_off", END)
    add_record(builder, context)
    return builder.compile(name="rudder_decision")


def answer_graph(context: Context) -> CompiledStateGraph:
    """The answer path alone, entered with the model's reply: how late answers are read."""
    builder = StateGraph(AgentState)
    builder.add_conditional_edges(START, route_reply, ["fallback", "read_answer"])
    add_answer_path(builder, context)
    add_record(builder, context)
    return builder.compile(name="rudder_late_answer")


def add_answer_path(builder: StateGraph, context: Context) -> None:
    """Read Answer, Swap Test and Fallback, with their routes (shared by both graphs); all end at Record."""
    add_step(builder, "read_answer", partial(read_answer, context=context))
    add_step(builder, "swap_test", apply_swap_test)
    add_step(builder, "fallback", partial(fall_back, context=context))
    builder.add_conditional_edges("read_answer", route_answer, ["fallback", "swap_test", "record"])
    builder.add_conditional_edges("swap_test", route_swap_test, ["fallback", "record"])
    builder.add_edge("fallback", "record")


def add_record(builder: StateGraph, context: Context) -> None:
    """Record, where every answered request ends."""
    add_step(builder, "record", partial(record, context=context))
    builder.add_edge("record", END)


def add_step(builder: StateGraph, name: str, node: Node) -> None:
    """Add ``node`` as ``name``; the node sees (and its update keeps) the state's route with ``name`` appended."""

    def step(state: AgentState) -> dict[str, Any]:
        state = state.model_copy(update={"route": [*state.route, name]})
        return {**node(state), "route": state.route}

    builder.add_node(name, step)

