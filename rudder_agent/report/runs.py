"""A live run or replay directory loaded once: config, summary and per-rank metric streams."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from rudder_agent.config import BufferConfig, TrainConfig, read_run_config
from rudder_agent.settings.controllers import CONTROLLER_NAMES
from rudder_agent.settings.upgrade import current_values
from rudder_agent.controllers.baselines import MassiveGNN, NoBuffer, ReplaceEveryMinibatch
from rudder_agent.errors import RudderError
from rudder_agent.metrics import read_jsonl
from rudder_agent.summary import summarize

INLINE = {c.name for c in (NoBuffer, ReplaceEveryMinibatch, MassiveGNN) if c.spec.inline}
"""Controllers the live prefetcher evaluates itself every minibatch, whatever the configured mode."""


@dataclass(frozen=True)
class Run:
    """What every table and plot reads about one run."""

    path: Path
    name: str
    config: TrainConfig
    summary: dict
    minibatches: dict[int, list[dict]]  # kind=minibatch rows per rank, by step
    controllers: dict[int, dict]  # kind=controller row per rank ({} if the rank was killed)
    labels: dict[int, dict[int, str]]  # oracle labels (kind=oracle, from `rudder replay --labels`) per rank, by step

    @property
    def controller(self) -> str:
        return self.summary["controller"]

    @property
    def replay(self) -> dict | None:
        """The summary's replay block (of, mode, latency_minibatches, overrides) or None for a live run."""
        return self.summary.get("replay")

    @property
    def settings(self) -> BufferConfig:
        """The controller's settings: the run's buffer config, with a replay's controller and overrides on top."""
        overrides = current_values((self.replay or {}).get("overrides", {}))  # older replays: older names
        tag = {"controller": self.controller} if self.controller in CONTROLLER_NAMES else {}
        return self.config.buffer.with_values({**overrides, **tag})

    @property
    def fraction(self) -> float:
        return float(self.summary["buffer_fraction"])

    @property
    def mode(self) -> str:
        """How decisions reached the buffer: the replay's mode, or the live run's configured one."""
        if self.controller == "none":
            return "-"
        if self.replay is not None:
            return self.replay.get("mode") or "-"
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
        horizon = (self.replay or {}).get("overrides", {}).get("horizon")
        return f"oracle (H={horizon})" if name == "oracle" and horizon else name

    @property
    def group(self) -> tuple:
        """Runs in one group fetch comparable rows: same graph, partitioning and sampling."""
        c = self.config
        return c.dataset, c.parts, c.part_method, c.batch_size, tuple(c.fanouts)

    def trace_dir(self) -> Path | None:
        """Where this run's access trace lives: its own directory, or the recording a replay was made of."""
        for d in (self.path, Path(self.replay["of"]) if self.replay else None):
            if d is not None and any(d.glob("trace-rank*.json")):
                return d
        return None


def _rank(path: Path) -> int:
    return int(re.fullmatch(r"metrics-rank(\d+)\.jsonl", path.name).group(1))


def load_run(path: Path) -> Run:
    """Read a run or replay directory; a missing summary.json (killed run) is computed, not written."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise RudderError(f"{path} is not a run directory (no config.json): "
                          "give the output of `rudder train` or `rudder replay`")
    streams = sorted(path.glob("metrics-rank*.jsonl"), key=_rank)
    if not streams:
        raise RudderError(f"{path} holds no metrics-rank*.jsonl")
    summary_path = path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else summarize(path)
    minibatches, controllers, labels = {}, {}, {}
    for stream in streams:
        rank, rows = _rank(stream), read_jsonl(stream)
        minibatches[rank] = sorted((r for r in rows if r["kind"] == "minibatch"), key=lambda r: r["step"])
        controllers[rank] = next((r for r in reversed(rows) if r["kind"] == "controller"), {})
        labels[rank] = {r["step"]: r["label"] for r in rows if r["kind"] == "oracle"}
    config = read_run_config(path / "config.json")
    return Run(path, path.name, config, summary, minibatches, controllers, labels)


def load_runs(paths: list[Path]) -> list[Run]:
    """Load every directory; runs whose directory names clash are named by their path instead."""
    runs = [load_run(p) for p in paths]
    names = [r.name for r in runs]
    return [replace(r, name=str(r.path)) if names.count(r.name) > 1 else r for r in runs]
