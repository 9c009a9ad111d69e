"""The metric stream's file format: one kind-tagged JSON object a line, appended and flushed line by line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import IO

from pydantic import BaseModel

STREAM = re.compile(r"metrics-rank(\d+)\.jsonl")


def stream_path(run_dir: Path, rank: int) -> Path:
    """Where rank ``rank`` writes its metric stream."""
    return run_dir / f"metrics-rank{rank}.jsonl"


def stream_ranks(run_dir: Path) -> list[int]:
    """Ranks with a metric stream in ``run_dir``, ascending."""
    return sorted(int(m.group(1)) for p in run_dir.glob("metrics-rank*.jsonl") if (m := STREAM.fullmatch(p.name)))


class MetricsWriter:
    """Append-only JSONL stream; each line is flushed so a killed run keeps complete lines."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: BaseModel | dict, kind: str) -> None:
        body = record.model_dump() if isinstance(record, BaseModel) else record
        line = {"kind": kind, **body}
        self._fh.write(json.dumps(line) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_jsonl(path: Path, kind: str | None = None) -> list[dict]:
    """Complete JSON lines of a metrics stream, optionally of one kind; a torn last line is ignored."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            if kind is None or row.get("kind") == kind:
                rows.append(row)
    return rows
