"""ogbn-arxiv: the offline GraphSAINT-format copy, or OGB's own loader for users who are online."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from rudder_agent.data.dataset import RawGraph
from rudder_agent.data.edges import undirected_edges
from rudder_agent.data.graphsaint import FILES, read_graphsaint
from rudder_agent.data.splits import masks_from_ids
from rudder_agent.errors import RudderError
from rudder_agent.log import get_logger
from rudder_agent.paths import cache_dir, shared_data_dir

log = get_logger(__name__)

NAME = "ogbn-arxiv"
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
    return read_graphsaint(name, folder, NAME, feat_dim, NUM_CLASSES)


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
