"""Scalable synthetic graphs: power-law degrees, community structure, features that predict the labels."""

from __future__ import annotations

import numpy as np

from rudder_agent.data.dataset import RawGraph
from rudder_agent.data.edges import undirected_edges
from rudder_agent.data.splits import fraction_split
from rudder_agent.errors import RudderError

TRAIN, VAL, TEST = 0.2, 0.1, 0.1
"""Like ogbn-products, most nodes sit in no split: epochs stay short on large graphs."""


def generate_synthetic(
    name: str,
    num_nodes: int,
    avg_degree: float,
    num_classes: int,
    feat_dim: int,
    homophily: float,
    exponent: float,
    feat_noise: float,
    seed: int,
) -> RawGraph:
    """Degree-corrected SBM: label = community, Pareto degree weights, ``homophily`` of edges intra-community.

    Features are the class centroid (N(0, I)) plus Gaussian noise scaled so that a
    nearest-centroid classifier confuses two classes with probability ~Phi(-1/feat_noise)
    whatever ``feat_dim`` is; neighbours therefore carry useful signal for a GNN.
    """
    _check(num_nodes, avg_degree, num_classes, feat_dim, homophily, exponent, feat_noise)
    comm_seq, edge_seq, feat_seq, split_seq = np.random.SeedSequence(seed).spawn(4)
    label = np.random.default_rng(comm_seq).integers(num_classes, size=num_nodes, dtype=np.int64)
    src, dst = _edges(label, num_classes, avg_degree, homophily, exponent, np.random.default_rng(edge_seq))
    src, dst = undirected_edges(src, dst, num_nodes)
    return RawGraph(
        name=name,
        feature_key=name,
        src=src,
        dst=dst,
        num_nodes=num_nodes,
        label=label,
        masks=fraction_split(np.arange(num_nodes), TRAIN, VAL, TEST, split_seq, num_nodes),
        num_classes=num_classes,
        source=f"synthetic (DC-SBM, seed {seed})",
        feat=_features(label, num_classes, feat_dim, feat_noise, np.random.default_rng(feat_seq)),
    )


def _edges(
    label: np.ndarray, num_classes: int, avg_degree: float, homophily: float, exponent: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n*avg_degree/2 endpoint pairs, both ends weighted by degree, the second mostly in the first's community."""
    n = len(label)
    num_draws = int(round(n * avg_degree / 2))
    weight = (1.0 - rng.random(n)) ** (-1.0 / (exponent - 1.0))
    order = np.argsort(label, kind="stable")
    cum = np.cumsum(weight[order])
    src = order[np.minimum(np.searchsorted(cum, rng.random(num_draws) * cum[-1], side="right"), n - 1)]
    counts = np.bincount(label, minlength=num_classes)
    ends = np.cumsum(counts)
    lo = np.concatenate([[0.0], cum])[ends - counts]
    hi = cum[np.maximum(ends - 1, 0)]
    c = label[src]
    intra = rng.random(num_draws) < homophily
    target = np.where(intra, lo[c] + rng.random(num_draws) * (hi[c] - lo[c]), rng.random(num_draws) * cum[-1])
    pos = np.searchsorted(cum, target, side="right")
    pos = np.where(intra, np.minimum(pos, ends[c] - 1), np.minimum(pos, n - 1))
    return src, order[pos]


def _features(label: np.ndarray, num_classes: int, dim: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Class centroid plus isotropic noise of std noise*sqrt(dim/2) per dimension."""
    centroids = rng.standard_normal((num_classes, dim), dtype=np.float32)
    feat = rng.standard_normal((len(label), dim), dtype=np.float32)
    feat *= np.float32(noise * np.sqrt(dim / 2))
    feat += centroids[label]
    return feat


def _check(
    num_nodes: int, avg_degree: float, num_classes: int, feat_dim: int, homophily: float, exponent: float, noise: float
) -> None:
    """Reject options that would produce an empty or meaningless graph."""
    problems = [
        (num_nodes < 2, f"num_nodes must be >= 2 (got {num_nodes})"),
        (avg_degree <= 0, f"avg_degree must be > 0 (got {avg_degree})"),
        (not 1 <= num_classes <= num_nodes, f"num_classes must be in 1..num_nodes (got {num_classes})"),
        (feat_dim < 1, f"feat_dim must be >= 1 (got {feat_dim})"),
        (not 0 <= homophily <= 1, f"homophily must be in [0, 1] (got {homophily})"),
        (exponent <= 1, f"exponent must be > 1 (got {exponent})"),
        (noise < 0, f"feat_noise must be >= 0 (got {noise})"),
    ]
    messages = [msg for bad, msg in problems if bad]
    if messages:
        raise RudderError("synthetic: " + "; ".join(messages))
