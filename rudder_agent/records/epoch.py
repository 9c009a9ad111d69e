"""The epoch record (kind=epoch): one trainer's epoch rolled up from its minibatch records."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel

from rudder_agent.metrics import MinibatchMetrics


class EpochMetrics(BaseModel):
    """One trainer's epoch, rolled up from its minibatches (a record written by hand may hold only its time)."""

    rank: int
    epoch: int
    minibatches: int = 0
    epoch_time_s: float
    remote_inputs: int = 0
    comm_rows: int = 0
    comm_bytes: int = 0
    hits: int = 0
    mean_loss: float | None = None
    wire_rx_bytes: int | None = None
    """Bytes into this trainer's machine over its link during the epoch (emulated network only)."""
    wire_tx_bytes: int | None = None
    """Bytes out of it (its server's answers to the other trainers, its gradients, its requests)."""


def roll_up(rank: int, epoch: int, rows: Sequence[MinibatchMetrics], seconds: float,
            wire_rx_bytes: int | None = None, wire_tx_bytes: int | None = None) -> EpochMetrics:
    """The epoch record of one epoch's minibatch records, which took ``seconds``."""
    losses = [m.loss for m in rows if m.loss is not None]
    return EpochMetrics(rank=rank, epoch=epoch, minibatches=len(rows), epoch_time_s=seconds,
                        remote_inputs=sum(m.remote_inputs for m in rows), comm_rows=sum(m.comm_rows for m in rows),
                        comm_bytes=sum(m.comm_bytes for m in rows), hits=sum(m.hits for m in rows),
                        mean_loss=float(np.mean(losses)) if losses else None,
                        wire_rx_bytes=wire_rx_bytes, wire_tx_bytes=wire_tx_bytes)


def median_after_first(values: Iterable[float]) -> float:
    """Median over epochs after the first (the first pays start-up costs); all if only one."""
    values = list(values)
    return statistics.median(values[1:] if len(values) > 1 else values) if values else 0.0
