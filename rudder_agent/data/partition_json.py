"""A DistDGL partition's JSON, as ``dgl.distributed.partition_graph`` writes it: checked, read and fingerprinted.

Only the JSON and the files it names are looked at; nothing is loaded. Used to name an own partition's
cache entry (data.own) and to adopt it (cluster.adopt).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rudder_agent.errors import InputError, first_line

PART_FILES = ("node_feats", "edge_feats", "part_graph")
"""The per-part files a partition JSON names."""


def read_config(path: Path) -> dict[str, Any]:
    """The partition JSON, refused unless it describes a homogeneous partition whose files all exist."""
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"--part-config {path} is not valid JSON ({first_line(exc)})") from exc
    required = ("graph_name", "num_parts", "node_map")
    missing = [k for k in required if not isinstance(config, dict) or k not in config]
    if missing:
        raise InputError(f"--part-config {path} is not a DistDGL partition config (no {', '.join(missing)}); "
                         "pass the JSON that dgl.distributed.partition_graph wrote")
    if not isinstance(config["node_map"], dict):
        raise InputError(f"--part-config {path}: node_map is not a mapping of node types to id ranges "
                         "(a partition from an older DGL?); re-partition it with this DGL")
    if len(config["node_map"]) != 1:
        raise InputError(f"--part-config {path} is heterogeneous (node types {', '.join(config['node_map'])}); "
                         "Rudder trains on homogeneous graphs")
    num_parts = config["num_parts"]
    if not isinstance(num_parts, int) or num_parts < 1 or len(node_ranges(config)) != num_parts:
        raise InputError(f"--part-config {path}: num_parts {num_parts!r} does not match its node_map")
    for part_id in range(num_parts):
        files = config.get(f"part-{part_id}")
        if not isinstance(files, dict) or "node_feats" not in files or "part_graph" not in files:
            raise InputError(f"--part-config {path}: part-{part_id} does not name its node_feats and part_graph")
        for key in PART_FILES:
            if key in files and not (path.parent / files[key]).is_file():
                raise InputError(f"--part-config {path}: part-{part_id} {key} file {path.parent / files[key]} "
                                 "does not exist")
    return config


def node_ranges(config: dict[str, Any]) -> list[list[int]]:
    """[start, end) global node ids of each part (the one node type's ranges)."""
    return next(iter(config["node_map"].values()))


def part_files(path: Path, config: dict[str, Any]) -> list[tuple[str, Path]]:
    """(``part-N/key``, file) of every part file the JSON names."""
    return [(f"part-{p}/{key}", path.parent / config[f"part-{p}"][key])
            for p in range(config["num_parts"]) for key in PART_FILES if key in config[f"part-{p}"]]


def fingerprint(path: Path, config: dict[str, Any]) -> str:
    """sha256 of the JSON's bytes and each part file's path, size and modification time.

    Hashing every byte of a large partition would cost as much as reading it; a rewritten part file
    changes its size or time.
    """
    digest = hashlib.sha256(path.read_bytes())
    for name, file in part_files(path, config):
        stat = file.stat()
        digest.update(f"\0{name}\0{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()
