"""Partition a named dataset or your own graph for DistDGL once, cache it atomically, record what trainers need."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dgl
import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field

from rudder_agent.config import TrainSettings
from rudder_agent.data.dataset import GraphDataset, RawGraph, attach_features
from rudder_agent.data.registry import dataset_key, load_raw
from rudder_agent.errors import RudderError
from rudder_agent.log import get_logger
from rudder_agent.paths import cache_dir
from rudder_agent.progress import progress as progress_display

log = get_logger(__name__)

METHODS = ("metis", "random")
META_FILE = "rudder_meta.json"
NEW_TO_ORIG = "new_to_orig.npy"
ORIG_TO_NEW = "orig_to_new.npy"
SEED = 0
DEFAULT_PARTS: int = TrainSettings.model_fields["parts"].default
"""Parts of an own graph when none are asked for."""
"""Seeds DGL's RNG before partitioning, so a fresh process repeats a random partition."""


class PartitionStats(BaseModel):
    """One partition: the shuffled node ids it owns, [node_start, node_end), and its halo."""

    model_config = ConfigDict(frozen=True)

    part_id: int
    node_start: int
    node_end: int
    inner_nodes: int
    halo_nodes: int
    """Non-inner nodes in this partition's graph: H_p of the buffer capacity ceil(f * H_p)."""
    inner_edges: int
    """Edges stored with this partition: DGL gives each edge to its destination's owner."""
    cut_edges: int
    """Inner edges whose source node is owned by another partition."""


class PartitionMeta(BaseModel):
    """What ``rudder_meta.json`` holds; paths are relative so a partition folder can be moved."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    graph_name: str
    parts: int
    method: str
    num_nodes: int
    num_edges: int
    feat_dim: int
    num_classes: int
    source: str
    created: datetime
    dgl_version: str
    config_file: str
    seconds: dict[str, float]
    """Wall time of the load, features and partition stages."""
    partitions: list[PartitionStats]

    @computed_field
    @property
    def edge_cut(self) -> int:
        """Directed edges whose endpoints are owned by different partitions."""
        return sum(p.cut_edges for p in self.partitions)


class PartitionInfo(PartitionMeta):
    """A complete partition on disk: its metadata plus where it lives."""

    root: Path

    @computed_field
    @property
    def config_path(self) -> Path:
        """The partition json that DistDGL servers and trainers are given."""
        return self.root / self.config_file

    @computed_field
    @property
    def new_to_orig_path(self) -> Path:
        """``.npy``: original node id of each shuffled (DistDGL) node id."""
        return self.root / NEW_TO_ORIG

    @computed_field
    @property
    def orig_to_new_path(self) -> Path:
        """``.npy``: shuffled (DistDGL) node id of each original node id."""
        return self.root / ORIG_TO_NEW


def partition_dataset(
    name: str,
    parts: int,
    method: str = "metis",
    *,
    out_root: Path | str | None = None,
    force: bool = False,
    dataset_opts: dict[str, Any] | None = None,
    progress: bool = True,
) -> PartitionInfo:
    """Partition ``name`` into ``parts`` with DGL, reusing a complete cached partition unless ``force``."""
    opts = dataset_opts or {}
    check_options(parts, method)
    key = dataset_key(name, **opts)
    return _partition(key, lambda: load_raw(name, **opts), parts, method, out_root, force, progress)


def check_options(parts: int, method: str) -> None:
    """Refuse impossible partitioning options before anything is read."""
    if parts < 1:
        raise RudderError(f"parts must be >= 1, got {parts}")
    if method not in METHODS:
        raise RudderError(f"unknown partition method {method!r}; use one of {', '.join(METHODS)}")


def partitions_root(out_root: Path | str | None) -> Path:
    """Where cached partitions live: ``out_root``, or ``partitions/`` in the cache."""
    return Path(out_root).resolve() if out_root else cache_dir() / "partitions"


def _partition(key: str, load: Callable[[], RawGraph], parts: int, method: str, out_root: Path | str | None,
               force: bool, progress: bool) -> PartitionInfo:
    """Load (and check) a graph, attach its features and partition it into the cache under ``key``."""
    dest = partitions_root(out_root) / f"{key}-{parts}p-{method}"
    if not force and (info := _cached(dest)) is not None:
        return info
    seconds: dict[str, float] = {}
    with progress_display(total=4, desc=key, unit="stage", enabled=progress, leave=True) as bar:
        with _stage(bar, "load", seconds):
            raw = load()
        with _stage(bar, "features", seconds):
            dataset = attach_features(raw)
            del raw
        with _staging(dest) as tmp:
            graph_name = re.sub(r"[^A-Za-z0-9_]", "_", f"{key}_{parts}p_{method}")
            with _stage(bar, "partition", seconds):
                _run_partition(dataset, graph_name, parts, method, tmp)
            with _stage(bar, "write meta", seconds):
                meta = _describe(dataset, graph_name, parts, method, tmp, seconds)
                (tmp / META_FILE).write_text(meta.model_dump_json(indent=2))
            _publish(tmp, dest)
    log.info("partition.done", root=str(dest), halo=halo_counts(meta), edge_cut=meta.edge_cut, **seconds)
    return load_partition_info(dest)


def _cached(dest: Path) -> PartitionInfo | None:
    """The complete partition at ``dest``, or None when there is none (or only a stale one) to reuse."""
    if not (dest / META_FILE).exists():
        return None
    try:
        info = load_partition_info(dest)
    except RudderError as exc:
        log.warning("partition.stale", root=str(dest), reason=str(exc))
        return None
    log.info("partition.cached", root=str(dest))
    return info


def load_partition_info(root: Path | str) -> PartitionInfo:
    """Read back a partition written by :func:`partition_dataset`."""
    root = Path(root)
    meta_path = root / META_FILE
    if not meta_path.exists():
        raise RudderError(
            f"{root} is not a rudder partition ({META_FILE} is missing); create it with partition_dataset"
        )
    try:
        return PartitionInfo(root=root, **json.loads(meta_path.read_text()))
    except (ValueError, TypeError) as exc:
        raise RudderError(f"{meta_path} is unreadable or from another version; rebuild it with force=True") from exc


def halo_counts(info: PartitionMeta) -> list[int]:
    """H_p of every partition, in partition order (buffer capacity is ceil(f * H_p))."""
    return [p.halo_nodes for p in info.partitions]


@contextlib.contextmanager
def _stage(bar: Any, name: str, seconds: dict[str, float]) -> Iterator[None]:
    """Show ``name`` on the progress bar, time it, and advance the bar when it completes."""
    bar.set_postfix_str(name)
    start = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - start, 3)
    bar.update()


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """A temporary sibling of ``dest``, removed with everything in it if the block fails or is interrupted."""
    parent_existed = dest.parent.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    tmp.chmod(0o755)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not parent_existed:
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
        raise


def _run_partition(dataset: GraphDataset, graph_name: str, parts: int, method: str, out: Path) -> None:
    """DGL's partition_graph (its chatter goes to the debug log), plus the node-id mappings as .npy."""
    dgl.random.seed(SEED)
    with contextlib.redirect_stdout(io.StringIO()) as chatter:
        new_to_orig, _ = dgl.distributed.partition_graph(
            dataset.graph,
            graph_name,
            parts,
            str(out),
            part_method=method,
            balance_ntypes=dataset.graph.ndata["train_mask"],
            balance_edges=True,
            return_mapping=True,
        )
    for line in chatter.getvalue().splitlines():
        log.debug("dgl.partition", message=line)
    new_to_orig = new_to_orig.numpy().astype(np.int64)
    orig_to_new = np.empty_like(new_to_orig)
    orig_to_new[new_to_orig] = np.arange(len(new_to_orig), dtype=np.int64)
    np.save(out / NEW_TO_ORIG, new_to_orig)
    np.save(out / ORIG_TO_NEW, orig_to_new)


def _describe(
    dataset: GraphDataset, graph_name: str, parts: int, method: str, out: Path, seconds: dict[str, float]
) -> PartitionMeta:
    """Metadata of a freshly written partition, with per-partition inner/halo counts read from its graphs."""
    config_file = f"{graph_name}.json"
    stats = partition_stats(out / config_file)
    return PartitionMeta(
        dataset=dataset.name,
        graph_name=graph_name,
        parts=parts,
        method=method,
        num_nodes=dataset.num_nodes,
        num_edges=dataset.num_edges,
        feat_dim=dataset.feat_dim,
        num_classes=dataset.num_classes,
        source=dataset.source,
        created=datetime.now(UTC),
        dgl_version=dgl.__version__,
        config_file=config_file,
        seconds=seconds,
        partitions=stats,
    )


def partition_stats(config_path: Path) -> list[PartitionStats]:
    """Per-partition node ranges and inner/halo/cut counts, read from the partition graphs a DGL JSON names."""
    config = json.loads(config_path.read_text())
    ranges = next(iter(config["node_map"].values()))
    stats = []
    for part_id in range(config["num_parts"]):
        graph_path = config_path.parent / config[f"part-{part_id}"]["part_graph"]  # an absolute path stays as is
        part_graph = dgl.load_graphs(str(graph_path))[0][0]
        inner_node = part_graph.ndata["inner_node"].bool()
        inner_edge = part_graph.edata["inner_edge"].bool()
        inner = int(inner_node.sum())
        stats.append(
            PartitionStats(
                part_id=part_id,
                node_start=ranges[part_id][0],
                node_end=ranges[part_id][1],
                inner_nodes=inner,
                halo_nodes=part_graph.num_nodes() - inner,
                inner_edges=int(inner_edge.sum()),
                cut_edges=int((inner_edge & ~inner_node[part_graph.edges()[0]]).sum()),
            )
        )
    return stats


def _publish(tmp: Path, dest: Path) -> None:
    """Rename the finished folder into place, replacing an older copy of ``dest`` if there is one."""
    try:
        os.rename(tmp, dest)
    except OSError:
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
