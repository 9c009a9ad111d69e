"""One training run on the local cluster: what `rudder train`, `rudder compare` and the benchmarks share."""

from __future__ import annotations

from pathlib import Path

from rudder_agent.cluster.launcher import LocalCluster
from rudder_agent.config import TrainConfig
from rudder_agent.records.run_summary import RunSummary
from rudder_agent.records.stream import stream_ranks
from rudder_agent.records.summary import write_summary


def run_training(cfg: TrainConfig, timeout_s: float | None = None, trainer: Path | None = None,
                 trainer_args: list[str] | None = None) -> RunSummary | None:
    """Start the local cluster for ``cfg``, train, and return the written summary (None: a user's script that
    recorded nothing, i.e. one without BufferedFeatures)."""
    LocalCluster(cfg, trainer=trainer, trainer_args=trainer_args).run(timeout_s=timeout_s)
    return write_summary(cfg.out_dir) if stream_ranks(cfg.out_dir) else None
