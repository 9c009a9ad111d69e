"""One rank of a recorded run, loaded once: trace meta, access stream and metric stream."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.run import read_rank
from rudder_agent.records.trace import TraceMeta, read_trace, read_trace_meta


@dataclass(frozen=True)
class Recording:
    """What a replay feeds through the buffer code instead of a DistDGL process."""

    run_dir: Path
    meta: TraceMeta
    steps: list[int]
    inputs: list[np.ndarray]  # sorted input node ids per minibatch, as traced
    minibatches: dict[int, MinibatchMetrics] = field(default_factory=dict)  # recorded minibatch records by step
    controller: dict = field(default_factory=dict)  # recorded kind=controller row ({} if the run was killed)
    epoch_times_s: list[float] = field(default_factory=list)

    @property
    def rank(self) -> int:
        return self.meta.rank

    def capacity(self, fraction: float | None = None) -> int:
        """Buffer rows for a fraction of the halo (the recorded one by default), as the live trainer sizes it."""
        return math.ceil((fraction or self.meta.config.buffer.fraction) * self.meta.halo_nodes)

    def remote_inputs(self) -> list[np.ndarray]:
        """Remote input ids per minibatch (owner is not this trainer's partition)."""
        local = BufferEngine(None, np.asarray(self.meta.part_bounds), self.meta.partition)
        return [ids[(ids < local.local_lo) | (ids >= local.local_hi)] for ids in self.inputs]

    def window(self, i: int, size: int) -> list[np.ndarray]:
        """Inputs of the up to ``size`` minibatches after the i-th, within its epoch (a live window never crosses one)."""
        per_epoch = self.meta.minibatches_per_epoch
        epoch = self.steps[i] // per_epoch
        out = []
        for j in range(i + 1, min(i + 1 + size, len(self.steps))):
            if self.steps[j] // per_epoch != epoch or self.steps[j] != self.steps[i] + (j - i):
                break
            out.append(self.inputs[j])
        return out

    def live_seconds(self) -> float:
        """Wall time the live run spent in its epochs (sum of this rank's epoch times)."""
        return float(sum(self.epoch_times_s))

    def latency_minibatches(self) -> int:
        """The live controller's median latency in minibatches of the live run (at least 1)."""
        latencies = self.controller.get("latencies_s") or []
        n = len(self.minibatches)
        if not latencies or not n or not self.live_seconds():
            return 1
        return max(1, math.ceil(statistics.median(latencies) / (self.live_seconds() / n)))


def load_recording(run_dir: Path, rank: int) -> Recording:
    """Read one rank's trace and metric stream; the metric stream may be missing or torn."""
    meta_path, trace_path = run_dir / f"trace-rank{rank}.json", run_dir / f"trace-rank{rank}.rtf"
    if not meta_path.exists() or not trace_path.exists():
        raise RudderError(f"{run_dir} has no trace for rank {rank} (expected {meta_path.name} and {trace_path.name})")
    frames = list(read_trace(trace_path))
    stream = read_rank(run_dir, rank)
    return Recording(
        run_dir=run_dir,
        meta=read_trace_meta(meta_path),
        steps=[s for s, _ in frames],
        inputs=[ids for _, ids in frames],
        minibatches={m.step: m for m in stream.minibatches},
        controller=stream.controller,
        epoch_times_s=[e.epoch_time_s for e in stream.epochs],
    )
