"""The summary record (``summary.json``): one run's figures over all its trainers, typed.

Fields are in the order they are written. A summary written before a field existed reads with that
field's default (None, or empty); a live run's summary has no ``replay`` block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rudder_agent.records.model_share import ModelShare
from rudder_agent.records.replayed import ReplayBlock

SUMMARY_FILE = "summary.json"


class MachineTotals(BaseModel):
    """One machine's trainers together: what crosses that machine's link for the buffer's rows."""

    machine: int
    ranks: list[int] = Field(description="its trainers' ranks")
    remote_inputs: int
    hits: int
    comm_rows: int = Field(description="rows fetched by its trainers: misses, replacements and warm starts")
    comm_rows_per_epoch: float


class ShareCost(BaseModel):
    """What sharing one buffer per machine cost its trainers (--buffer-scope machine), per minibatch."""

    waited_rows: int = Field(description="hits on rows another trainer of the machine was fetching, waited for")
    refetched_rows: int = Field(description="of them, rows read again (their slot changed hands first)")
    lock_wait_ms: list[float] = Field(description="waiting for the machine's lock: median, p95")
    lock_hold_ms: list[float] = Field(description="holding it (bookkeeping, hit copies, row writes): median, p95")
    row_wait_ms: list[float] = Field(description="waiting for rows other trainers were fetching: median, p95")
    state_kb: float = Field(description="largest state snapshot read and written per minibatch (arrays excluded)")


class RunSummary(BaseModel):
    """What ``rudder train`` and ``rudder replay`` leave in ``summary.json``."""

    dataset: str | None = None
    parts: int | None = Field(None, description="machines (one partition each)")
    trainers_per_machine: int | None = None
    buffer_scope: str | None = Field(None, description="'machine': one buffer per machine shared by its trainers; "
                                                       "'trainer': one each (None without a buffer)")
    share_cost: ShareCost | None = Field(None, description="machine scope with several trainers per machine only")
    part_method: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    fanouts: list[int] = Field(default_factory=list)
    network: str | None = Field(None, description="'loopback', 'netns@RATE' on the emulated network, or 'ssh' "
                                                  "(hosts over ssh)")
    controller: str | None = None
    buffer_fraction: float | None = Field(None, description="0.0 without a buffer")
    policy: str | None = Field(None, description="the keep policy (None without a buffer)")
    window: int | None = Field(None, description="minibatches sampled ahead (0 without a buffer)")
    minibatches: int | None = None
    input_nodes: int | None = None
    remote_inputs: int | None = None
    remote_share: float | None = None
    hits: int | None = None
    hit_pct: float | None = None
    miss_rows: int | None = None
    replace_rows: int | None = None
    warm_rows: int | None = None
    comm_rows: int | None = Field(None, description="rows fetched: misses, replacements and the warm start")
    comm_bytes: int | None = None
    comm_rows_per_epoch: float | None = None
    wire_bytes_per_epoch: float | None = Field(
        None, description="every machine's inbound link, summed (emulated network only): features, sampling, "
                          "gradients")
    link_bytes_per_epoch: float | None = Field(
        None, description="the busiest direction (in or out) of the busiest machine's link, bytes per epoch, median "
                          "after the first epoch (emulated network only): the bytes behind the link floor")
    link_rate_bytes_s: float | None = Field(
        None, description="each link's rate in bytes/s, per direction (emulated network with a rate only)")
    epoch_time_s: float | None = Field(None, description="the slowest trainer's, median after the first epoch")
    epoch_times_s: list[float] = Field(default_factory=list)
    agent_wait_s: float | None = None
    window_ids_bytes: int | None = Field(
        None, description="the look-ahead window's sampled input ids (its blocks come on top)")
    keep_ms_median: float | None = None
    val_acc: float | None = None
    test_acc: float | None = None
    majority_test_acc: float | None = None
    capacity: list[int] = Field(default_factory=list, description="buffer rows per trainer, by rank")
    machines: list[MachineTotals] = Field(default_factory=list, description="totals per machine, over its trainers")
    decisions: dict[str, int] = Field(default_factory=dict)
    model_share: ModelShare | None = Field(None, description="how often the model was asked and answered, and who "
                                                             "decided each applied decision")
    requests: int | None = None
    dropped_requests: int | None = None
    unanswered: dict[str, int] = Field(default_factory=dict)
    agent_cpu_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    replacement_interval: float | None = Field(None, description="mean minibatches between applied decisions")
    applied: dict[str, int] = Field(default_factory=dict, description="applied decisions by 'source:decision'")
    verified_rows: int | None = None
    keep_memory_bytes: int | None = None
    agent: dict[str, Any] = Field(default_factory=dict, description="the controller's run record (rank 0's)")
    replay: ReplayBlock | None = Field(None, description="a replay's: the run it replayed and how")

    def write(self, run_dir: Path) -> None:
        """Write ``summary.json`` (two-space indented JSON, no ``replay`` key for a live run)."""
        exclude = {"replay"} if self.replay is None else None
        (Path(run_dir) / SUMMARY_FILE).write_text(json.dumps(self.model_dump(exclude=exclude), indent=2))


def read_summary(run_dir: Path) -> RunSummary | None:
    """``summary.json`` of ``run_dir`` (None when the run was killed before writing it)."""
    path = Path(run_dir) / SUMMARY_FILE
    return RunSummary.model_validate(json.loads(path.read_text())) if path.is_file() else None
