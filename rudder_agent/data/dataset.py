"""The dataset record every loader produces, and the step that turns raw arrays into a DGLGraph."""

from __future__ import annotations

from dataclasses import dataclass

import dgl
import numpy as np
import torch

from rudder_agent.data.edges import adjacency
from rudder_agent.data.features import structural_features
from rudder_agent.data.splits import Masks


@dataclass
class GraphDataset:
    """A node-classification graph: ndata ``feat``, ``label`` (-1 = unlabelled) and the three masks."""

    name: str
    graph: dgl.DGLGraph
    num_classes: int
    source: str

    @property
    def num_nodes(self) -> int:
        """Nodes in the graph."""
        return self.graph.num_nodes()

    @property
    def num_edges(self) -> int:
        """Directed edges (each undirected edge counts twice)."""
        return self.graph.num_edges()

    @property
    def feat_dim(self) -> int:
        """Width of a feature row."""
        return int(self.graph.ndata["feat"].shape[1])


@dataclass
class RawGraph:
    """A dataset before features are attached, so callers can time and report the slow feature step."""

    name: str
    feature_key: str
    """Cache stem of structural features: depends on the graph only, not on split options."""
    src: np.ndarray
    dst: np.ndarray
    num_nodes: int
    label: np.ndarray
    masks: Masks
    num_classes: int
    source: str
    feat: np.ndarray | None = None
    """Real node features; None means structural features of width ``feat_dim`` are built."""
    feat_dim: int = 128


def attach_features(raw: RawGraph) -> GraphDataset:
    """Build the DGLGraph, computing (or reading cached) structural features where none were given."""
    if raw.feat is None:
        feat = structural_features(raw.feature_key, adjacency(raw.src, raw.dst, raw.num_nodes), raw.feat_dim)
    else:
        feat = raw.feat
    graph = dgl.graph((torch.from_numpy(raw.src), torch.from_numpy(raw.dst)), num_nodes=raw.num_nodes)
    graph.ndata["feat"] = torch.from_numpy(np.ascontiguousarray(feat, dtype=np.float32))
    graph.ndata["label"] = torch.from_numpy(raw.label.astype(np.int64))
    for name, mask in raw.masks.items():
        graph.ndata[name] = torch.from_numpy(mask)
    return GraphDataset(name=raw.name, graph=graph, num_classes=raw.num_classes, source=raw.source)
