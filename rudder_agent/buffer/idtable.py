"""An int64 -> int64 open-addressing hash table sized by its entry bound, never by the graph.

Linear probing on a power-of-two table kept at most half full, Fibonacci hashing (spreads the
consecutive ids DGL partitioning produces) and backward-shift deletion (no tombstones, so
probe lengths never degrade). Keys are node ids >= 0; ``EMPTY`` marks a free cell. The
``_find``/``_insert``/``_delete`` kernels are shared with the other Numba kernels.
"""

from __future__ import annotations

import numba
import numpy as np

EMPTY = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True, inline="always")
def _home(key: int, shift: np.uint64, mask: int) -> int:
    """Home cell of a key: the top bits of its Fibonacci product."""
    return np.int64((np.uint64(key) * _GOLDEN) >> shift) & mask


@numba.njit(cache=True, nogil=True, inline="always")
def _cell(keys: np.ndarray, key: int, shift: np.uint64, mask: int) -> int:
    """The cell holding ``key``, or the empty cell where it goes: the one probe sequence of every kernel."""
    i = _home(key, shift, mask)
    while keys[i] != EMPTY and keys[i] != key:
        i = (i + 1) & mask
    return i


@numba.njit(cache=True, nogil=True)
def _find(keys: np.ndarray, key: int, shift: np.uint64, mask: int) -> int:
    """Cell holding ``key``, or -1."""
    i = _cell(keys, key, shift, mask)
    return -1 if keys[i] == EMPTY else i  # (an EMPTY key is never found)


@numba.njit(cache=True, nogil=True)
def _insert(keys: np.ndarray, vals: np.ndarray, key: int, val: int, shift: np.uint64, mask: int) -> bool:
    """Set key -> val; False when the key was already present (its value is then left alone)."""
    i = _cell(keys, key, shift, mask)
    if keys[i] != EMPTY:
        return False
    keys[i] = key
    vals[i] = val
    return True


@numba.njit(cache=True, nogil=True)
def _delete(keys: np.ndarray, vals: np.ndarray, key: int, shift: np.uint64, mask: int) -> int:
    """Remove a key and return its value (-1 if absent), shifting its probe chain back."""
    i = _find(keys, key, shift, mask)
    if i < 0:
        return -1
    out = vals[i]
    j = i
    while True:
        j = (j + 1) & mask
        if keys[j] == EMPTY:
            break
        h = _home(keys[j], shift, mask)
        # the entry at j may move back to the hole at i only if its home is not in (i, j]
        if (i < j and i < h <= j) or (i > j and (h > i or h <= j)):
            continue
        keys[i] = keys[j]
        vals[i] = vals[j]
        i = j
    keys[i] = EMPTY
    return out


@numba.njit(cache=True, nogil=True)
def _lookup_many(keys, vals, ids, out, shift, mask) -> None:
    """out[n] = value of ids[n] or -1."""
    for n in range(ids.shape[0]):
        i = _find(keys, ids[n], shift, mask)
        out[n] = vals[i] if i >= 0 else -1


@numba.njit(cache=True, nogil=True)
def _insert_many(keys, vals, ids, values, shift, mask) -> int:
    """Insert pairs; returns how many keys were new."""
    added = 0
    for n in range(ids.shape[0]):
        added += _insert(keys, vals, ids[n], values[n], shift, mask)
    return added


@numba.njit(cache=True, nogil=True)
def _delete_many(keys, vals, ids, shift, mask) -> int:
    """Delete keys; returns how many were present."""
    removed = 0
    for n in range(ids.shape[0]):
        removed += _delete(keys, vals, ids[n], shift, mask) >= 0
    return removed


def as_ids(ids: np.ndarray) -> np.ndarray:
    """Contiguous int64 view/copy, the one layout the kernels are compiled for."""
    return np.ascontiguousarray(ids, dtype=np.int64)


class IdTable:
    """Maps up to ``max_entries`` node ids to int64 values in O(1) per id."""

    def __init__(self, max_entries: int):
        bits = max(3, int(2 * max(1, max_entries) - 1).bit_length())  # >= 2x entries, >= 8 cells
        self.keys = np.full(1 << bits, EMPTY, dtype=np.int64)
        self.vals = np.full(1 << bits, -1, dtype=np.int64)
        self.shift = np.uint64(64 - bits)
        self.mask = (1 << bits) - 1
        self.max_entries = max_entries
        self.size = 0

    @classmethod
    def of(cls, ids: np.ndarray, values: np.ndarray) -> IdTable:
        """A table holding ids[i] -> values[i] (the first occurrence wins for repeated ids)."""
        table = cls(len(ids))
        table.insert(ids, values)
        return table

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Value of each id, -1 where absent."""
        ids = as_ids(ids)
        out = np.empty(ids.shape[0], dtype=np.int64)
        _lookup_many(self.keys, self.vals, ids, out, self.shift, self.mask)
        return out

    def insert(self, ids: np.ndarray, values: np.ndarray) -> None:
        """Add ids -> values; ids already present keep their value."""
        ids = as_ids(ids)
        if ids.shape[0] and ids.min() < 0:
            raise ValueError("node ids must be >= 0")
        if self.size + ids.shape[0] > self.max_entries:
            raise ValueError(f"{self.size + ids.shape[0]} entries exceed the bound {self.max_entries}")
        self.size += _insert_many(self.keys, self.vals, ids, as_ids(values), self.shift, self.mask)

    def delete(self, ids: np.ndarray) -> None:
        """Remove ids (absent ones are ignored)."""
        self.size -= _delete_many(self.keys, self.vals, as_ids(ids), self.shift, self.mask)

    def clear(self) -> None:
        """Remove every entry (O(table size))."""
        self.keys.fill(EMPTY)
        self.size = 0
