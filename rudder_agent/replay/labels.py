"""Oracle labels of the trajectory a recorded run took: its trace replayed with its own decisions, judged."""

from __future__ import annotations

from pathlib import Path

from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay


def trajectory_labels(run_dir: Path, rank: int, horizon: int) -> dict[int, str]:
    """The oracle's label at every minibatch of rank ``rank``, by step.

    Replaying a trace with its recorded decisions reproduces the live buffer states exactly,
    so each label judges a state the run was really in.
    """
    labels: dict[int, str] = {}

    def collect(record: dict, kind: str) -> None:  # kind=oracle records are {rank, **OracleLabel}
        if kind == "oracle":
            labels[record["step"]] = record["label"]

    replay(load_recording(run_dir, rank), "recorded", collect, label_horizon=horizon, progress=False)
    return labels
