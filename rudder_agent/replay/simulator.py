"""Replay a recorded access stream through the live buffer code with a controller in the loop.

Per minibatch it runs the same :class:`rudder_agent.step.MinibatchStep` as a live trainer; only
the ids (the trace), the rows (none are read: the engine keeps ids and scores) and the
decision channel's clock (minibatches, not seconds) differ. No DistDGL process runs; timings
and losses are copied from the recording (zero where it has none) and ``t_wait`` is zero
because nobody waits. Epoch records carry the replay's own wall time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel

from rudder_agent.buffer.counterfactual import Outlook
from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.capabilities import ReadsReplay
from rudder_agent.controllers.channel import DecisionChannel
from rudder_agent.controllers.wiring import open_channel
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.progress import progress as progress_display
from rudder_agent.records.epoch import roll_up
from rudder_agent.records.replayed import ReplayBlock
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.records.run_summary import RunSummary
from rudder_agent.records.summary import write_replay_summary
from rudder_agent.registry import replay_controller
from rudder_agent.replay.oracle import OracleJudge
from rudder_agent.replay.recording import Recording, load_recording
from rudder_agent.step import MinibatchStep, no_rows

Emit = Callable[[BaseModel | dict, str], None]
"""Where records go: ``MetricsWriter.write`` or an in-memory collector."""

_CARRIED = ("loss", "t_sample", "t_fetch", "t_train")


def resolve_controller(controller: Controller | str, recording: Recording, **overrides) -> Controller:
    """A controller by name (configured like the recorded run, plus ``overrides``), or the one given."""
    if isinstance(controller, Controller):
        return controller
    return replay_controller(controller, recording.meta.config.buffer, recording, **overrides)


def warm_ids(controller: Controller, recording: Recording, capacity: int) -> np.ndarray:
    """The controller's warm start, picked from the recorded warm-start candidates.

    The trace keeps the live warm start in degree order, so a rank stands in for the degree.
    """
    if not controller.spec.warm_starts:
        return np.empty(0, dtype=np.int64)
    recorded = np.asarray(recording.meta.warm_ids, dtype=np.int64)
    if recorded.shape[0] < min(capacity, recording.meta.halo_nodes):
        raise RudderError(f"the trace holds {recorded.shape[0]} warm-start ids but a buffer of {capacity} rows "
                          "needs more: record the run with massivegnn at this buffer fraction or larger")
    return np.asarray(controller.warm_start(recorded, np.arange(recorded.shape[0], 0, -1), capacity), dtype=np.int64)


def replay(recording: Recording, controller: Controller | str = "recorded", emit: Emit | None = None, *,
           mode: Literal["async", "sync"] | None = None, latency_minibatches: int | None = None,
           fraction: float | None = None, label_horizon: int | None = None, progress: bool = True,
           **overrides) -> dict:
    """Replay one rank, emitting kind minibatch/epoch/oracle/controller records; returns the controller record.

    ``overrides`` configure a controller given by name: settings by name (period, model, ...; the keep
    policy and scoring apply to the buffer) or, for the oracle, horizon and rollout.
    ``label_horizon`` adds an oracle label before every minibatch.
    """
    emit = emit or (lambda record, kind: None)
    ctl = resolve_controller(controller, recording, **overrides)
    # the keep policy and scoring can be overridden too, to evaluate what-to-keep offline
    b = recording.meta.config.buffer.with_values(overrides)
    capacity = recording.capacity(fraction) if ctl.spec.uses_buffer else 0
    buffer = PersistentBuffer(capacity, 0, ScoringPolicy.from_settings(b.scoring)) if capacity else None
    engine = BufferEngine(buffer, np.asarray(recording.meta.part_bounds), recording.meta.partition,
                          b.policy.build(b.lookahead))
    mode = mode or b.mode
    outlook = Outlook(engine)
    channel: DecisionChannel | None = None
    warm_rows = 0
    try:
        ctl.setup(recording.meta.facts.model_copy(update={"capacity": capacity}))
        if isinstance(ctl, ReadsReplay):
            ctl.bind(engine, recording)
        if buffer is not None:
            warm = warm_ids(ctl, recording, capacity)
            warm_rows = buffer.warm_load(warm) if warm.shape[0] else 0
            channel = open_channel(ctl, buffer, mode, outlook, latency_minibatches or recording.latency_minibatches())
        judge = (OracleJudge(engine, recording.steps, recording.inputs, label_horizon,
                             windows=lambda i: recording.window(i, engine.keep.window)) if label_horizon else None)
        _run(recording, MinibatchStep(engine, channel, outlook, rank=recording.rank, row_bytes=recording.meta.row_bytes,
                                      timed=False), b.window_for(ctl.spec.sees_ahead) if buffer is not None else 0,
             judge, emit, progress,
             ctl.name)
    finally:
        (channel or ctl).close()
    record = {"rank": recording.rank, "controller": ctl.name, "capacity": capacity,
              "warm_rows": warm_rows, "verified_rows": 0, **(channel.record() if channel is not None else {}),
              "agent": ctl.run_record(),
              "replay": ReplayBlock(of=str(recording.run_dir), mode=channel.label if channel is not None else None,
                                    latency_minibatches=channel.latency if channel is not None else None,
                                    overrides={k: v for k, v in overrides.items()
                                               if isinstance(v, (str, int, float, bool))}).model_dump()}
    emit(record, "controller")
    return record


def _run(recording: Recording, step: MinibatchStep, window: int, judge: OracleJudge | None, emit: Emit,
         progress: bool, name: str) -> None:
    """The minibatch loop over the trace (seeing ``window`` minibatches ahead, as live), plus per-epoch roll-ups."""
    meta = recording.meta
    epoch_rows: list[MinibatchMetrics] = []
    tic = time.perf_counter()
    bar = progress_display(total=len(recording.steps), desc=f"replay rank {meta.rank} [{name}]", unit="mb",
                           enabled=progress)
    for i, (s, ids) in enumerate(zip(recording.steps, recording.inputs)):
        epoch = s // meta.minibatches_per_epoch
        if epoch_rows and epoch_rows[-1].epoch != epoch:
            emit(roll_up(meta.rank, epoch_rows[-1].epoch, epoch_rows, time.perf_counter() - tic), "epoch")
            epoch_rows, tic = [], time.perf_counter()
        if judge is not None:
            emit({"rank": meta.rank, **judge.label(s).model_dump()}, "oracle")
        live = recording.minibatches.get(s)
        carried = {k: getattr(live, k) for k in _CARRIED} if live is not None else {}
        _, metrics = step(ids, no_rows, epoch=epoch, step=s, upcoming=recording.window(i, window),
                          **{k: v for k, v in carried.items() if v is not None})
        emit(metrics, "minibatch")
        for decided in step.decisions():
            emit(decided, "decision")
        epoch_rows.append(metrics)
        bar.update()
    bar.close()
    if epoch_rows:
        emit(roll_up(meta.rank, epoch_rows[-1].epoch, epoch_rows, time.perf_counter() - tic), "epoch")


def replay_run(run_dir: Path, rank: int, controller: Controller | str = "recorded",
               mode: Literal["async", "sync"] | None = None, latency_minibatches: int | None = None,
               out_dir: Path = Path("runs/replay"), progress: bool = True, **options) -> RunSummary:
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
    fraction = options.get("fraction") or recording.meta.config.buffer.fraction if record["capacity"] else 0.0
    return write_replay_summary(out_dir, record["controller"], ReplayBlock.model_validate(record["replay"]), fraction)


class Pooled(BaseModel):
    """Counts of one controller over several replayed ranks of a run (benchmarks pool ranks this way)."""

    hits: int = 0
    remote_inputs: int = 0
    comm_rows: int = 0
    seconds: float = 0.0


def replay_counts(recording: Recording, controller: Controller | str, **options) -> Pooled:
    """Replay one recording in memory with one controller; its hits, remote inputs and rows (``options``: :func:`replay`)."""
    seen: list[MinibatchMetrics] = []
    tic = time.perf_counter()
    replay(recording, controller, lambda record, kind: seen.append(record) if kind == "minibatch" else None,
           progress=False, **options)
    return Pooled(hits=sum(m.hits for m in seen), remote_inputs=sum(m.remote_inputs for m in seen),
                  comm_rows=sum(m.comm_rows for m in seen), seconds=time.perf_counter() - tic)


def replay_pooled(run_dir: Path, ranks: list[int], controller: Controller | str, **options) -> Pooled:
    """Replay ``ranks`` of ``run_dir`` in memory with one controller; their hits, remote inputs and rows summed."""
    pooled = Pooled()
    for rank in ranks:
        one = replay_counts(load_recording(Path(run_dir), rank), controller, **options)
        pooled = Pooled(hits=pooled.hits + one.hits, remote_inputs=pooled.remote_inputs + one.remote_inputs,
                        comm_rows=pooled.comm_rows + one.comm_rows, seconds=pooled.seconds + one.seconds)
    return pooled
