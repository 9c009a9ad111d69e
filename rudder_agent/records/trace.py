"""Append-safe access traces: per-minibatch input node ids, compressed, one file per rank.

A recorded run directory holds, per rank r: ``trace-rank{r}.json`` (:class:`TraceMeta`:
partition bounds, capacity, seeds and the whole run config), ``trace-rank{r}.rtf`` (the
access stream) and ``metrics-rank{r}.jsonl`` (the metric stream, including the decisions
that were applied). Together they let a replay feed the same stream through the same
buffer code with no DistDGL process.

A frame is ``magic(4) | step(u32) | nbytes(u32) | zlib(delta-encoded sorted int64 ids)``.
Frames are flushed as written, so a run killed mid-way leaves every complete frame readable;
a torn last frame is ignored by the reader.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from pydantic import BaseModel

from rudder_agent.config import TrainConfig
from rudder_agent.settings.upgrade import upgrade
from rudder_agent.decision import StaticFacts
from rudder_agent.errors import RudderError

MAGIC = b"RTF1"
_HEADER = struct.Struct("<4sII")


def encode_ids(ids: np.ndarray) -> bytes:
    """Sorted ids as zlib-compressed int64 deltas (small integers compress well)."""
    ids = np.sort(np.asarray(ids, dtype=np.int64))
    return zlib.compress(np.diff(ids, prepend=np.int64(0)).tobytes(), level=1)


def decode_ids(blob: bytes) -> np.ndarray:
    """Inverse of :func:`encode_ids`."""
    return np.cumsum(np.frombuffer(zlib.decompress(blob), dtype=np.int64))


class TraceMeta(BaseModel):
    """Everything a replay needs besides the streams themselves."""

    rank: int
    partition: int
    part_bounds: list[int]
    capacity: int
    halo_nodes: int
    feature_dim: int
    row_bytes: int
    minibatches_per_epoch: int
    facts: StaticFacts
    config: TrainConfig
    warm_ids: list[int] = []


def write_trace_meta(path: Path, meta: TraceMeta) -> None:
    """Written once when recording starts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(meta.model_dump_json(indent=2))


def read_trace_meta(path: Path) -> TraceMeta:
    """Inverse of :func:`write_trace_meta`."""
    data = json.loads(path.read_text())
    return TraceMeta.model_validate({**data, "config": upgrade(data["config"])})


class TraceWriter:
    """Writes one rank's access stream, frame by frame."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] = path.open("ab")

    def write(self, step: int, input_nodes: np.ndarray) -> None:
        blob = encode_ids(input_nodes)
        self._fh.write(_HEADER.pack(MAGIC, step, len(blob)) + blob)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_trace(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(step, sorted input ids)`` for every complete frame."""
    data = path.read_bytes()
    pos = 0
    while pos + _HEADER.size <= len(data):
        magic, step, nbytes = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + nbytes
        if magic != MAGIC or end > len(data):
            return
        try:
            ids = decode_ids(data[pos + _HEADER.size : end])
        except zlib.error:
            return
        yield step, ids
        pos = end


def recorded_ranks(run_dir: Path) -> list[int]:
    """Ranks with a trace in ``run_dir``."""
    ranks = sorted(int(m.group(1)) for p in run_dir.glob("trace-rank*.json")
                   if (m := re.fullmatch(r"trace-rank(\d+)\.json", p.name)))
    if not ranks:
        raise RudderError(f"{run_dir} holds no trace-rank*.json: record the run with `rudder train --trace`")
    return ranks
