"""How far a recorded run is from the best possible: compulsory rows, Belady's MIN and the decision oracle."""

from __future__ import annotations

from pathlib import Path

from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.replay.belady import Bound, belady, compulsory
from rudder_agent.replay.oracle import DEFAULT_HORIZON, Oracle
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay


def figures(bound: Bound) -> dict:
    """The three numbers every bound and run is compared on."""
    return {"hits": bound.hits, "comm_rows": bound.comm_rows, "hit_pct": bound.hit_pct}


def bounds(run_dir: Path, rank: int, fraction: float | None = None, horizon: int = DEFAULT_HORIZON,
           progress: bool = False) -> dict:
    """Compulsory rows, Belady's MIN and the oracle replay for one rank, beside what the recorded run did.

    ``compulsory`` bounds any capacity; ``belady`` bounds any policy at this capacity (it may keep any
    id, a scoring policy may not); ``oracle`` is the best replace/skip timing for THIS buffer's policy
    found by a ``horizon``-minibatch look-ahead (a strong heuristic, not a proof of optimality).
    """
    recording = load_recording(Path(run_dir), rank)
    capacity = recording.capacity(fraction)
    stream = recording.remote_inputs()
    remote = int(sum(len(r) for r in stream))
    rows: list[MinibatchMetrics] = []
    collect = lambda record, kind: rows.append(record) if kind == "minibatch" else None  # noqa: E731
    oracle = replay(recording, Oracle(horizon), collect, fraction=fraction, progress=progress)
    live = list(recording.minibatches.values())
    warm_rows = int(recording.controller.get("warm_rows", 0))
    out = {
        "rank": rank,
        "capacity": capacity,
        "minibatches": len(stream),
        "remote_inputs": remote,
        "compulsory": figures(compulsory(stream)),
        "belady": figures(belady(stream, capacity)),
        "oracle": {**figures(Bound(remote, sum(m.hits for m in rows), sum(m.comm_rows for m in rows))),
                   "horizon": horizon, "decisions": oracle["decisions"]},
    }
    if live and fraction in (None, recording.meta.config.buffer.fraction):
        out["recorded"] = {**figures(Bound(remote, sum(m.hits for m in live),
                                           sum(m.comm_rows for m in live) + warm_rows)),
                           "controller": recording.meta.config.buffer.controller.name, "warm_rows": warm_rows}
    return out
