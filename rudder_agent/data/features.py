"""Structural node features for graphs that ship without any (SNAP) or whose features we lack (arxiv)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rudder_agent.data.atomic import atomic_path
from rudder_agent.errors import RudderError
from rudder_agent.log import get_logger
from rudder_agent.paths import cache_dir

log = get_logger(__name__)

METHOD = "fastrp"
SEED = 0
HOP_WEIGHTS = (1.0, 1.0, 1.0)
"""Weights of the 1-, 2- and 3-hop random projections summed into the embedding."""


def fastrp(adj: sp.csr_matrix, dim: int, seed: int = SEED) -> np.ndarray:
    """FastRP-style embedding (random projection of transition-matrix powers) plus degree columns.

    Two columns are log-degree and log mean neighbour degree; the other ``dim - 2`` are
    sum_k w_k * rownorm(S^k R) with S = D^-1 A and R Gaussian. Columns are standardised.
    """
    if dim < 4:
        raise RudderError(f"structural features need at least 4 dimensions, got {dim}")
    n = adj.shape[0]
    deg = np.asarray(adj.sum(axis=1), dtype=np.float32).ravel()
    inv_deg = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    walk = sp.diags(inv_deg).astype(np.float32) @ adj
    x = np.random.default_rng(seed).standard_normal((n, dim - 2), dtype=np.float32)
    emb = np.zeros_like(x)
    for weight in HOP_WEIGHTS:
        x = walk @ x
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        np.divide(x, norm, out=x, where=norm > 0)
        emb += np.float32(weight) * x
    mean_nbr_deg = walk @ deg
    feats = np.column_stack([emb, np.log1p(deg), np.log1p(mean_nbr_deg)]).astype(np.float32)
    feats -= feats.mean(axis=0)
    std = feats.std(axis=0)
    np.divide(feats, std, out=feats, where=std > 0)
    return feats


def feature_cache_path(dataset: str, dim: int) -> Path:
    """Where the structural features of ``dataset`` are cached."""
    return cache_dir() / "features" / f"{dataset}-{dim}-{METHOD}.npy"


def structural_features(dataset: str, adj: sp.csr_matrix, dim: int) -> np.ndarray:
    """Cached structural features: computed once per dataset and dimension, then read from disk."""
    path = feature_cache_path(dataset, dim)
    if path.exists():
        feats = np.load(path, mmap_mode="r")
        if feats.shape == (adj.shape[0], dim) and feats.dtype == np.float32:
            log.info("features.cached", dataset=dataset, path=str(path))
            return np.array(feats)
        log.warning("features.stale", dataset=dataset, path=str(path), shape=feats.shape)
    start = time.perf_counter()
    feats = fastrp(adj, dim)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, feats)
    log.info("features.built", dataset=dataset, dim=dim, method=METHOD, seconds=round(time.perf_counter() - start, 2))
    return feats
