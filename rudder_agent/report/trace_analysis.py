"""What needs the recorded trace: oracle labels on a run's own trajectory, and the bounds it is measured against."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rudder_agent.replay.bounds import bounds
from rudder_agent.replay.labels import trajectory_labels
from rudder_agent.report.figures import Labels
from rudder_agent.report.runs import Run


def skip_reason(run: Run) -> str | None:
    """Why labels or bounds cannot be computed for ``run``, or None when they can."""
    if run.controller == "none":
        return "no buffer"
    if run.trace_dir() is None:
        return "no trace (record the run with `rudder train --trace`)"
    return None


def oracle_labels(run: Run, rank: int, horizon: int) -> Labels | None:
    """The oracle's verdict at every minibatch of the trajectory ``run`` actually took.

    A replay's labels are those it recorded (`rudder replay --labels H`); a live run's are
    computed by replaying its trace with its own recorded decisions, which reproduces its
    buffer states exactly. None when neither is possible.
    """
    if run.labels.get(rank):
        return run.labels[rank]
    if run.replay is not None or skip_reason(run) is not None:
        return None
    return trajectory_labels(run.path, rank, horizon)


@cache
def _bounds(trace_dir: Path, rank: int, fraction: float, horizon: int) -> dict:
    """Runs of one trace at one buffer size share their bounds: compute them once."""
    return bounds(trace_dir, rank, fraction=fraction, horizon=horizon)


def bounds_row(run: Run, rank: int, horizon: int, rank_row: dict) -> dict:
    """The run's rank beside compulsory, Belady and oracle figures: %-Hits gap (points) and comm ratio."""
    b = _bounds(run.trace_dir(), rank, run.fraction, horizon)
    row = {"run": run.name, "rank": rank, "controller": run.label, "buffer_pct": 100 * run.fraction,
           "capacity": b["capacity"], "hit_pct": rank_row["hit_pct"], "comm_rows": rank_row["comm_rows"]}
    for name in ("oracle", "belady", "compulsory"):
        hit_pct, comm = b[name]["hit_pct"], b[name]["comm_rows"]
        row |= {f"{name}_hit_pct": hit_pct, f"{name}_comm_rows": comm,
                f"{name}_hit_gap": hit_pct - rank_row["hit_pct"],
                f"{name}_comm_ratio": rank_row["comm_rows"] / comm if comm else None}
    return row
