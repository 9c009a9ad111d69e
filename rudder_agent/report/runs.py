"""A live run or replay directory as the report reads it: its records, named, with the labels tables show."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.controllers.baselines import MassiveGNN, NoBuffer, ReplaceEveryMinibatch
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.replayed import ReplayBlock, replayed_settings
from rudder_agent.records.run import RunRecords, read_run, trace_dir
from rudder_agent.records.run_summary import RunSummary
from rudder_agent.records.stream import stream_ranks
from rudder_agent.records.summary import summarize_records

INLINE = {c.name for c in (NoBuffer, ReplaceEveryMinibatch, MassiveGNN) if c.spec.inline}
"""Controllers the live prefetcher evaluates itself every minibatch, whatever the configured mode."""


@dataclass(frozen=True)
class Run:
    """What every table and plot reads about one run."""

    records: RunRecords
    name: str
    summary: RunSummary
    """summary.json, or computed from the streams when the run was killed before writing it."""

    @property
    def path(self) -> Path:
        return self.records.path

    @property
    def config(self) -> TrainConfig:
        return self.records.config

    @cached_property
    def minibatches(self) -> dict[int, list[MinibatchMetrics]]:
        """Minibatch records per rank, by step."""
        return {rank: s.by_step() for rank, s in self.records.streams.items()}

    @property
    def controllers(self) -> dict[int, dict]:
        """The kind=controller record per rank ({} if the rank was killed)."""
        return {rank: s.controller for rank, s in self.records.streams.items()}

    @property
    def labels(self) -> dict[int, dict[int, str]]:
        """Oracle labels (kind=oracle, from `rudder replay --labels`) per rank, by step."""
        return {rank: s.labels for rank, s in self.records.streams.items()}

    @property
    def controller(self) -> str:
        return self.summary.controller

    @property
    def replay(self) -> ReplayBlock | None:
        """The summary's replay block, None for a live run."""
        return self.summary.replay

    @property
    def settings(self) -> BufferConfig:
        """The controller's settings: the run's buffer config, with a replay's controller and overrides on top."""
        return replayed_settings(self.config, self.replay, self.controller)

    @property
    def fraction(self) -> float:
        return float(self.summary.buffer_fraction)

    @property
    def mode(self) -> str:
        """How decisions reached the buffer: the replay's mode, or the live run's configured one."""
        if self.controller == "none":
            return "-"
        if self.replay is not None:
            return self.replay.mode or "-"
        return "inline" if self.controller in INLINE else self.config.buffer.mode

    @property
    def label(self) -> str:
        """Controller name plus what distinguishes its variants (model, prompt version, cot, period, horizon)."""
        s, name = self.settings.controller, self.controller
        if name == "llm":
            return f"llm ({s.model}, prompt {s.prompt_version}{', cot' if s.cot else ''})"
        if name == "massivegnn":
            return f"massivegnn (P={s.period})"
        if name == "classifier" and s.classifier_path is not None:
            return f"classifier ({Path(s.classifier_path).stem})"
        horizon = self.replay.overrides.get("horizon") if self.replay is not None else None
        return f"oracle (H={horizon})" if name == "oracle" and horizon else name

    @property
    def group(self) -> tuple:
        """Runs in one group fetch comparable rows: same graph, partitioning and sampling."""
        c = self.config
        return c.dataset, c.parts, c.part_method, c.batch_size, tuple(c.fanouts)

    def trace_dir(self) -> Path | None:
        """Where this run's access trace lives: its own directory, or the recording a replay was made of."""
        return trace_dir(self.path, self.replay)


def load_run(path: Path) -> Run:
    """Read a run or replay directory; a missing summary.json (killed run) is computed, not written."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise RudderError(f"{path} is not a run directory (no config.json): "
                          "give the output of `rudder train` or `rudder replay`")
    if not stream_ranks(path):
        raise RudderError(f"{path} holds no metrics-rank*.jsonl")
    records = read_run(path)
    return Run(records, path.name, records.summary if records.summary is not None else summarize_records(records))


def load_runs(paths: list[Path]) -> list[Run]:
    """Load every directory; runs whose directory names clash are named by their path instead."""
    runs = [load_run(p) for p in paths]
    names = [r.name for r in runs]
    return [replace(r, name=str(r.path)) if names.count(r.name) > 1 else r for r in runs]
