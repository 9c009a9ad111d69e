"""One rank of a run directory as open-loop replay reads it: its typed records, the config and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rudder_agent.config import BufferConfig, TrainConfig, read_run_config
from rudder_agent.decision import DecisionRecord
from rudder_agent.errors import InputError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.replayed import ReplayBlock, replayed_settings
from rudder_agent.records.run import read_rank, trace_dir
from rudder_agent.records.run_summary import RunSummary, read_summary
from rudder_agent.records.stream import stream_ranks


@dataclass(frozen=True)
class RecordedStream:
    """One rank's metric stream, loaded once."""

    run_dir: Path
    rank: int
    config: TrainConfig
    minibatches: list[MinibatchMetrics]
    """Minibatch records, sorted by step."""
    decisions: list[DecisionRecord]
    """kind=decision records, in the order they were answered."""
    labels: dict[int, str] = field(default_factory=dict)
    """kind=oracle labels by step (a `rudder replay --labels H` output holds them)."""
    controller: dict = field(default_factory=dict)
    """The kind=controller record ({} when the run was killed)."""
    summary: RunSummary | None = None
    """summary.json (None when the run was killed before writing it)."""

    @property
    def replay(self) -> ReplayBlock | None:
        """The summary's replay block, None for a live run."""
        return self.summary.replay if self.summary is not None else None

    def settings(self) -> BufferConfig:
        """The settings the recorded decisions were made with: the run's config, with a replay's overrides on top."""
        return replayed_settings(self.config, self.replay)

    def trace_dir(self) -> Path | None:
        """Where this rank's access trace lives: the run's own directory, or the run a replay was made of."""
        return trace_dir(self.run_dir, self.replay, self.rank)


def check_run_dir(run_dir: Path) -> list[int]:
    """The ranks of a run directory; InputError (one line) for anything that is not one."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory: give a run directory (`rudder train --out` or "
                         "`rudder replay --out`)")
    if not (run_dir / "config.json").is_file():
        raise InputError(f"{run_dir} is not a run directory (no config.json)")
    ranks = stream_ranks(run_dir)
    if not ranks:
        raise InputError(f"{run_dir} holds no metrics-rank*.jsonl")
    return ranks


def load_stream(run_dir: Path, rank: int) -> RecordedStream:
    """Read one rank's metric stream and the run's recorded config."""
    ranks = check_run_dir(run_dir)
    if rank not in ranks:
        raise InputError(f"{run_dir} has no metric stream for rank {rank} (ranks present: "
                         f"{', '.join(map(str, ranks))})")
    stream = read_rank(run_dir, rank)
    return RecordedStream(run_dir=run_dir, rank=rank, config=read_run_config(run_dir / "config.json"),
                          minibatches=stream.by_step(), decisions=stream.decisions, labels=stream.labels,
                          controller=stream.controller, summary=read_summary(run_dir))
