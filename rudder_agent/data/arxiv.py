"""ogbn-arxiv: the offline GraphSAINT-format copy, or OGB's own loader for users who are online."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rudder_agent.data.dataset import RawGraph
from rudder_agent.data.edges import undirected_edges
from rudder_agent.data.splits import masks_from_ids
from rudder_agent.errors import RudderError
from rudder_agent.log import get_logger
from rudder_agent.paths import cache_dir, shared_data_dir

log = get_logger(__name__)

NAME = "ogbn-arxiv"
FILES = ("adj_full.npz", "class_map.json", "role.json")
NUM_CLASSES = 40


def load_arxiv(name: str, feat_dim: int) -> RawGraph:
    """Shared files with structural features when present, else OGB (real features), else a clear error."""
    folder = shared_data_dir() / NAME
    if all((folder / f).exists() for f in FILES):
        return _from_graphsaint(name, folder, feat_dim)
    if importlib.util.find_spec("ogb") is not None:
        return _from_ogb(name)
    raise RudderError(
        f"{NAME}: expected {', '.join(str(folder / f) for f in FILES)} (GraphSAINT format), "
        "or the `ogb` package (pip install ogb) to download it; set RUDDER_DATA to the folder holding ogbn-arxiv/"
    )


def _from_graphsaint(name: str, folder: Path, feat_dim: int) -> RawGraph:
    """Adjacency, labels and the official time split from GraphSAINT's files; features built later."""
    adj = sp.load_npz(folder / "adj_full.npz").tocsr()
    n = adj.shape[0]
    src, dst = undirected_edges(np.repeat(np.arange(n), np.diff(adj.indptr)), adj.indices, n)
    class_map = json.loads((folder / "class_map.json").read_text())
    label = np.full(n, -1, dtype=np.int64)
    label[np.fromiter(class_map.keys(), dtype=np.int64, count=len(class_map))] = np.fromiter(
        class_map.values(), dtype=np.int64, count=len(class_map)
    )
    role = json.loads((folder / "role.json").read_text())
    masks = masks_from_ids(n, *(np.asarray(role[k], dtype=np.int64) for k in ("tr", "va", "te")))
    return RawGraph(
        name=name,
        feature_key=NAME,
        src=src,
        dst=dst,
        num_nodes=n,
        label=label,
        masks=masks,
        num_classes=NUM_CLASSES,
        source=f"{folder} (GraphSAINT format; structural features)",
        feat_dim=feat_dim,
    )


def _from_ogb(name: str) -> RawGraph:
    """OGB's loader (downloads into the cache) with the real 128-d features."""
    from ogb.nodeproppred import DglNodePropPredDataset

    root = cache_dir() / "ogb"
    log.info("arxiv.ogb_download", root=str(root))
    try:
        dataset = DglNodePropPredDataset(name=NAME, root=str(root))
    except Exception as exc:  # network or archive failures all mean the same to the user
        raise RudderError(f"{NAME}: OGB could not provide the dataset under {root}: {exc}") from exc
    graph, label = dataset[0]
    split = dataset.get_idx_split()
    n = graph.num_nodes()
    src, dst = (t.numpy() for t in graph.edges())
    src, dst = undirected_edges(src, dst, n)
    masks = masks_from_ids(n, *(split[k].numpy() for k in ("train", "valid", "test")))
    return RawGraph(
        name=name,
        feature_key=NAME,
        src=src,
        dst=dst,
        num_nodes=n,
        label=label.numpy().ravel().astype(np.int64),
        masks=masks,
        num_classes=NUM_CLASSES,
        source=f"ogb:{NAME} ({root}; real features)",
        feat=graph.ndata["feat"].numpy(),
    )
