"""Per-minibatch metrics: what one trainer observed while preparing one minibatch (kind=minibatch records).

The shared definitions: a *remote* input node is owned by another partition (any hop);
%-Hits = remote inputs served from the buffer / remote inputs x 100; communication volume (``comm_rows``) = remote rows fetched = remote misses + rows fetched
to fill the buffer on a replacement.
"""

from __future__ import annotations

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
    t_sample: float = Field(0.0, description="sampling thread: seconds the loader took to give this minibatch "
                                             "(with a look-ahead window: sampling the one W ahead)")
    t_fetch: float = Field(0.0, description="sampling thread: seconds fetching its features through the buffer "
                                            "(lookup, the one read, assembly; not t_wait)")
    t_train: float = Field(0.0, description="main thread: seconds training on it (t_forward + t_backward + "
                                            "t_allreduce_wait + t_optimizer in the built-in trainer)")
    t_wait: float = Field(0.0, description="seconds the trainer waited on the controller")
    t_keep: float = Field(0.0, description="CPU seconds of the keep policy's round and plan (part of t_fetch)")
    machine_op: int = Field(-1, description="machine-shared buffer: this minibatch's place in its machine's order "
                                            "(-1: the trainer's own buffer)")
    waited_rows: int = Field(0, description="machine-shared buffer: hits on rows another trainer was fetching")
    refetched_rows: int = Field(0, description="of them, rows read here after all (counted in misses and comm_rows)")
    t_share_lock: float = Field(0.0, description="machine-shared buffer: seconds waiting for its lock")
    t_share_hold: float = Field(0.0, description="machine-shared buffer: seconds holding its lock")
    t_share_wait: float = Field(0.0, description="machine-shared buffer: seconds waiting for other trainers' rows")
    state_bytes: int = Field(0, description="machine-shared buffer: size of the state snapshot it loads and stores")
    # Stage timers (rudder_agent/stages.py says what each includes); 0 in records written without them.
    t_pull: float = Field(0.0, description="sampling thread: seconds of its one DistTensor read (part of t_fetch): "
                                           "remote misses and replacement rows over the link, local rows and hits' "
                                           "stand-ins from shared memory")
    t_batch_wait: float = Field(0.0, description="main thread: seconds it waited for this minibatch to be ready "
                                                 "(training idle: sampling or fetching behind)")
    t_forward: float = Field(0.0, description="main thread: forward pass and loss (part of t_train)")
    t_backward: float = Field(0.0, description="main thread: backward computation, DDP's overlapped all-reduce "
                                               "inside (part of t_train)")
    t_allreduce_wait: float = Field(0.0, description="main thread: backward's wait for the gradient all-reduce "
                                                     "after the computation ended (part of t_train)")
    t_optimizer: float = Field(0.0, description="main thread: optimizer step (part of t_train)")
    ts_sample_start: float = Field(0.0, description="wall clock (Unix seconds) the sampling thread asked the "
                                                    "loader for this minibatch")
    ts_sample_end: float = Field(0.0, description="wall clock the loader gave it")
    ts_fetch_start: float = Field(0.0, description="wall clock its fetch started (sampling thread)")
    ts_fetch_end: float = Field(0.0, description="wall clock it was ready: features and labels read")
    ts_plan_end: float = Field(0.0, description="pulling from peers: wall clock the sampling thread's part of the "
                                                "fetch ended (planned, rows asked for, labels read); 0: one thread")
    ts_pull_start: float = Field(0.0, description="pulling from peers: wall clock the pull thread started on it "
                                                  "(its rows received and assembled until ts_fetch_end)")
    ts_train_start: float = Field(0.0, description="wall clock the main thread had it and started training")
    ts_train_end: float = Field(0.0, description="wall clock the main thread's training on it ended")

    @property
    def hit_pct(self) -> float:
        """%-Hits of this minibatch (0 when it had no remote inputs)."""
        return 100.0 * self.hits / self.remote_inputs if self.remote_inputs else 0.0


def minibatch_record(counts, outcome, *, rank: int, epoch: int, step: int, row_bytes: int, requested: bool,
                     **extra) -> MinibatchMetrics:
    """The metrics record of one minibatch from the engine's counts and the decision applied to it."""
    fields = {k: getattr(counts, k) for k in ("input_nodes", "remote_inputs", "hits", "misses", "replace_rows",
                                               "comm_rows", "stale", "occupancy", "capacity")}
    answer = {} if outcome is None else dict(
        decision_applied=outcome.decision, decision_source=outcome.source, decision_valid=outcome.valid,
        expected_hits=outcome.expected_hits, expected_comm=outcome.expected_comm,
    )
    return MinibatchMetrics(rank=rank, epoch=epoch, step=step, comm_bytes=counts.comm_rows * row_bytes,
                            decision_requested=requested, **fields, **answer, **extra)
