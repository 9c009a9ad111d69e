"""SNAP com-DBLP: structural features and top-5000-community pseudo-labels, as the paper does for SNAP graphs."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from rudder_agent.data.dataset import RawGraph
from rudder_agent.data.download import download
from rudder_agent.data.edges import undirected_edges
from rudder_agent.data.splits import fraction_split
from rudder_agent.errors import RudderError
from rudder_agent.paths import cache_dir, shared_data_dir

NAME = "com-dblp"
SNAP_URL = "https://snap.stanford.edu/data/bigdata/communities/"
EDGES = "com-dblp.ungraph.txt.gz"
COMMUNITIES = "com-dblp.top5000.cmty.txt.gz"


def load_com_dblp(name: str, feat_dim: int, seed: int) -> RawGraph:
    """Relabelled graph; label = first listed top-5000 community of a node; 80/10/10 split of labelled nodes."""
    edges_path = _locate(EDGES)
    edges = pd.read_csv(edges_path, sep="\t", comment="#", header=None, dtype=np.int64).to_numpy()
    node_ids, compact = np.unique(edges.ravel(), return_inverse=True)
    n = len(node_ids)
    src, dst = undirected_edges(compact[0::2], compact[1::2], n)
    label, num_classes = _community_labels(_locate(COMMUNITIES), node_ids)
    masks = fraction_split(np.flatnonzero(label >= 0), 0.8, 0.1, 0.1, seed, n)
    return RawGraph(
        name=name,
        feature_key=NAME,
        src=src,
        dst=dst,
        num_nodes=n,
        label=label,
        masks=masks,
        num_classes=num_classes,
        source=f"{edges_path.parent} (SNAP; structural features, top-5000 community labels)",
        feat_dim=feat_dim,
    )


def _community_labels(path: Path, node_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Each node's first community in file order, renumbered 0..C-1; -1 for nodes in none."""
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    sizes = np.array([len(line.split()) for line in lines], dtype=np.int64)
    members = np.fromstring(" ".join(lines), dtype=np.int64, sep=" ")
    community = np.repeat(np.arange(len(lines), dtype=np.int64), sizes)
    pos = np.clip(np.searchsorted(node_ids, members), 0, len(node_ids) - 1)
    known = node_ids[pos] == members
    first = np.full(len(node_ids), len(lines), dtype=np.int64)
    np.minimum.at(first, pos[known], community[known])
    labelled = first < len(lines)
    used, dense = np.unique(first[labelled], return_inverse=True)
    label = np.full(len(node_ids), -1, dtype=np.int64)
    label[labelled] = dense
    return label, len(used)


def _locate(filename: str) -> Path:
    """The shared offline copy, else a previous download, else a fresh download from SNAP."""
    shared = shared_data_dir() / NAME / filename
    if shared.exists():
        return shared
    local = cache_dir() / "downloads" / NAME / filename
    if local.exists():
        return local
    try:
        return download(SNAP_URL + filename, local)
    except RudderError as exc:
        raise RudderError(f"{NAME}: {filename} is not at {shared} and the SNAP download failed ({exc})") from exc
