"""The classifier's input: the agent's window summary of recent minibatches plus static facts.

The window is the last ``window`` minibatches of the trainer's metric stream, reduced as the
agent's Metrics Collector reduces a request (``rudder_agent.window``), so a classifier sees
the same %-Hits, trend and communication figures as the LLM. A fixed-length window (not the
request's, whose length depends on asynchronous timing) makes offline and online features
the same function of the stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from rudder_agent.decision import StaticFacts
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.window import WindowSummary, summarize_window

SCHEMA_VERSION = 1
FEATURE_NAMES: tuple[str, ...] = (
    "hit_pct",
    "hit_trend_pp",
    "comm_share",
    "log_comm_per_mb",
    "log_remote_per_mb",
    "replaced_pct",
    "stale_pct",
    "occupancy_pct",
    "log_num_nodes",
    "log_num_edges",
    "log_local_nodes",
    "log_halo_nodes",
    "log_capacity",
    "progress",
)


class FeatureSchema(BaseModel):
    """Ordered feature names and their version: what an artefact was trained on."""

    version: int
    names: list[str]

    def differences(self, current: FeatureSchema) -> list[str]:
        """What changed from this (trained) schema to ``current``; empty when they match."""
        out = []
        if self.version != current.version:
            out.append(f"schema version {self.version} -> {current.version}")
        added = [n for n in current.names if n not in self.names]
        dropped = [n for n in self.names if n not in current.names]
        if added:
            out.append(f"features added since: {added}")
        if dropped:
            out.append(f"features no longer computed: {dropped}")
        if not added and not dropped and self.names != current.names:
            out.append(f"feature order changed: {self.names} -> {current.names}")
        return out


CURRENT_SCHEMA = FeatureSchema(version=SCHEMA_VERSION, names=list(FEATURE_NAMES))


def summarize(facts: StaticFacts, batches: Sequence[MinibatchMetrics], step: int) -> WindowSummary:
    """The Metrics Collector's summary of ``batches``; buffer state as after the last of them."""
    last = batches[-1] if batches else None
    return summarize_window(batches, step, last.stale if last else 0, last.occupancy if last else 0, facts.capacity)


def window_features(facts: StaticFacts, recent: Sequence[MinibatchMetrics], step: int) -> np.ndarray:
    """Features for the decision applied at minibatch ``step``, from the minibatches before it."""
    w = summarize(facts, recent, step)
    per_mb = lambda v: v / w.minibatches if w.minibatches else 0.0  # noqa: E731
    pct_of_capacity = lambda v: 100.0 * v / facts.capacity if facts.capacity else 0.0  # noqa: E731
    values = {
        "hit_pct": w.hit_pct,
        "hit_trend_pp": w.hit_trend_pp,
        "comm_share": w.comm_rows / w.remote_inputs if w.remote_inputs else 0.0,
        "log_comm_per_mb": math.log1p(w.comm_per_mb),
        "log_remote_per_mb": math.log1p(per_mb(w.remote_inputs)),
        "replaced_pct": pct_of_capacity(per_mb(w.replace_rows)),
        "stale_pct": pct_of_capacity(w.stale),
        "occupancy_pct": pct_of_capacity(w.occupancy),
        "log_num_nodes": math.log1p(facts.num_nodes),
        "log_num_edges": math.log1p(facts.num_edges),
        "log_local_nodes": math.log1p(facts.local_nodes),
        "log_halo_nodes": math.log1p(facts.halo_nodes),
        "log_capacity": math.log1p(facts.capacity),
        "progress": min(step / facts.total_minibatches, 1.0) if facts.total_minibatches else 0.0,
    }
    return np.array([values[n] for n in FEATURE_NAMES], dtype=np.float64)
