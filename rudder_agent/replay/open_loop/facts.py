"""The static facts the live agent was given, recovered from what the run directory still holds."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from rudder_agent.decision import StaticFacts
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.trace import read_trace_meta
from rudder_agent.replay.open_loop.stream import RecordedStream


def minibatches_per_epoch(minibatches: Sequence[MinibatchMetrics]) -> int:
    """The most minibatches any epoch of the stream holds (a killed run's last epoch is short)."""
    counts: dict[int, int] = {}
    for m in minibatches:
        counts[m.epoch] = counts.get(m.epoch, 0) + 1
    return max(counts.values(), default=0)


def run_facts(stream: RecordedStream) -> tuple[StaticFacts, str | None]:
    """The static facts the live agent was given, and a note when they had to be approximated.

    In order: the kind=controller record (runs since open-loop replay), the trace's meta, the
    partition's rudder_meta.json (partition = rank, as the local launcher places trainers).
    """
    capacity = next((m.capacity for m in stream.minibatches if m.capacity), 0)
    if stream.controller.get("facts"):
        return StaticFacts.model_validate(stream.controller["facts"]), None
    traced = stream.trace_dir()
    if traced is not None:  # a replay's buffer may be another size (--fraction): its own capacity
        facts = read_trace_meta(traced / f"trace-rank{stream.rank}.json").facts
        return facts.model_copy(update={"capacity": capacity or facts.capacity}), None
    cfg = stream.config
    total = cfg.epochs * minibatches_per_epoch(stream.minibatches)
    meta_path = Path(cfg.part_config).parent / "rudder_meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        part = next(p for p in meta["partitions"] if p["part_id"] == stream.rank)
        return StaticFacts(dataset=cfg.dataset, num_nodes=meta["num_nodes"], num_edges=meta["num_edges"],
                           num_parts=meta["parts"], partition=stream.rank,
                           local_nodes=part["node_end"] - part["node_start"], halo_nodes=part["halo_nodes"],
                           capacity=capacity, total_minibatches=total, feature_dim=meta["feat_dim"]), None
    except (OSError, ValueError, KeyError, StopIteration):
        halo = math.ceil(capacity / cfg.buffer.fraction) if capacity else 0
        return (StaticFacts(dataset=cfg.dataset, num_nodes=0, num_edges=0, num_parts=cfg.parts,
                            partition=stream.rank, local_nodes=0, halo_nodes=halo, capacity=capacity,
                            total_minibatches=total, feature_dim=0),
                f"rank {stream.rank}: graph facts unknown ({meta_path} unreadable): the prompt shows 0 nodes and edges")

