"""Deterministic k-smallest selection in O(n): the one ranking rule of eviction and insertion."""

from __future__ import annotations

import numpy as np


def smallest_k(values: np.ndarray, tiebreak: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest values, ties going to the smaller (unique) tiebreak key.

    Unordered but reproducible: argpartition plus an explicit tie rule instead of a full sort.
    """
    n = values.shape[0]
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    kth = np.partition(values, k - 1)[k - 1]
    below = np.flatnonzero(values < kth)
    tied = np.flatnonzero(values == kth)
    need = k - below.shape[0]
    if need < tied.shape[0]:
        tied = tied[np.argpartition(tiebreak[tied], need - 1)[:need]]
    return np.concatenate((below, tied))
