"""Partitions of your own graph: a file or folder partitioned and cached by its content, or a partition adopted.

Above ``partition`` (the partitioning and its cache) and ``adopt`` (an existing DistDGL partition).
"""

from __future__ import annotations

from pathlib import Path

from rudder_agent.cluster.adopt import adopt_partition
from rudder_agent.cluster.partition import (
    DEFAULT_PARTS, PartitionInfo, _cached, _partition, check_options, partitions_root,
)
from rudder_agent.config import GraphSource
from rudder_agent.data.own import graph_key, load_own_raw, resolve_source


def partition_own_graph(
    source: GraphSource,
    parts: int | None,
    method: str = "metis",
    *,
    out_root: Path | str | None = None,
    force: bool = False,
    progress: bool = True,
) -> PartitionInfo:
    """Your own graph: a DGL file or GraphSAINT folder partitioned and cached by its content, or an existing
    DistDGL partition adopted as is. ``parts`` None means 2, or the partition's own number of parts."""
    check_options(parts if parts is not None else 1, method)
    if not source.digest:
        source = resolve_source(source)
    if source.format == "partition":
        return adopt_partition(source, parts, out_root=out_root, force=force)
    key, parts = graph_key(source), parts or DEFAULT_PARTS
    if not force and (info := _cached(partitions_root(out_root) / f"{key}-{parts}p-{method}")) is not None:
        return info
    loaded = [load_own_raw(source)]  # every problem with the input is reported here: before a progress bar or a write
    return _partition(key, loaded.pop, parts, method, out_root, force, progress)
