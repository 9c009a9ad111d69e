"""Train on a DistDGL partition someone already made: check it, and describe it to Rudder without copying it.

``dgl.distributed.partition_graph`` writes a JSON that names each part's files relative to itself.
Adopting a partition writes, under the partition cache, a copy of that JSON whose paths point at the
original files (absolute) beside a ``rudder_meta.json``: servers and trainers then read the partition
where it lies, and the trainer finds its number of classes as for any partition Rudder made.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dgl
import numpy as np

from rudder_agent.cluster.partition import (
    META_FILE,
    PartitionInfo,
    PartitionMeta,
    _publish,
    _staging,
    load_partition_info,
    partition_stats,
    partitions_root,
)
from rudder_agent.config import MASK_KEYS, STANDARD_NODE_DATA, GraphSource, NodeDataNames
from rudder_agent.data.own import PREFIX, bool_mask, check_splits, label_vector, run_name
from rudder_agent.data.partition_json import fingerprint, node_ranges, read_config
from rudder_agent.errors import InputError, RudderError, first_line
from rudder_agent.log import get_logger

log = get_logger(__name__)



def adopt_partition(source: GraphSource, parts: int | None, *, out_root: Path | str | None = None,
                    force: bool = False) -> PartitionInfo:
    """A cached description of the partition at ``source.part_config`` (checked once per fingerprint).

    ``parts`` None takes the partition's number of parts; any other number must equal it.
    """
    path = source.part_config
    config = read_config(path)
    num_parts = config["num_parts"]
    if parts is not None and parts != num_parts:
        raise InputError(f"--part-config {path} has {num_parts} parts but --parts is {parts}; "
                         f"omit --parts or pass --parts {num_parts} (one machine per part)")
    digest = source.digest or fingerprint(path, config)
    graph_name = config["graph_name"]
    names = source.node_data
    named = "" if names == STANDARD_NODE_DATA else \
        "-" + hashlib.sha256(json.dumps(names).encode()).hexdigest()[:8]  # other names, checked again
    dest = partitions_root(out_root) / f"{PREFIX}-{_slug(path.stem)}-{digest[:12]}{named}-{num_parts}p-adopted"
    if (dest / META_FILE).exists() and not force:
        try:
            info = load_partition_info(dest)
        except RudderError as exc:
            log.warning("partition.stale", root=str(dest), reason=str(exc))
        else:
            log.info("partition.adopted_cached", root=str(dest), source=str(path))
            return info
    num_classes, feat_dim = _check_node_data(path, config, names)
    with _staging(dest) as tmp:
        (tmp / path.name).write_text(json.dumps(_absolute_paths(path, config), indent=2))
        meta = PartitionMeta(
            dataset=run_name(source),
            graph_name=graph_name,
            parts=num_parts,
            method=str(config.get("part_method", "unknown")),
            num_nodes=int(config.get("num_nodes") or sum(e - s for s, e in node_ranges(config))),
            num_edges=int(config.get("num_edges") or 0),
            feat_dim=feat_dim,
            num_classes=num_classes,
            source=f"{path} (DistDGL partition, used as is; fingerprint {digest[:12]})",
            created=datetime.now(UTC),
            dgl_version=dgl.__version__,
            config_file=path.name,
            seconds={},
            partitions=_stats(tmp / path.name),
        )
        (tmp / META_FILE).write_text(meta.model_dump_json(indent=2))
        _publish(tmp, dest)
    log.info("partition.adopted", root=str(dest), source=str(path), parts=num_parts)
    return load_partition_info(dest)


def _stats(config_path: Path) -> list:
    """Inner/halo counts from the part graphs; a part graph DGL cannot read is the user's input problem."""
    try:
        return partition_stats(config_path)
    except Exception as exc:  # DGL's own errors for foreign or truncated graph files
        raise InputError(f"--part-config: cannot read its part graphs ({first_line(exc)})") from exc


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_") or "graph"


def _absolute_paths(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The JSON with every part file named by its absolute path (DGL joins a relative one to the JSON's folder)."""
    out = dict(config)
    for part_id in range(config["num_parts"]):
        files = dict(config[f"part-{part_id}"])
        for key, value in files.items():
            if isinstance(value, str):
                files[key] = str((path.parent / value).resolve())
        out[f"part-{part_id}"] = files
    return out


def _check_node_data(path: Path, config: dict[str, Any], names: NodeDataNames) -> tuple[int, int]:
    """(number of classes, feature width) of a partition whose node data the trainer can use, else a RudderError."""
    from dgl.data.utils import load_tensors

    ntype = next(iter(config["node_map"]))
    wanted = (names.feat, names.label, *names.masks)
    labels, masks, width = [], {k: [] for k in names.masks}, None
    for part_id, (start, end) in enumerate(node_ranges(config)):
        feats_path = path.parent / config[f"part-{part_id}"]["node_feats"]
        what = f"--part-config {path}: part {part_id}"
        try:
            tensors = load_tensors(str(feats_path))
        except Exception as exc:  # DGL's loader raises its own errors for foreign files
            raise InputError(f"{what}: cannot read node data {feats_path} ({first_line(exc)})") from exc
        data = {k.split("/", 1)[1] if k.startswith(f"{ntype}/") else k: v.numpy() for k, v in tensors.items()}
        missing = [k for k in wanted if k not in data]
        if missing:
            raise InputError(f"{what}: node data {', '.join(repr(k) for k in missing)} not found; present: "
                             f"{', '.join(sorted(data)) or 'none'}. Name the features, labels and masks with "
                             f"--feat-key, --label-key and --mask-keys (now {', '.join(wanted)})")
        n = end - start
        feat = data[names.feat]
        if feat.ndim != 2 or feat.shape[0] != n:
            raise InputError(f"{what}: {names.feat!r} has shape {tuple(feat.shape)}; expected ({n}, d): one row per "
                             "node the part owns")
        if feat.dtype != np.float32:
            raise InputError(f"{what}: {names.feat!r} is {feat.dtype}; the trainer needs float32 features")
        if width is not None and feat.shape[1] != width:
            raise InputError(f"{what}: {names.feat!r} has {feat.shape[1]} columns, part 0 has {width}")
        width = feat.shape[1]
        del feat, tensors
        labels.append(label_vector(data[names.label], n, f"{what}: {names.label!r}"))
        for key in names.masks:
            masks[key].append(bool_mask(data[key], n, f"{what}: mask {key!r}"))
    num_classes = check_splits(np.concatenate(labels), {std: np.concatenate(masks[k]) for std, k in
                                                        zip(MASK_KEYS, names.masks)},
                               f"--part-config {path}", config["graph_name"])
    return num_classes, int(width)
