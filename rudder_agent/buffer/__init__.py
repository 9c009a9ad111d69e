"""Persistent remote-feature buffer, its scoring policy and the DistDGL-free minibatch engine."""

from rudder_agent.buffer.engine import BufferEngine, FetchCounts, FetchPlan
from rudder_agent.buffer.persistent import PersistentBuffer, ReplacementPlan
from rudder_agent.buffer.policy import ScoringPolicy

__all__ = ["BufferEngine", "FetchCounts", "FetchPlan", "PersistentBuffer", "ReplacementPlan", "ScoringPolicy"]
