"""GraphSAGE as in DGL's distributed example: mean aggregation, ReLU, dropout between layers."""

from __future__ import annotations

import dgl.nn as dglnn
import torch
from torch import nn


class GraphSAGE(nn.Module):
    """A stack of SAGEConv layers applied to the sampled message-flow blocks."""

    def __init__(self, in_feats: int, hidden: int, n_classes: int, n_layers: int, dropout: float):
        super().__init__()
        dims = [in_feats] + [hidden] * (n_layers - 1) + [n_classes]
        self.layers = nn.ModuleList(dglnn.SAGEConv(a, b, "mean") for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = nn.Dropout(dropout)

    def forward(self, blocks, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (layer, block) in enumerate(zip(self.layers, blocks)):
            h = layer(block, h)
            if i != len(self.layers) - 1:
                h = self.dropout(torch.relu(h))
        return h
