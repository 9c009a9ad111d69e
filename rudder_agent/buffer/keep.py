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

from rudder_agent.buffer.idtable import EMPTY, _find, _insert, as_ids
from rudder_agent.buffer.persistent import PersistentBuffer, ReplacementPlan

COUNT_CAP = (1 << 20) - 1
"""Counts saturate here: the priority of an id packs (next use, count) into one int64."""
_ID_BITS = 32


class KeepPolicy(Protocol):
    """How the buffer chooses what to keep; one round per minibatch, then an optional replacement."""

    name: str
    window: int
    fetches_rows: bool
    """Whether a replacement may fetch rows the minibatch did not need (decay's candidates)."""

    def round(self, buffer: PersistentBuffer, hit_slots: np.ndarray, miss_ids: np.ndarray, remote_ids: np.ndarray,
              upcoming: Sequence[np.ndarray], local: tuple[int, int] = (0, 0)) -> int:
        """Account for this minibatch's accesses; the number of replaceable slots (``stale``).

        ``local``: this trainer's own id range [lo, hi), skipped in the upcoming minibatches.
        """

    def plan(self, buffer: PersistentBuffer) -> ReplacementPlan:
        """The replacement to apply after this minibatch, planned on the state after its round."""

    def memory_bytes(self) -> int:
        """What the policy keeps beside the buffer (reported in summary.json as keep_memory_bytes)."""


class DecayKeep:
    """The paper's policy: scores decay, stale entries are replaced by recently missed candidates."""

    name = "decay"
    window = 0
    fetches_rows = True

    def round(self, buffer, hit_slots, miss_ids, remote_ids, upcoming, local=(0, 0)) -> int:
        buffer.update_scores(hit_slots)
        buffer.record_misses(miss_ids)
        return buffer.stale_count()

    def plan(self, buffer: PersistentBuffer) -> ReplacementPlan:
        return buffer.plan_replacement()

    def memory_bytes(self) -> int:
        return 0  # its scores and candidates live in the buffer


@numba.njit(cache=True, nogil=True)
def _access(keys, counts, masks, ids, bit, shift, mask):
    """This minibatch's remote ids: count +1, and its window bit is spent; returns how many ids were new."""
    added = 0
    for n in range(ids.shape[0]):
        i = _find(keys, ids[n], shift, mask)
        if i < 0:
            _insert(keys, counts, ids[n], 1, shift, mask)
            masks[_find(keys, ids[n], shift, mask)] = 0
            added += 1
        else:
            counts[i] += 1
            masks[i] &= ~bit
    return added


@numba.njit(cache=True, nogil=True)
def _enter(keys, counts, masks, ids, lo, hi, bit, shift, mask):
    """A minibatch enters the look-ahead window: set its bit on each of its remote ids."""
    added = 0
    for n in range(ids.shape[0]):
        key = ids[n]
        if lo <= key < hi:
            continue  # local: never buffered
        i = _find(keys, key, shift, mask)
        if i < 0:
            _insert(keys, counts, key, 0, shift, mask)
            i = _find(keys, key, shift, mask)
            masks[i] = 0
            added += 1
        masks[i] |= bit
    return added


@numba.njit(cache=True, nogil=True)
def _ranks(keys, counts, masks, ids, first, window, cap, shift, mask, out):
    """out[n] = (next use, count) packed: next use W for position ``first``, 1 for first+W-1, 0 beyond; -1 for EMPTY."""
    for n in range(ids.shape[0]):
        if ids[n] == EMPTY:
            out[n] = -1
            continue
        i = _find(keys, ids[n], shift, mask)
        if i < 0:
            out[n] = 0
            continue
        soon = 0
        m = masks[i]
        if m != 0:
            for d in range(window):
                if (m >> ((first + d) % 64)) & 1:
                    soon = window - d
                    break
        out[n] = soon * (cap + 1) + min(counts[i], cap)


@numba.njit(cache=True, nogil=True)
def _refill(keys, counts, masks, old_keys, old_counts, old_masks, shift, mask):
    for n in range(old_keys.shape[0]):
        _insert(keys, counts, old_keys[n], old_counts[n], shift, mask)
        masks[_find(keys, old_keys[n], shift, mask)] = old_masks[n]


def _bit(position: int) -> np.int64:
    """The occurrence bit of minibatch ``position`` (64 positions per word, reused as the window slides)."""
    return np.int64(1 << (position % 64)) if position % 64 < 63 else np.int64(-(1 << 63))


class AccessLog:
    """Per remote id: how often it has been an input so far, and where it occurs in the look-ahead window.

    A growable hash table (id -> count, 64-bit occurrence mask), at most half full. Minibatch position p sets bit p % 64
    when it enters the window and clears it when it is served, so each minibatch is read twice
    whatever W is (W <= 32 keeps bits from aliasing).
    """

    def __init__(self, initial: int = 1024):
        self._alloc(initial)

    def _alloc(self, max_entries: int) -> None:
        bits = max(3, int(2 * max(1, max_entries) - 1).bit_length())
        # one row per cell (key, count, occurrence bits): a probe touches one cache line, not three
        self.table = np.zeros((1 << bits, 3), dtype=np.int64)
        self.table[:, 0] = EMPTY
        self.keys, self.counts, self.masks = self.table[:, 0], self.table[:, 1], self.table[:, 2]
        self.shift = np.uint64(64 - bits)
        self.mask = (1 << bits) - 1
        self.max_entries = max_entries
        self.size = 0

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return self.table.nbytes

    def access(self, ids: np.ndarray, position: int) -> None:
        """Minibatch ``position`` is served: one access of each of its remote ids (unique)."""
        ids = self._room(ids)
        self.size += _access(self.keys, self.counts, self.masks, ids, _bit(position), self.shift, self.mask)

    def enter(self, ids: np.ndarray, position: int, local: tuple[int, int]) -> None:
        """Minibatch ``position`` is sampled ahead: mark where its remote ids occur."""
        ids = self._room(ids)
        self.size += _enter(self.keys, self.counts, self.masks, ids, local[0], local[1], _bit(position),
                            self.shift, self.mask)

    def ranks(self, ids: np.ndarray, first: int, window: int) -> np.ndarray:
        """Packed (next use within positions first .. first+window-1, count) of each id; -1 for EMPTY."""
        ids = as_ids(ids)
        out = np.empty(ids.shape[0], dtype=np.int64)
        _ranks(self.keys, self.counts, self.masks, ids, first, window, COUNT_CAP, self.shift, self.mask, out)
        return out

    def _room(self, ids: np.ndarray) -> np.ndarray:
        ids = as_ids(ids)
        if self.size + ids.shape[0] > self.max_entries:
            held = self.keys != EMPTY
            old = self.keys[held], self.counts[held], self.masks[held]
            self._alloc((3 * (self.size + ids.shape[0])) // 2)
            _refill(self.keys, self.counts, self.masks, *old, self.shift, self.mask)
            self.size = old[0].shape[0]
        return ids


@numba.njit(cache=True, nogil=True)
def _admissions(miss_key, buf_key):
    """How many of the best misses beat the weakest entries, pairwise (both sorted: misses desc, buffer asc)."""
    n = min(miss_key.shape[0], buf_key.shape[0])
    for i in range(n):
        if (miss_key[i] >> _ID_BITS) <= (buf_key[i] >> _ID_BITS):
            return i
    return n


MAX_WINDOW = 32
"""Longest look-ahead window: occurrence bits live in one 64-bit word per id."""


class FrequencyKeep:
    """``lfu`` (window 0) and ``lookahead`` (window W): keep the highest (next use, count) among rows in hand."""

    fetches_rows = False

    def __init__(self, window: int = 0):
        if not 0 <= window <= MAX_WINDOW:
            raise ValueError(f"the look-ahead window must be 0..{MAX_WINDOW} minibatches")
        self.window = window
        self.name = "lookahead" if window else "lfu"
        self.log = AccessLog()
        self._position = 0  # of the minibatch being served
        self._entered = 0  # minibatches [1, _entered) have entered the window
        self._plan: ReplacementPlan | None = None

    def round(self, buffer, hit_slots, miss_ids, remote_ids, upcoming, local=(0, 0)) -> int:
        t = self._position
        self.log.access(remote_ids, t)
        for d, ids in enumerate(list(upcoming)[: self.window]):
            if t + 1 + d >= self._entered:
                self.log.enter(ids, t + 1 + d, local)
                self._entered = t + 2 + d
        self._plan = self._rerank(buffer, as_ids(miss_ids), t + 1)
        self._position += 1
        return len(self._plan)

    def memory_bytes(self) -> int:
        return self.log.nbytes

    def plan(self, buffer: PersistentBuffer) -> ReplacementPlan:
        if self._plan is None or self._plan.version != buffer.version:
            raise RuntimeError("plan() follows round() on the same buffer state")
        return self._plan

    def _rerank(self, buffer: PersistentBuffer, miss_ids: np.ndarray, first: int) -> ReplacementPlan:
        """Admit misses over the weakest entries while the miss ranks strictly higher (no churn on ties).

        Free slots rank lowest; among equal ranks the smaller id is admitted first and the larger id evicted first.
        """
        slot_ids = buffer.slot_ids
        free = np.flatnonzero(slot_ids == EMPTY)
        held = slot_ids[slot_ids != EMPTY]
        m = miss_ids.shape[0]
        low = (1 << _ID_BITS) - 1
        # one int64 sort key each: rank in the high bits, the tie rule in the low 32 bits
        miss_key = np.sort((self.log.ranks(miss_ids, first, self.window) << _ID_BITS) | (low - miss_ids))[::-1]
        held_key = (self.log.ranks(held, first, self.window) << _ID_BITS) | (low - held)
        need = max(0, m - free.shape[0])  # only the weakest entries can be evicted
        if need < held_key.shape[0]:
            held_key = np.partition(held_key, need)[:need] if need else held_key[:0]
        held_key = np.sort(held_key)
        buf_key = np.concatenate((np.full(free.shape[0], -1 << _ID_BITS, dtype=np.int64), held_key))
        k = _admissions(miss_key, buf_key)
        evicted = low - (held_key[: max(0, k - free.shape[0])] & low)
        evict = np.concatenate((free[:k], buffer.lookup(evicted)))
        return ReplacementPlan(as_ids(evict), as_ids(low - (miss_key[:k] & low)), buffer.version)


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
