"""GraphSAINT's folder format (adj_full.npz, class_map.json, role.json, optional feats.npy): ogbn-arxiv and yours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rudder_agent.data.dataset import RawGraph
from rudder_agent.data.edges import undirected_edges
from rudder_agent.data.splits import masks_from_ids
from rudder_agent.errors import InputError, first_line

FILES = ("adj_full.npz", "class_map.json", "role.json")
FEATS = "feats.npy"
ROLES = ("tr", "va", "te")
"""role.json's train, val and test node-id lists."""


def read_graphsaint(name: str, folder: Path, feature_key: str, feat_dim: int, num_classes: int | None = None,
                    describe: str = "GraphSAINT format") -> RawGraph:
    """Adjacency, labels and the split from GraphSAINT's files; feats.npy when present, else structural features.

    ``num_classes`` None means one more than the largest label. Labels are single class ids; a class map of
    one-hot lists is read as class ids, one with several classes per node is refused.
    """
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise InputError(f"{folder}: GraphSAINT folder lacks {', '.join(missing)} "
                         f"(expects {', '.join(FILES)}, optional {FEATS})")
    adj = _adjacency(folder / "adj_full.npz")
    n = adj.shape[0]
    src, dst = undirected_edges(np.repeat(np.arange(n), np.diff(adj.indptr)), adj.indices, n)
    label = _labels(folder / "class_map.json", n)
    masks = masks_from_ids(n, *_roles(folder / "role.json", n))
    feat = _features(folder / FEATS, n) if (folder / FEATS).exists() else None
    kind = f"{FEATS}, {feat.shape[1]} features" if feat is not None else "structural features"
    return RawGraph(
        name=name,
        feature_key=feature_key,
        src=src,
        dst=dst,
        num_nodes=n,
        label=label,
        masks=masks,
        num_classes=num_classes if num_classes is not None else int(label.max(initial=-1)) + 1,
        source=f"{folder} ({describe}; {kind})",
        feat=feat,
        feat_dim=feat_dim,
    )


def _adjacency(path: Path) -> sp.csr_matrix:
    try:
        adj = sp.load_npz(path).tocsr()
    except Exception as exc:  # a corrupt or foreign file: zip, pickle and format errors alike
        raise InputError(f"{path} is not a matrix saved by scipy.sparse.save_npz ({first_line(exc)})") from exc
    if adj.shape[0] != adj.shape[1]:
        raise InputError(f"{path}: the adjacency must be square, got shape {adj.shape}")
    return adj


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({first_line(exc)})") from exc


def _node_ids(values: Any, n: int, what: str) -> np.ndarray:
    """Integer node ids in [0, n), or a RudderError naming ``what``."""
    try:
        ids = np.asarray([int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: node ids must be integers ({first_line(exc)})") from exc
    bad = ids[(ids < 0) | (ids >= n)]
    if len(bad):
        raise InputError(f"{what}: node id {int(bad[0])} is out of range; the adjacency has {n} nodes (0..{n - 1})")
    return ids


def _labels(path: Path, n: int) -> np.ndarray:
    """One class id per node, -1 where the class map has no entry."""
    class_map = _read_json(path)
    if not isinstance(class_map, dict):
        raise InputError(f"{path}: expected an object mapping node ids to classes")
    ids = _node_ids(class_map.keys(), n, str(path))
    values = list(class_map.values())
    try:
        classes = np.fromiter(values, dtype=np.int64, count=len(values))
    except (TypeError, ValueError):
        classes = _one_hot_classes(path, list(class_map.keys()), values)
    label = np.full(n, -1, dtype=np.int64)
    label[ids] = classes
    return label


def _one_hot_classes(path: Path, keys: list[str], values: list[Any]) -> np.ndarray:
    """Class ids from one-hot lists; several classes per node (multi-label) is refused."""
    for key, value in zip(keys, values):
        if not isinstance(value, list):
            raise InputError(f"{path}: node {key} maps to {value!r}; expected a class id (an integer)")
    lists = np.asarray(values)
    if lists.ndim != 2:
        raise InputError(f"{path}: the class lists have different lengths; expected one class id per node")
    counts = (lists != 0).sum(axis=1)
    bad = np.flatnonzero((counts != 1) | ~np.isin(lists, (0, 1)).all(axis=1))
    if len(bad):
        raise InputError(f"{path} is a multi-label class map (node {keys[bad[0]]} maps to {values[bad[0]]}); "
                         "Rudder trains single-label node classification: give one class id per node")
    return lists.argmax(axis=1).astype(np.int64)


def _roles(path: Path, n: int) -> list[np.ndarray]:
    """Train, val and test node ids."""
    role = _read_json(path)
    if not isinstance(role, dict) or not all(k in role for k in ROLES):
        present = ", ".join(sorted(role)) if isinstance(role, dict) else type(role).__name__
        raise InputError(f"{path}: expected the keys {', '.join(ROLES)} (train, val, test node ids); found {present}")
    return [_node_ids(role[k], n, f"{path} [{k}]") for k in ROLES]


def _features(path: Path, n: int) -> np.ndarray:
    try:
        feat = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path} is not a NumPy array file ({first_line(exc)})") from exc
    if feat.ndim != 2 or feat.shape[0] != n:
        raise InputError(f"{path}: features have shape {feat.shape}; expected ({n}, d), one row per node of "
                         "adj_full.npz")
    if not np.issubdtype(feat.dtype, np.number):
        raise InputError(f"{path}: features must be numbers, got dtype {feat.dtype}")
    return feat.astype(np.float32, copy=False)
