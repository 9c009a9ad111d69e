"""Cheap what-if copies of an engine's buffer state, so counterfactual branches never touch the real one."""

from __future__ import annotations

import copy

from rudder_agent.buffer.engine import BufferEngine


def fork(engine: BufferEngine) -> BufferEngine:
    """An engine over a deep copy of ``engine``'s buffer (slots, scores, id table, candidates) and keep policy.

    The arrays are O(capacity), so a fork of an ids-only replay buffer costs well under a millisecond.
    """
    twin = copy.copy(engine)
    twin.buffer, twin.keep = copy.deepcopy((engine.buffer, engine.keep))
    return twin
