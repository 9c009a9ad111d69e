"""Append-safe access traces: per-minibatch input node ids, compressed, one file per rank.

A frame is ``magic(4) | step(u32) | nbytes(u32) | zlib(delta-encoded sorted int64 ids)``.
Frames are flushed as written, so a run killed mid-way leaves every complete frame readable;
a torn last frame is ignored by the reader.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import IO, Iterator

import numpy as np

MAGIC = b"RTF1"
_HEADER = struct.Struct("<4sII")


def encode_ids(ids: np.ndarray) -> bytes:
    """Sorted ids as zlib-compressed int64 deltas (small integers compress well)."""
    ids = np.sort(np.asarray(ids, dtype=np.int64))
    return zlib.compress(np.diff(ids, prepend=np.int64(0)).tobytes(), level=1)


def decode_ids(blob: bytes) -> np.ndarray:
    """Inverse of :func:`encode_ids`."""
    return np.cumsum(np.frombuffer(zlib.decompress(blob), dtype=np.int64))


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
