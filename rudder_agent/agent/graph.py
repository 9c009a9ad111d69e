"""Builds the agent's graph: Metrics Collector -> Context Builder -> What-if -> Decision Maker."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from rudder_agent.agent.configuration import AgentConfig
from rudder_agent.agent.lane import ModelLane
from rudder_agent.agent.nodes import ChatModel, DecisionMaker, WhatIf, build_context, collect_metrics
from rudder_agent.agent.prompts import PromptSet
from rudder_agent.agent.state import AgentState


def build_graph(chat: ChatModel, prompts: PromptSet, config: AgentConfig,
                lane: ModelLane | None = None) -> CompiledStateGraph:
    """The compiled Metrics Collector -> Context Builder -> What-if -> Decision Maker graph.

    ``lane``: the model answers on a thread of its own (asynchronous mode); the graph then ends
    without an outcome when the model must decide.
    """
    builder = StateGraph(AgentState)
    builder.add_node("metrics_collector", collect_metrics)
    builder.add_node("context_builder", build_context)
    builder.add_node("what_if", WhatIf(config))
    builder.add_node("decision_maker", DecisionMaker(chat, prompts, config, lane))
    builder.add_edge(START, "metrics_collector")
    builder.add_edge("metrics_collector", "context_builder")
    builder.add_edge("context_builder", "what_if")
    builder.add_edge("what_if", "decision_maker")
    builder.add_edge("decision_maker", END)
    return builder.compile(name="rudder_decision")
