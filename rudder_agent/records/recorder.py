"""One trainer's records of a run, as `rudder replay`, `replay-metrics`, `bounds` and `report` read them.

The built-in trainer and a user's script attached with :class:`rudder_agent.attach.BufferedFeatures` write
the same files: ``metrics-rank<r>.jsonl`` (a record per minibatch, the controller's decisions, a roll-up per
epoch, the controller's summary at the end) and, with ``--trace``, the access trace and its meta.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from rudder_agent.log import get_logger
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.epoch import EpochMetrics, roll_up
from rudder_agent.records.stream import MetricsWriter, stream_path
from rudder_agent.records.trace import TraceMeta, TraceWriter, write_trace_meta

log = get_logger(__name__)

WireCounter = Callable[[], "tuple[int, int] | None"]
"""Bytes the machine's link has received and sent so far (:func:`rudder_agent.link.link_bytes`)."""


class RunRecorder:
    """Writes one trainer's metric stream (and trace); epochs are rolled up as they end.

    Args:
        out_dir: the run's directory.
        rank: the trainer's rank: its files are named after it.
        trace: also record the access trace (``trace-rank<r>.rtf`` and its meta).
        wire: reads the machine link's byte counters (on the emulated network); None: no wire bytes.
    """

    def __init__(self, out_dir: Path, rank: int, *, trace: bool = False, wire: WireCounter | None = None):
        self.out_dir, self.rank, self.wire = out_dir, rank, wire
        self.writer = MetricsWriter(stream_path(out_dir, rank))
        self.trace = TraceWriter(out_dir / f"trace-rank{rank}.rtf") if trace else None
        self.epoch: int | None = None
        self.rows: list[MinibatchMetrics] = []
        self._tic = 0.0
        self._wire_before: tuple[int, int] | None = None

    def trace_meta(self, meta: TraceMeta) -> None:
        """What a replay needs besides the trace (written once, when it is known)."""
        if self.trace is not None:
            write_trace_meta(self.out_dir / f"trace-rank{self.rank}.json", meta)

    def accessed(self, step: int, input_nodes: np.ndarray) -> None:
        """A minibatch's input nodes, for the trace."""
        if self.trace is not None:
            self.trace.write(step, input_nodes)

    def start_epoch(self, epoch: int) -> None:
        """The epoch's clock (and the link's counters) start now."""
        self.epoch, self.rows = epoch, []
        self._tic = time.perf_counter()
        self._wire_before = self.wire() if self.wire is not None else None

    def minibatch(self, metrics: MinibatchMetrics) -> None:
        """One trained (or only fetched) minibatch of the current epoch."""
        self.writer.write(metrics, "minibatch")
        self.rows.append(metrics)

    def decisions(self, records: Iterable) -> None:
        """The controller's answered requests."""
        for decided in records:
            self.writer.write(decided, "decision")

    def end_epoch(self) -> EpochMetrics | None:
        """Roll the current epoch up (None when no epoch is open)."""
        if self.epoch is None:
            return None
        wire = self.wire() if self._wire_before is not None else None
        rx, tx = (wire[0] - self._wire_before[0], wire[1] - self._wire_before[1]) if wire else (None, None)
        em = roll_up(self.rank, self.epoch, self.rows, time.perf_counter() - self._tic, rx, tx)
        self.writer.write(em, "epoch")
        inputs = sum(m.input_nodes for m in self.rows)
        log.info("epoch done", epoch=em.epoch, time_s=round(em.epoch_time_s, 3),
                 loss=None if em.mean_loss is None else round(em.mean_loss, 4),
                 remote_share=round(em.remote_inputs / max(1, inputs), 4), comm_rows=em.comm_rows, hits=em.hits)
        self.epoch, self.rows = None, []
        return em

    def write(self, record, kind: str) -> None:
        """Any other record of the stream (evaluation)."""
        self.writer.write(record, kind)

    def close(self, controller_summary: dict) -> None:
        """Write the controller's summary and close the files (an epoch still open is not rolled up: it did not
        end)."""
        self.writer.write({"rank": self.rank, **controller_summary}, "controller")
        self.writer.close()
        if self.trace is not None:
            self.trace.close()
