"""What to keep: the policies behind ``--policy decay|lfu|lookahead``.

- ``decay``: the paper's scoring (delta/gamma/tau, see policy.py) with its candidate tracker;
  a replacement evicts stale entries for the most-missed recent candidates, which may pull
  rows that are not in the minibatch (``replace_rows``).
- ``lfu``: long-memory access counts; a replacement admits this minibatch's misses whose
  count beats the weakest entry's (frequency-based admission, as TinyLFU). No extra row.
- ``lookahead``: the same, ranked first by the next use within the W minibatches already
  sampled (sooner first), then by count. No extra row: only rows already in hand enter.
  It reaches Belady's ceiling on our traces (see docs/what-to-keep.md).

A policy plays one round per minibatch (after its hits are decided) and plans a replacement
that ``complete`` applies, so hits never depend on the minibatch's own replacement.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numba
import numpy as np

from rudder_agent.buffer.idtable import EMPTY, IdTable, _find, _insert, as_ids
from rudder_agent.buffer.persistent import PersistentBuffer, ReplacementPlan

COUNT_CAP = (1 << 20) - 1
"""Counts saturate here: the priority of an id packs (next use, count) into one int64."""
_ID_BITS = 32


class KeepPolicy(Protocol):
    """How the buffer chooses what to keep; one round per minibatch, then an optional replacement."""

    name: str
    window: int

    def round(self, buffer: PersistentBuffer, hit_slots: np.ndarray, miss_ids: np.ndarray, remote_ids: np.ndarray,
              upcoming: Sequence[np.ndarray]) -> int:
        """Account for this minibatch's accesses; the number of replaceable slots (``stale``)."""

    def plan(self, buffer: PersistentBuffer) -> ReplacementPlan:
        """The replacement to apply after this minibatch, planned on the state after its round."""


class DecayKeep:
    """The paper's policy: scores decay, stale entries are replaced by recently missed candidates."""

    name = "decay"
    window = 0

    def round(self, buffer, hit_slots, miss_ids, remote_ids, upcoming) -> int:
        buffer.update_scores(hit_slots)
        buffer.record_misses(miss_ids)
        return buffer.stale_count()

    def plan(self, buffer: PersistentBuffer) -> ReplacementPlan:
        return buffer.plan_replacement()


@numba.njit(cache=True, nogil=True)
def _count(keys, vals, ids, shift, mask):
    """counts[id] += 1 for every id (inserting new ids); returns how many ids were new."""
    added = 0
    for n in range(ids.shape[0]):
        i = _find(keys, ids[n], shift, mask)
        if i >= 0:
            vals[i] += 1
        else:
            _insert(keys, vals, ids[n], 1, shift, mask)
            added += 1
    return added


@numba.njit(cache=True, nogil=True)
def _counts_of(keys, vals, ids, shift, mask, out):
    """out[n] = count of ids[n] (0 when never seen; EMPTY ids count 0)."""
    for n in range(ids.shape[0]):
        if ids[n] == EMPTY:
            out[n] = 0
            continue
        i = _find(keys, ids[n], shift, mask)
        out[n] = vals[i] if i >= 0 else 0


class AccessCounts:
    """How often each remote id has been an input so far: a growable id -> count hash table."""

    def __init__(self, initial: int = 1024):
        self._alloc(initial)

    def _alloc(self, max_entries: int) -> None:
        bits = max(3, int(2 * max(1, max_entries) - 1).bit_length())
        self.keys = np.full(1 << bits, EMPTY, dtype=np.int64)
        self.vals = np.zeros(1 << bits, dtype=np.int64)
        self.shift = np.uint64(64 - bits)
        self.mask = (1 << bits) - 1
        self.max_entries = max_entries
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, ids: np.ndarray) -> None:
        """One access of each id (ids unique within a call)."""
        ids = as_ids(ids)
        if self.size + ids.shape[0] > self.max_entries:
            self._grow(2 * (self.size + ids.shape[0]))
        self.size += _count(self.keys, self.vals, ids, self.shift, self.mask)

    def of(self, ids: np.ndarray) -> np.ndarray:
        """Count of each id (0 for ids never seen or EMPTY)."""
        ids = as_ids(ids)
        out = np.empty(ids.shape[0], dtype=np.int64)
        _counts_of(self.keys, self.vals, ids, self.shift, self.mask, out)
        return out

    def _grow(self, max_entries: int) -> None:
        held = self.keys != EMPTY
        keys, vals = self.keys[held], self.vals[held]
        self._alloc(max_entries)
        _refill(self.keys, self.vals, keys, vals, self.shift, self.mask)
        self.size = keys.shape[0]


@numba.njit(cache=True, nogil=True)
def _refill(keys, vals, old_keys, old_vals, shift, mask):
    for n in range(old_keys.shape[0]):
        _insert(keys, vals, old_keys[n], old_vals[n], shift, mask)


@numba.njit(cache=True, nogil=True)
def _mark_next_use(table_keys, table_vals, shift, mask, ids, soon, out):
    """out[v] = max(out[v], soon) for every id of ``ids`` found in the table (v = its value)."""
    for n in range(ids.shape[0]):
        i = _find(table_keys, ids[n], shift, mask)
        if i >= 0:
            v = table_vals[i]
            if out[v] < soon:
                out[v] = soon


@numba.njit(cache=True, nogil=True)
def _admissions(miss_key, buf_key):
    """How many of the best misses beat the weakest entries, pairwise (both sorted: misses desc, buffer asc)."""
    n = min(miss_key.shape[0], buf_key.shape[0])
    for i in range(n):
        if (miss_key[i] >> _ID_BITS) <= (buf_key[i] >> _ID_BITS):
            return i
    return n


class FrequencyKeep:
    """``lfu`` (window 0) and ``lookahead`` (window W): keep the highest (next use, count) among rows in hand."""

    def __init__(self, window: int = 0):
        if window < 0:
            raise ValueError("the look-ahead window must be >= 0 minibatches")
        self.window = window
        self.name = "lookahead" if window else "lfu"
        self.counts = AccessCounts()
        self._plan: ReplacementPlan | None = None

    def round(self, buffer, hit_slots, miss_ids, remote_ids, upcoming) -> int:
        self.counts.add(remote_ids)
        self._plan = self._rerank(buffer, as_ids(miss_ids), upcoming)
        return len(self._plan)

    def plan(self, buffer: PersistentBuffer) -> ReplacementPlan:
        if self._plan is None or self._plan.version != buffer.version:
            raise RuntimeError("plan() follows round() on the same buffer state")
        return self._plan

    def _rerank(self, buffer: PersistentBuffer, miss_ids: np.ndarray, upcoming: Sequence[np.ndarray]) -> ReplacementPlan:
        """Admit misses over the weakest entries while the miss ranks strictly higher (no churn on ties)."""
        slot_ids = buffer.slot_ids
        buf_soon = np.zeros(slot_ids.shape[0], dtype=np.int64)
        miss_soon = np.zeros(miss_ids.shape[0], dtype=np.int64)
        upcoming = list(upcoming)[: self.window]
        if upcoming:
            t = buffer.id_table
            misses = _table_of(miss_ids)
            for d, ids in enumerate(upcoming):
                soon = self.window - d  # W for the next minibatch, 1 for the W-th
                ids = as_ids(ids)
                _mark_next_use(t.keys, t.vals, t.shift, t.mask, ids, soon, buf_soon)
                _mark_next_use(misses.keys, misses.vals, misses.shift, misses.mask, ids, soon, miss_soon)
        cap = COUNT_CAP
        buf_rank = np.where(slot_ids == EMPTY, -1, buf_soon * (cap + 1) + np.minimum(self.counts.of(slot_ids), cap))
        miss_rank = miss_soon * (cap + 1) + np.minimum(self.counts.of(miss_ids), cap)
        # one int64 sort key each: rank in the high bits, the tie rule in the low 32 (misses: smaller id first)
        miss_key = np.sort((miss_rank << _ID_BITS) | ((1 << _ID_BITS) - 1 - miss_ids))[::-1]
        buf_key = np.sort((buf_rank << _ID_BITS) | np.arange(slot_ids.shape[0], dtype=np.int64))
        k = _admissions(miss_key, buf_key)
        insert = (1 << _ID_BITS) - 1 - (miss_key[:k] & ((1 << _ID_BITS) - 1))
        evict = buf_key[:k] & ((1 << _ID_BITS) - 1)
        return ReplacementPlan(as_ids(evict), as_ids(insert), buffer.version)


def _table_of(ids: np.ndarray) -> IdTable:
    """id -> position of ``ids`` (unique)."""
    return IdTable.of(ids, np.arange(ids.shape[0], dtype=np.int64))


def make_keep(policy: str, window: int) -> KeepPolicy:
    """The policy ``--policy`` names (``window`` applies to lookahead)."""
    if policy == "decay":
        return DecayKeep()
    if policy == "lfu":
        return FrequencyKeep(0)
    if policy == "lookahead":
        if window < 1:
            raise ValueError("lookahead needs a window of at least 1 minibatch (--lookahead W)")
        return FrequencyKeep(window)
    raise ValueError(f"unknown policy {policy!r}: decay, lfu or lookahead")
