"""Edge-list clean-up shared by every loader: the graph GraphSAGE expects is undirected."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def undirected_edges(src: np.ndarray, dst: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every edge, once each, no self-loops, sorted by (src, dst)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    keep = src != dst
    key = np.concatenate([src[keep] * num_nodes + dst[keep], dst[keep] * num_nodes + src[keep]])
    key = np.unique(key)
    return key // num_nodes, key % num_nodes


def adjacency(src: np.ndarray, dst: np.ndarray, num_nodes: int) -> sp.csr_matrix:
    """Unweighted float32 CSR adjacency of edges already sorted by (src, dst)."""
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=num_nodes), out=indptr[1:])
    data = np.ones(len(dst), dtype=np.float32)
    return sp.csr_matrix((data, dst, indptr), shape=(num_nodes, num_nodes))
