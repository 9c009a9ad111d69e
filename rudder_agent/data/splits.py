"""Seeded train/val/test splits, returned as boolean masks."""

from __future__ import annotations

import numpy as np

from rudder_agent.errors import RudderError

Masks = dict[str, np.ndarray]
"""``train_mask``, ``val_mask`` and ``test_mask``: disjoint boolean arrays over all nodes."""


def masks_from_ids(num_nodes: int, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> Masks:
    """Boolean masks from node-id arrays."""
    masks = {}
    for name, ids in (("train_mask", train), ("val_mask", val), ("test_mask", test)):
        mask = np.zeros(num_nodes, dtype=bool)
        mask[ids] = True
        masks[name] = mask
    return masks


def fraction_split(candidates: np.ndarray, train: float, val: float, test: float, seed: int, num_nodes: int) -> Masks:
    """Shuffle ``candidates`` and cut it into train/val/test fractions (their sum may be below 1)."""
    if min(train, val, test) < 0 or train + val + test > 1 + 1e-9:
        raise RudderError(f"split fractions must be >= 0 and sum to <= 1, got {train}/{val}/{test}")
    ids = np.random.default_rng(seed).permutation(candidates)
    n_train, n_val, n_test = (int(round(f * len(ids))) for f in (train, val, test))
    n_test = min(n_test, len(ids) - n_train - n_val)
    return masks_from_ids(
        num_nodes, ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val : n_train + n_val + n_test]
    )


def per_class_split(labels: np.ndarray, per_class: int, num_val: int, num_test: int, seed: int) -> Masks:
    """Planetoid-style split: ``per_class`` training nodes per class, then random val and test nodes."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    ranked = order[np.argsort(labels[order], kind="stable")]
    _, starts = np.unique(labels[ranked], return_index=True)
    rank_in_class = np.arange(len(ranked)) - np.repeat(starts, np.diff(np.append(starts, len(ranked))))
    train = ranked[rank_in_class < per_class]
    rest = rng.permutation(ranked[rank_in_class >= per_class])
    if len(rest) < num_val + num_test:
        raise RudderError(
            f"{len(labels)} nodes are too few for {per_class}/class train, {num_val} val, {num_test} test"
        )
    return masks_from_ids(len(labels), train, rest[:num_val], rest[num_val : num_val + num_test])
