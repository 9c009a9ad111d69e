"""Replay a recorded access stream through the live buffer code with a controller in the loop.

Per minibatch it mirrors ``rudder_agent.dist.fetch.FeatureSource._prepare``: take the decision
to apply (see ``replay.sources``), ``engine.prepare``, ``engine.complete`` (ids and scores
only: no features), build the same ``MinibatchMetrics`` and hand them to the controller.
No DistDGL process runs; timings and losses are copied from the recording (zero where it
has none) and ``t_wait`` is zero because nobody waits. Epoch records carry the replay's own
wall time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel
from tqdm import tqdm

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.config import BufferConfig
from rudder_agent.controllers import Controller, make_controller
from rudder_agent.errors import RudderError
from rudder_agent.metrics import EpochMetrics, MetricsWriter, MinibatchMetrics, minibatch_record
from rudder_agent.replay.oracle import Oracle, OracleJudge
from rudder_agent.replay.recorded import RecordedSource
from rudder_agent.replay.recording import Recording, load_recording
from rudder_agent.replay.sources import DecisionSource, InlineSource, QueuedSource, measured_latency
from rudder_agent.summary import summarize

Emit = Callable[[BaseModel | dict, str], None]
"""Where records go: ``MetricsWriter.write`` or an in-memory collector."""

_CARRIED = ("loss", "t_sample", "t_fetch", "t_train")


POLICY_FIELDS = ("delta", "gamma", "tau")


def resolve_controller(controller: Controller | str, recording: Recording, **overrides) -> Controller | None:
    """A controller by name (configured like the recorded run, plus ``overrides``); None for 'recorded'."""
    if isinstance(controller, Controller):
        return controller
    if controller == "recorded":
        return None
    if controller == "oracle":
        return Oracle(**{k: v for k, v in overrides.items() if k not in POLICY_FIELDS})
    try:
        cfg = BufferConfig.model_validate({**recording.meta.config.buffer.model_dump(), **overrides,
                                           "controller": controller})
    except ValueError as exc:
        raise RudderError(f"cannot replay controller {controller!r}: {exc}") from None
    return make_controller(cfg)


def warm_ids(controller: Controller | None, recording: Recording, capacity: int) -> np.ndarray:
    """Warm-start ids: the recorded ones for 'recorded', else the controller's pick from the recorded candidates.

    The trace keeps the live warm start in degree order, so a rank stands in for the degree.
    """
    recorded = np.asarray(recording.meta.warm_ids, dtype=np.int64)
    if controller is not None and type(controller).warm_start is Controller.warm_start:
        return np.empty(0, dtype=np.int64)
    if controller is None and not recorded.shape[0]:
        return recorded
    if recorded.shape[0] < min(capacity, recording.meta.halo_nodes):
        raise RudderError(f"the trace holds {recorded.shape[0]} warm-start ids but a buffer of {capacity} rows "
                          "needs more: record the run with massivegnn at this buffer fraction or larger")
    if controller is None:
        return recorded[:capacity]
    return np.asarray(controller.warm_start(recorded, np.arange(recorded.shape[0], 0, -1), capacity), dtype=np.int64)


def replay(recording: Recording, controller: Controller | str = "recorded", emit: Emit | None = None, *,
           mode: Literal["async", "sync"] | None = None, latency_minibatches: int | None = None,
           fraction: float | None = None, label_horizon: int | None = None, progress: bool = True,
           **overrides) -> dict:
    """Replay one rank, emitting kind minibatch/epoch/oracle/controller records; returns the controller record.

    ``overrides`` configure a controller given by name: BufferConfig fields (period, model, ...;
    delta, gamma and tau also set the scoring policy) or, for the oracle, horizon and rollout. ``label_horizon`` adds an oracle label before every minibatch.
    """
    emit = emit or (lambda record, kind: None)
    ctl = resolve_controller(controller, recording, **overrides)
    b = recording.meta.config.buffer
    capacity = recording.capacity(fraction) if (b.controller != "none" if ctl is None else ctl.uses_buffer) else 0
    # the scoring policy can be overridden too (delta, gamma, tau), to evaluate what-to-keep offline
    policy = ScoringPolicy(**{k: overrides.get(k, getattr(b, k)) for k in POLICY_FIELDS})
    buffer = PersistentBuffer(capacity, 0, policy) if capacity else None
    engine = BufferEngine(buffer, np.asarray(recording.meta.part_bounds), recording.meta.partition)
    mode = mode or b.mode
    latency = 1 if mode == "sync" else latency_minibatches or measured_latency(recording)
    source: DecisionSource | None = None
    try:
        if ctl is not None:
            ctl.setup(recording.meta.facts.model_copy(update={"capacity": capacity}))
            if isinstance(ctl, Oracle):
                ctl.bind(engine, recording.steps, recording.inputs)
        warm_rows = 0
        if buffer is not None:
            warm = warm_ids(ctl, recording, capacity)
            warm_rows = buffer.warm_load(warm) if warm.shape[0] else 0
            source = (RecordedSource(recording) if ctl is None else InlineSource(ctl, buffer) if ctl.inline
                      else QueuedSource(ctl, latency))
        judge = OracleJudge(engine, recording.steps, recording.inputs, label_horizon) if label_horizon else None
        _run(recording, engine, source, judge, emit, progress, "recorded" if ctl is None else ctl.name)
    finally:
        if source is not None:
            source.close()
        elif ctl is not None:
            ctl.close()
    record = {"rank": recording.rank, "controller": "recorded" if ctl is None else ctl.name, "capacity": capacity,
              "warm_rows": warm_rows, "verified_rows": 0, **(source.record() if source is not None else {}),
              "agent": ctl.run_record() if ctl is not None else recording.controller.get("agent", {}),
              "replay": {"of": str(recording.run_dir), "mode": _mode_label(source, mode),
                         "latency_minibatches": latency if isinstance(source, QueuedSource) else None,
                         "overrides": {k: v for k, v in overrides.items() if isinstance(v, (str, int, float, bool))}}}
    emit(record, "controller")
    return record


def _mode_label(source: DecisionSource | None, mode: str) -> str | None:
    """How decisions reached the buffer: None (no buffer), recorded, inline, async or sync."""
    if source is None:
        return None
    if isinstance(source, RecordedSource):
        return "recorded"
    return "inline" if isinstance(source, InlineSource) else mode


def _run(recording: Recording, engine: BufferEngine, source: DecisionSource | None, judge: OracleJudge | None,
         emit: Emit, progress: bool, name: str) -> None:
    """The minibatch loop (mirrors FeatureSource._prepare) plus per-epoch roll-ups."""
    meta, row_bytes = recording.meta, recording.meta.row_bytes
    epoch_rows: list[MinibatchMetrics] = []
    tic = time.perf_counter()
    bar = tqdm(total=len(recording.steps), desc=f"replay rank {meta.rank} [{name}]", unit="mb",
               disable=not progress, leave=False)
    for step, ids in zip(recording.steps, recording.inputs):
        epoch = step // meta.minibatches_per_epoch
        if epoch_rows and epoch_rows[-1].epoch != epoch:
            emit(_epoch(epoch_rows, time.perf_counter() - tic), "epoch")
            epoch_rows, tic = [], time.perf_counter()
        if judge is not None:
            emit({"rank": meta.rank, **judge.label(step).model_dump()}, "oracle")
        outcome = source.take(step) if source is not None else None
        plan = engine.prepare(ids, replace=outcome is not None and outcome.decision == "replace")
        engine.complete(plan, None)
        live = recording.minibatches.get(step, {})
        metrics = minibatch_record(
            plan.counts, outcome, rank=meta.rank, epoch=epoch, step=step, row_bytes=row_bytes,
            requested=source is not None, **{k: live[k] for k in _CARRIED if live.get(k) is not None},
        )
        if source is not None:
            source.offer(metrics)
        emit(metrics, "minibatch")
        epoch_rows.append(metrics)
        bar.update()
    bar.close()
    if epoch_rows:
        emit(_epoch(epoch_rows, time.perf_counter() - tic), "epoch")


def _epoch(rows: list[MinibatchMetrics], seconds: float) -> EpochMetrics:
    """The trainer's epoch roll-up, with the replay's wall time."""
    losses = [m.loss for m in rows if m.loss is not None]
    return EpochMetrics(rank=rows[0].rank, epoch=rows[0].epoch, minibatches=len(rows), epoch_time_s=seconds,
                        remote_inputs=sum(m.remote_inputs for m in rows), comm_rows=sum(m.comm_rows for m in rows),
                        comm_bytes=sum(m.comm_bytes for m in rows), hits=sum(m.hits for m in rows),
                        mean_loss=float(np.mean(losses)) if losses else None)


def replay_run(run_dir: Path, rank: int, controller: Controller | str = "recorded",
               mode: Literal["async", "sync"] | None = None, latency_minibatches: int | None = None,
               out_dir: Path = Path("runs/replay"), progress: bool = True, **options) -> dict:
    """Replay one rank of ``run_dir`` into ``out_dir`` (metrics-rank{r}.jsonl, config.json, summary.json).

    ``summary.json`` covers every rank replayed into ``out_dir`` so far; ``options`` go to :func:`replay`.
    """
    recording = load_recording(Path(run_dir), rank)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"metrics-rank{rank}.jsonl"
    path.unlink(missing_ok=True)
    writer = MetricsWriter(path)
    try:
        record = replay(recording, controller, writer.write, mode=mode, latency_minibatches=latency_minibatches,
                        progress=progress, **options)
    finally:
        writer.close()
    # summarize() reads the run's config: the recorded one (dataset, partitioning, sampling) applies
    (out_dir / "config.json").write_text(recording.meta.config.model_dump_json(indent=2))
    summary = summarize(out_dir)
    summary.update(controller=record["controller"], replay=record["replay"])
    summary["buffer_fraction"] = (options.get("fraction") or recording.meta.config.buffer.fraction
                                  if record["capacity"] else 0.0)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
