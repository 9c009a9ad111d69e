"""Your own graph: a dgl.save_graphs file or a GraphSAINT folder, checked, named and keyed by its content."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from rudder_agent.config import MASK_KEYS, GraphSource
from rudder_agent.data.dataset import RawGraph
from rudder_agent.data.edges import undirected_edges
from rudder_agent.data.graphsaint import FEATS, FILES, read_graphsaint
from rudder_agent.data.partition_json import fingerprint, read_config
from rudder_agent.errors import InputError, first_line
from rudder_agent.log import get_logger

log = get_logger(__name__)

PREFIX = "graph"
"""Runs on your own graph are named ``graph:<name>``; their caches ``graph-<name>-<hash>``."""
CHUNK = 1 << 20


def resolve_source(source: GraphSource) -> GraphSource:
    """``source`` with an absolute path and its content digest, or an InputError if it cannot be used."""
    path = source.path.expanduser()
    if not path.exists():
        option = "--part-config" if source.part_config is not None else "--graph"
        raise InputError(f"{option} {source.path}: no such file or directory")
    path = path.resolve()
    if source.part_config is not None:
        if not path.is_file():
            raise InputError(f"--part-config {source.part_config}: expected the partition's JSON file, got a folder")
        resolved = source.model_copy(update={"part_config": path})
    else:
        if path.is_file() and path.suffix == ".json":
            raise InputError(f"--graph {source.graph} is a JSON file; pass a DistDGL partition's JSON with "
                             "--part-config, a dgl.save_graphs file or a GraphSAINT folder with --graph")
        resolved = source.model_copy(update={"graph": path})
    _refuse_unused_options(resolved)
    if resolved.format == "partition":
        return resolved.model_copy(update={"digest": fingerprint(path, read_config(path))})
    return resolved.model_copy(update={"digest": content_digest(graph_files(resolved))})


def _refuse_unused_options(source: GraphSource) -> None:
    """Options that would not change what is read are refused: silently ignoring them trains on something else."""
    defaults = GraphSource(graph=Path("."))
    changed = [f"--{name.replace('_', '-')}" for name in ("feat_key", "label_key", "mask_keys")
               if getattr(source, name) != getattr(defaults, name)]
    if changed and source.format == "graphsaint":
        raise InputError(f"{', '.join(changed)} only apply to a DGL graph file (--graph FILE) or a partition "
                         f"(--part-config); a GraphSAINT folder has fixed file names; node data is feat, label, "
                         f"{', '.join(MASK_KEYS)}")
    if source.feat_dim != defaults.feat_dim and (source.format != "graphsaint" or (source.graph / FEATS).exists()):
        raise InputError(f"--feat-dim only applies to a GraphSAINT folder without {FEATS} (structural features); "
                         f"{source.path} has its own features")


def graph_files(source: GraphSource) -> list[Path]:
    """The files whose bytes make up the graph (a GraphSAINT folder: the four it reads, when present)."""
    if source.format == "graphsaint":
        missing = [f for f in FILES if not (source.graph / f).is_file()]
        if missing:
            raise InputError(f"--graph {source.graph}: GraphSAINT folder lacks {', '.join(missing)} "
                             f"(expects {', '.join(FILES)}, optional {FEATS})")
        return [source.graph / f for f in (*FILES, FEATS) if (source.graph / f).is_file()]
    return [source.graph]


def content_digest(files: list[Path]) -> str:
    """sha256 over each file's name and bytes, in the order given."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def run_name(source: GraphSource) -> str:
    """The run's dataset name: ``graph:<file stem or folder name>`` (a partition: its JSON's stem)."""
    return f"{PREFIX}:{source.path.name if source.format == 'graphsaint' else source.path.stem}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_") or "graph"


def feature_key(source: GraphSource) -> str:
    """Cache stem of structural features: the graph's content only (their width names the cache file)."""
    return f"{PREFIX}-{_slug(run_name(source).split(':', 1)[1])}-{source.digest[:12]}"


def graph_key(source: GraphSource) -> str:
    """Partition cache key: the name, and a hash of the content and the options that change what is read."""
    if not source.digest:
        raise ValueError("graph_key needs a resolved source (resolve_source)")
    if source.format == "dgl":
        options = {"feat_key": source.feat_key, "label_key": source.label_key, "mask_keys": source.mask_keys}
    elif (source.graph / FEATS).is_file():
        options = {}
    else:
        options = {"feat_dim": source.feat_dim}
    blob = json.dumps({"digest": source.digest, **options}, sort_keys=True).encode()
    return f"{PREFIX}-{_slug(run_name(source).split(':', 1)[1])}-{hashlib.sha256(blob).hexdigest()[:12]}"


def load_own_raw(source: GraphSource) -> RawGraph:
    """Read and check a resolved DGL file or GraphSAINT folder; every problem is an InputError before any work."""
    name = run_name(source)
    if source.format == "graphsaint":
        raw = read_graphsaint(name, source.graph, feature_key(source), source.feat_dim,
                              describe=f"GraphSAINT folder, sha256 {source.digest[:12]}")
    elif source.format == "dgl":
        raw = _read_dgl_file(name, source)
    else:
        raise ValueError(f"{source.format} graphs are not loaded; they are adopted as partitioned")
    raw.num_classes = check_graph(raw, f"--graph {source.graph}")
    return raw


def _read_dgl_file(name: str, source: GraphSource) -> RawGraph:
    """The first graph of a dgl.save_graphs file, its node data under the configured names."""
    import dgl

    path = source.graph
    try:
        graphs, _ = dgl.load_graphs(str(path), [0])
    except Exception as exc:  # DGL raises its own errors (and others) for foreign or corrupt files
        raise InputError(f"--graph {path} is not a file written by dgl.save_graphs ({first_line(exc)})") from exc
    g = graphs[0]
    if len(g.ntypes) != 1 or len(g.canonical_etypes) > 1:
        raise InputError(f"--graph {path}: the first graph is heterogeneous (node types {', '.join(g.ntypes)}; "
                         f"edge types {', '.join(g.etypes)}); Rudder trains on homogeneous graphs")
    n = g.num_nodes()
    keys = [source.feat_key, source.label_key, *source.mask_keys]
    missing = [k for k in keys if k not in g.ndata]
    if missing:
        present = ", ".join(sorted(g.ndata.keys())) or "none"
        raise InputError(f"--graph {path}: node data {', '.join(repr(k) for k in missing)} not found; "
                         f"present: {present} (name them with --feat-key, --label-key, --mask-keys)")
    feat = feature_matrix(g.ndata[source.feat_key].numpy(), n, f"--graph {path}: {source.feat_key!r}")
    label = label_vector(g.ndata[source.label_key].numpy(), n, f"--graph {path}: {source.label_key!r}")
    masks = {std: bool_mask(g.ndata[key].numpy(), n, f"--graph {path}: mask {key!r}")
             for std, key in zip(MASK_KEYS, source.mask_keys)}
    src, dst = (t.numpy() for t in g.edges())
    src, dst = undirected_edges(src, dst, n)
    return RawGraph(
        name=name,
        feature_key=feature_key(source),
        src=src,
        dst=dst,
        num_nodes=n,
        label=label,
        masks=masks,
        num_classes=0,  # set from the split's labels once they are checked
        source=f"{path} (DGL graph file, sha256 {source.digest[:12]})",
        feat=feat,
    )


def feature_matrix(feat: np.ndarray, n: int, what: str) -> np.ndarray:
    """One finite float32 row per node, or an InputError naming ``what``."""
    if feat.ndim != 2 or feat.shape[0] != n:
        raise InputError(f"{what} has shape {tuple(feat.shape)}; expected ({n}, d): one feature row per node")
    if not (np.issubdtype(feat.dtype, np.number) or feat.dtype == bool):
        raise InputError(f"{what}: features must be numbers, got dtype {feat.dtype}")
    feat = feat.astype(np.float32, copy=False)
    if not np.isfinite(feat).all():
        raise InputError(f"{what} holds NaN or infinite values")
    return feat


def label_vector(label: np.ndarray, n: int, what: str) -> np.ndarray:
    """One integer class id per node (an (n, 1) column is accepted), or an InputError naming ``what``."""
    if label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    if label.ndim != 1 or label.shape[0] != n:
        extra = " (several labels per node: multi-label is not supported, give one class id per node)" \
            if label.ndim == 2 and label.shape[0] == n else ""
        raise InputError(f"{what} has shape {tuple(label.shape)}; expected ({n},): one class id per node{extra}")
    if not np.issubdtype(label.dtype, np.integer):
        raise InputError(f"{what}: labels must be integer class ids, got dtype {label.dtype}")
    return label.astype(np.int64)


def bool_mask(mask: np.ndarray, n: int, what: str) -> np.ndarray:
    """One flag per node, bool or 0/1 integers (DGL stores partitioned masks as uint8), or an InputError."""
    if mask.ndim != 1 or mask.shape[0] != n:
        raise InputError(f"{what} has shape {tuple(mask.shape)}; expected ({n},): one flag per node")
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.integer) and np.isin(mask, (0, 1)).all():
        return mask.astype(bool)
    raise InputError(f"{what} is not boolean (dtype {mask.dtype}"
                     f"{', values ' + ', '.join(map(str, np.unique(mask)[:5])) if mask.size else ''}); "
                     "masks must be True/False (or 0/1) per node")


def check_graph(raw: RawGraph, what: str) -> int:
    """The number of classes of a loaded graph (see :func:`check_splits`), or an InputError."""
    return check_splits(raw.label, raw.masks, what, raw.name)


def check_splits(label: np.ndarray, masks: dict[str, np.ndarray], what: str, name: str = "") -> int:
    """The number of classes (largest label of a split node, plus one), or an InputError for a graph the trainer
    cannot train on: an empty training split, split nodes without a class id or with one out of range."""
    if not masks["train_mask"].any():
        raise InputError(f"{what}: the training split is empty (no node in the train mask)")
    in_split = np.logical_or.reduce([masks[k] for k in MASK_KEYS])
    split_labels = label[in_split]
    if (split_labels < 0).any():
        node = int(np.flatnonzero(in_split & (label < 0))[0])
        raise InputError(f"{what}: node {node} is in a train/val/test split but its label is {int(label[node])}"
                         "; labels of split nodes must be class ids >= 0")
    top = int(split_labels.max())
    if top >= len(label):
        node = int(np.flatnonzero(in_split & (label == top))[0])
        raise InputError(f"{what}: node {node} has label {top}, out of range: class ids must be 0..C-1 with C "
                         f"at most the number of nodes ({len(label)})")
    for split, mask in masks.items():
        if not mask.any():
            log.warning("own_graph.empty_split", graph=name, split=split)
    overlap = int((masks["train_mask"] & (masks["val_mask"] | masks["test_mask"])).sum())
    if overlap:
        log.warning("own_graph.split_overlap", graph=name, train_and_eval_nodes=overlap)
    return top + 1
