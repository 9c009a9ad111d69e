"""A run directory read once: its config, its summary and every rank's metric stream as typed records.

Live runs (`rudder train`) and replays (`rudder replay`) share the layout; a replay's
``summary.json`` carries a ``replay`` block naming the run it replayed and the settings it
overrode. Older files load here: the config through ``read_run_config`` (it upgrades older
shapes), replay overrides under their current setting names (``records.replayed``), and
records that lack newer fields take their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rudder_agent.config import BufferConfig, TrainConfig, read_run_config
from rudder_agent.decision import DecisionRecord
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.epoch import EpochMetrics
from rudder_agent.records.evaluation import EvalRecord
from rudder_agent.records.oracle import OracleLabel
from rudder_agent.records.replayed import ReplayBlock, replayed_settings
from rudder_agent.records.run_summary import RunSummary, read_summary
from rudder_agent.records.stream import read_jsonl, stream_path, stream_ranks


@dataclass(frozen=True)
class RankStream:
    """One rank's metric stream, each kind typed, in the order written."""

    rank: int
    minibatches: list[MinibatchMetrics] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    """kind=decision, in the order the requests were answered."""
    epochs: list[EpochMetrics] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    oracle: list[OracleLabel] = field(default_factory=list)
    """kind=oracle, one per minibatch (written by `rudder replay --labels H`)."""
    controllers: list[dict] = field(default_factory=list)
    """kind=controller: the controller's counts and run record, written when the rank ends (none when killed)."""

    @property
    def controller(self) -> dict:
        """The last kind=controller record ({} when the rank was killed)."""
        return self.controllers[-1] if self.controllers else {}

    @property
    def labels(self) -> dict[int, str]:
        """The oracle's label by step."""
        return {o.step: o.label for o in self.oracle}

    def by_step(self) -> list[MinibatchMetrics]:
        """The minibatch records sorted by step."""
        return sorted(self.minibatches, key=lambda m: m.step)


def read_stream(path: Path, rank: int) -> RankStream:
    """Every complete record of one metric stream (a torn last line is left out)."""
    kinds: dict[str, list[dict]] = {}
    for row in read_jsonl(path):
        kinds.setdefault(row.get("kind"), []).append(row)
    return RankStream(
        rank=rank,
        minibatches=[MinibatchMetrics.model_validate(r) for r in kinds.get("minibatch", [])],
        decisions=[DecisionRecord.model_validate(r) for r in kinds.get("decision", [])],
        epochs=[EpochMetrics.model_validate(r) for r in kinds.get("epoch", [])],
        evals=[EvalRecord.model_validate(r) for r in kinds.get("eval", [])],
        oracle=[OracleLabel.model_validate(r) for r in kinds.get("oracle", [])],
        controllers=kinds.get("controller", []),
    )


def read_rank(run_dir: Path, rank: int) -> RankStream:
    """Rank ``rank``'s stream in ``run_dir``; an empty stream when it wrote none."""
    path = stream_path(run_dir, rank)
    return read_stream(path, rank) if path.exists() else RankStream(rank)


def trace_dir(run_dir: Path, replay: ReplayBlock | None, rank: int | None = None) -> Path | None:
    """Where a run's trace (of ``rank``, or of any rank) lives: its own directory, or the run a replay replayed."""
    of = replay.of if replay is not None else None
    pattern = "trace-rank*.json" if rank is None else f"trace-rank{rank}.json"
    for d in (run_dir, Path(of) if of else None):
        if d is not None and any(d.glob(pattern)):
            return d
    return None


@dataclass(frozen=True)
class RunRecords:
    """A whole run directory."""

    path: Path
    config: TrainConfig
    summary: RunSummary | None
    """``summary.json`` as written (None when the run was killed before writing it)."""
    streams: dict[int, RankStream]
    """Every rank with a metric stream, ascending."""

    @property
    def replay(self) -> ReplayBlock | None:
        """The summary's replay block, None for a live run."""
        return self.summary.replay if self.summary is not None else None

    def settings(self) -> BufferConfig:
        """The settings this run's decisions were made with (see :func:`replayed_settings`)."""
        return replayed_settings(self.config, self.replay)

    def trace_dir(self, rank: int | None = None) -> Path | None:
        """See :func:`trace_dir`."""
        return trace_dir(self.path, self.replay, rank)


def read_run(run_dir: Path) -> RunRecords:
    """Config, summary and every metric stream of ``run_dir`` (which must hold a config.json)."""
    run_dir = Path(run_dir)
    return RunRecords(run_dir, read_run_config(run_dir / "config.json"), read_summary(run_dir),
                      {rank: read_stream(stream_path(run_dir, rank), rank) for rank in stream_ranks(run_dir)})
