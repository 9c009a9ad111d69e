"""Per-minibatch metric records and run summaries: the one vocabulary every module shares.

The shared definitions: a *remote* input node is owned by another partition (any hop);
%-Hits = remote inputs served from the buffer / remote inputs x 100; communication volume (``comm_rows``) = remote rows fetched = remote misses + rows fetched
to fill the buffer on a replacement.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import IO, Iterable

from pydantic import BaseModel, Field


class MinibatchMetrics(BaseModel):
    """What one trainer observed while preparing one minibatch."""

    rank: int
    epoch: int
    step: int = Field(description="minibatch index within this trainer's run, from 0")
    input_nodes: int
    remote_inputs: int
    hits: int = 0
    misses: int = Field(0, description="remote inputs not in the buffer (fetched remotely)")
    replace_rows: int = Field(0, description="remote rows fetched to fill the buffer")
    comm_rows: int = Field(description="remote feature rows pulled: misses + replace_rows")
    comm_bytes: int
    stale: int = 0
    occupancy: int = 0
    capacity: int = 0
    decision_requested: bool = False
    decision_applied: str | None = Field(None, description="'replace' or 'skip' when a decision was applied")
    decision_source: str | None = Field(None, description="model, fallback, guard or rule")
    decision_valid: bool | None = None
    expected_hits: str | None = Field(None, description="predicted direction of %-Hits (for Pass@1)")
    expected_comm: str | None = Field(None, description="predicted direction of comm rows (for Pass@1)")
    loss: float | None = None
    t_sample: float = 0.0
    t_fetch: float = 0.0
    t_train: float = 0.0
    t_wait: float = Field(0.0, description="seconds the trainer waited on the controller")
    t_keep: float = Field(0.0, description="CPU seconds of the keep policy's round and plan (part of t_fetch)")

    @property
    def hit_pct(self) -> float:
        """%-Hits of this minibatch (0 when it had no remote inputs)."""
        return 100.0 * self.hits / self.remote_inputs if self.remote_inputs else 0.0


def minibatch_record(counts, outcome, *, rank: int, epoch: int, step: int, row_bytes: int, requested: bool,
                     **extra) -> MinibatchMetrics:
    """The metrics record of one minibatch from the engine's counts and the decision applied to it."""
    fields = {k: getattr(counts, k) for k in ("input_nodes", "remote_inputs", "hits", "misses", "replace_rows",
                                               "comm_rows", "stale", "occupancy", "capacity")}
    decided = {} if outcome is None else dict(
        decision_applied=outcome.decision, decision_source=outcome.source, decision_valid=outcome.valid,
        expected_hits=outcome.expected_hits, expected_comm=outcome.expected_comm,
    )
    return MinibatchMetrics(rank=rank, epoch=epoch, step=step, comm_bytes=counts.comm_rows * row_bytes,
                            decision_requested=requested, **fields, **decided, **extra)


class EpochMetrics(BaseModel):
    """One trainer's epoch, rolled up from its minibatches."""

    rank: int
    epoch: int
    minibatches: int
    epoch_time_s: float
    remote_inputs: int
    comm_rows: int
    comm_bytes: int
    hits: int
    mean_loss: float | None
    wire_rx_bytes: int | None = None
    """Bytes into this trainer's machine over its link during the epoch (emulated network only)."""
    wire_tx_bytes: int | None = None
    """Bytes out of it (its server's answers to the other trainers, its gradients, its requests)."""


class MetricsWriter:
    """Append-only JSONL stream; each line is flushed so a killed run keeps complete lines."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: BaseModel | dict, kind: str) -> None:
        body = record.model_dump() if isinstance(record, BaseModel) else record
        line = {"kind": kind, **body}
        self._fh.write(json.dumps(line) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_jsonl(path: Path, kind: str | None = None) -> list[dict]:
    """Complete JSON lines of a metrics stream, optionally of one kind; a torn last line is ignored."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            if kind is None or row.get("kind") == kind:
                rows.append(row)
    return rows


def median_after_first(values: Iterable[float]) -> float:
    """Median over epochs after the first (the first pays start-up costs); all if only one."""
    values = list(values)
    return statistics.median(values[1:] if len(values) > 1 else values) if values else 0.0
