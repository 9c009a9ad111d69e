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
from numba.cpython.unsafe.numbers import trailing_zeros

from rudder_agent.buffer.idtable import EMPTY, _cell, _find, as_ids
from rudder_agent.buffer.persistent import PersistentBuffer, ReplacementPlan
from rudder_agent.buffer.policy import MAX_WINDOW

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
              upcoming: Sequence[np.ndarray], local: tuple[int, int] = (0, 0), lane: int = 0) -> int:
        """Account for this minibatch's accesses; the number of replaceable slots (``stale``).

        ``local``: this trainer's own id range [lo, hi), skipped in the upcoming minibatches.
        ``lane``: which of the trainers sharing the buffer this minibatch is from (0 with one trainer).
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

    def round(self, buffer, hit_slots, miss_ids, remote_ids, upcoming, local=(0, 0), lane=0) -> int:
        buffer.update_scores(hit_slots)
        buffer.record_misses(miss_ids)
        return buffer.stale_count()

    def plan(self, buffer: PersistentBuffer) -> ReplacementPlan:
        return buffer.plan_replacement()

    def memory_bytes(self) -> int:
        return 0  # its scores and candidates live in the buffer


@numba.njit(cache=True, nogil=True)
def _access(keys, counts, masks, held, hit_slots, miss_ids, bit, shift, mask):
    """This minibatch's remote ids: count +1, and its window bit is spent; returns how many ids were new.

    Hits are counted in the per-slot state (no probe); only misses probe the table.
    """
    for h in range(hit_slots.shape[0]):
        s = hit_slots[h]
        held[s, 0] += 1
        held[s, 1] &= ~bit
    added = 0
    for n in range(miss_ids.shape[0]):
        i = _cell(keys, miss_ids[n], shift, mask)
        if keys[i] == EMPTY:
            keys[i], counts[i], masks[i] = miss_ids[n], 1, 0
            added += 1
        else:
            counts[i] += 1
            masks[i] &= ~bit
    return added


@numba.njit(cache=True, nogil=True)
def _enter(keys, counts, masks, held, slot_keys, slot_vals, slot_shift, slot_mask, ids, lo, hi, bit, shift, mask):
    """A minibatch enters the look-ahead window: set its bit on each of its remote ids (buffered: on their slot)."""
    added = 0
    for n in range(ids.shape[0]):
        key = ids[n]
        if lo <= key < hi:
            continue  # local: never buffered
        j = _find(slot_keys, key, slot_shift, slot_mask)
        if j >= 0:
            held[slot_vals[j], 1] |= bit
            continue
        i = _cell(keys, key, shift, mask)
        if keys[i] == EMPTY:
            keys[i], counts[i], masks[i] = key, 0, bit
            added += 1
        else:
            masks[i] |= bit
    return added


@numba.njit(cache=True, nogil=True)
def _follow(keys, counts, masks, held, known, slot_ids, changed, shift, mask):
    """Slots in ``changed`` hold new ids: the leaving ids' state goes back to the table, the new ids' comes out."""
    added = 0
    for c in range(changed.shape[0]):  # all write-backs first: an id may leave one slot and enter another
        s = changed[c]
        old = known[s]
        if old != EMPTY:
            i = _cell(keys, old, shift, mask)
            if keys[i] == EMPTY:
                keys[i] = old
                added += 1
            counts[i], masks[i] = held[s, 0], held[s, 1]
    for c in range(changed.shape[0]):
        s = changed[c]
        new = slot_ids[s]
        known[s] = new
        held[s, 0] = held[s, 1] = 0
        if new != EMPTY:
            i = _find(keys, new, shift, mask)
            if i >= 0:
                held[s, 0], held[s, 1] = counts[i], masks[i]
    return added


@numba.njit(cache=True, nogil=True, inline="always")
def _rank(count, bits, first, window, cap):
    """(next use, count) packed: next use W for position ``first``, 1 for first+W-1, 0 beyond."""
    soon = 0
    if bits != 0:
        f = np.uint64(first % 64)
        word = np.uint64(bits)
        if f:
            word = (word >> f) | (word << (np.uint64(64) - f))  # bit d: position first + d
        word &= (np.uint64(1) << np.uint64(window)) - np.uint64(1)
        if word:
            soon = window - trailing_zeros(word)
    return soon * (cap + 1) + min(count, cap)


@numba.njit(cache=True, nogil=True)
def _ranks(keys, counts, masks, ids, first, window, cap, shift, mask, out):
    """out[n] = the packed rank of ids[n] (not buffered); 0 for an unseen id, -1 for EMPTY."""
    for n in range(ids.shape[0]):
        if ids[n] == EMPTY:
            out[n] = -1
            continue
        i = _find(keys, ids[n], shift, mask)
        out[n] = 0 if i < 0 else _rank(counts[i], masks[i], first, window, cap)


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_down(heap, size):
    """Restore the max-heap after its root was replaced."""
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            return
        if c + 1 < size and heap[c + 1] > heap[c]:
            c += 1
        if heap[i] >= heap[c]:
            return
        heap[i], heap[c] = heap[c], heap[i]
        i = c


@numba.njit(cache=True, nogil=True)
def _weak_held(slot_ids, held, first, window, cap, below, need, free, heap):
    """Free slots, and the ``need`` smallest sort keys (rank, tie rule) of held entries ranked below ``below``.

    One pass over the slots in order (no hash probe per entry), the weakest kept in a bounded max-heap.
    Returns (free slots, keys in the heap).
    """
    nfree = size = 0
    low = (1 << _ID_BITS) - 1
    for s in range(slot_ids.shape[0]):
        node = slot_ids[s]
        if node == EMPTY:
            free[nfree] = s
            nfree += 1
            continue
        if need == 0:
            continue
        r = _rank(held[s, 0], held[s, 1], first, window, cap)
        if r >= below:
            continue
        key = (r << _ID_BITS) | (low - node)
        if size < need:  # sift up
            i = size
            heap[i] = key
            size += 1
            while i > 0 and heap[(i - 1) // 2] < heap[i]:
                heap[(i - 1) // 2], heap[i] = heap[i], heap[(i - 1) // 2]
                i = (i - 1) // 2
        elif key < heap[0]:
            heap[0] = key
            _sift_down(heap, size)
    return nfree, size


def _bit(position: int) -> np.int64:
    """The occurrence bit of minibatch ``position`` (64 positions per word, reused as the window slides)."""
    return np.int64(1 << (position % 64)) if position % 64 < 63 else np.int64(-(1 << 63))


class AccessLog:
    """Per remote id: how often it has been an input so far, and where it occurs in the look-ahead window.

    Ids not in the buffer live in a growable hash table (id -> count, 64-bit occurrence mask), at most
    half full; ids in the buffer keep theirs per slot (``held``), so a hit, a window entry of a buffered
    id and the ranking of the whole buffer touch a small dense array instead of probing the table. The
    state moves between the two when the buffer's contents change (``follow``). Minibatch position p sets
    bit p % 64 when it enters the window and clears it when it is served, so each minibatch is read twice
    whatever W is (W <= 32 keeps bits from aliasing).
    """

    def __init__(self, initial: int = 1024):
        self._alloc(initial)
        self.held = np.zeros((0, 2), dtype=np.int64)  # per buffer slot: (count, mask) of the id it holds
        self.known = np.zeros(0, dtype=np.int64)  # per buffer slot: the id ``held`` belongs to

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

    def __getstate__(self) -> dict:
        """Copies (a what-if fork, a machine buffer's snapshot) keep the columns as views of ONE table."""
        return {k: v for k, v in self.__dict__.items() if k not in ("keys", "counts", "masks")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.keys, self.counts, self.masks = self.table[:, 0], self.table[:, 1], self.table[:, 2]

    @property
    def nbytes(self) -> int:
        return self.table.nbytes + self.held.nbytes + self.known.nbytes

    def follow(self, slot_ids: np.ndarray) -> None:
        """Move state with the buffer's changes since the last call (replacements, warm start)."""
        if self.known.shape[0] != slot_ids.shape[0]:
            if np.any(self.known != EMPTY):
                raise ValueError("one access log follows one buffer")
            self.known = np.full(slot_ids.shape[0], EMPTY, dtype=np.int64)
            self.held = np.zeros((slot_ids.shape[0], 2), dtype=np.int64)
        changed = np.flatnonzero(slot_ids != self.known)
        self._room(changed)
        self.size += _follow(self.keys, self.counts, self.masks, self.held, self.known, as_ids(slot_ids), changed,
                             self.shift, self.mask)

    def access(self, hit_slots: np.ndarray, miss_ids: np.ndarray, position: int) -> None:
        """Minibatch ``position`` is served: one access of each hit (by slot) and each miss (by id)."""
        miss_ids = self._room(miss_ids)
        self.size += _access(self.keys, self.counts, self.masks, self.held, as_ids(hit_slots), miss_ids,
                             _bit(position), self.shift, self.mask)

    def enter(self, ids: np.ndarray, position: int, local: tuple[int, int], slots) -> None:
        """Minibatch ``position`` is sampled ahead: mark where its remote ids occur (``slots``: the buffer's id table)."""
        ids = self._room(ids)
        self.size += _enter(self.keys, self.counts, self.masks, self.held, slots.keys, slots.vals, slots.shift,
                            slots.mask, ids, local[0], local[1], _bit(position), self.shift, self.mask)

    def ranks(self, ids: np.ndarray, first: int, window: int) -> np.ndarray:
        """Packed (next use within positions first .. first+window-1, count) of ids NOT buffered; -1 for EMPTY."""
        ids = as_ids(ids)
        out = np.empty(ids.shape[0], dtype=np.int64)
        _ranks(self.keys, self.counts, self.masks, ids, first, window, COUNT_CAP, self.shift, self.mask, out)
        return out

    def weak_held(self, slot_ids: np.ndarray, first: int, window: int, below: int,
                  need: int) -> tuple[np.ndarray, np.ndarray]:
        """Free slots, and the ``need`` smallest sort keys of held entries ranked below ``below``, sorted (follow() first)."""
        free = np.empty(slot_ids.shape[0], dtype=np.int64)
        heap = np.empty(max(0, need), dtype=np.int64)
        nfree, size = _weak_held(as_ids(slot_ids), self.held, first, window, COUNT_CAP, below, max(0, need), free,
                                 heap)
        return free[:nfree], np.sort(heap[:size])

    def _room(self, ids: np.ndarray) -> np.ndarray:
        ids = as_ids(ids)
        if self.size + ids.shape[0] > self.max_entries:
            old = self.table[self.keys != EMPTY]
            self._alloc((3 * (self.size + ids.shape[0])) // 2)
            _refill(self.table, old, self.shift, self.mask)
            self.size = old.shape[0]
        return ids


@numba.njit(cache=True, nogil=True)
def _refill(table, old, shift, mask):
    """Re-insert whole cells (key, count, mask) into a fresh table."""
    keys = table[:, 0]
    for n in range(old.shape[0]):
        i = _cell(keys, old[n, 0], shift, mask)
        for c in range(3):
            table[i, c] = old[n, c]


@numba.njit(cache=True, nogil=True)
def _admissions(miss_key, buf_key):
    """How many of the best misses beat the weakest entries, pairwise (both sorted: misses desc, buffer asc)."""
    n = min(miss_key.shape[0], buf_key.shape[0])
    for i in range(n):
        if (miss_key[i] >> _ID_BITS) <= (buf_key[i] >> _ID_BITS):
            return i
    return n




class FrequencyKeep:
    """``lfu`` (window 0) and ``lookahead`` (window W): keep the highest (next use, count) among rows in hand.

    With ``lanes`` = T trainers sharing one buffer, their minibatches interleave on one time line: trainer j's
    i-th minibatch is position i·T + j, so the look-ahead window is the union of the T trainers' own windows
    (T·W positions; their DDP steps keep them within a few minibatches of each other) and counts are the machine's.
    """

    fetches_rows = False

    def __init__(self, window: int = 0, lanes: int = 1):
        if lanes < 1 or not 0 <= window * lanes <= MAX_WINDOW:
            raise ValueError(f"the look-ahead window times the trainers sharing a buffer must be 0..{MAX_WINDOW} "
                             f"minibatches (got {window} x {lanes})")
        self.window = window
        self.lanes = lanes
        self.name = "lookahead" if window else "lfu"
        self.log = AccessLog()
        self._position = [0] * lanes  # per lane: its own index of the minibatch being served
        self._entered = [0] * lanes  # per lane: its minibatches [1, _entered) have entered the window
        self._plan: ReplacementPlan | None = None

    def round(self, buffer, hit_slots, miss_ids, remote_ids, upcoming, local=(0, 0), lane=0) -> int:
        t, at = self._position[lane], self._at(lane)
        self.log.follow(buffer.slot_ids)
        self.log.access(hit_slots, miss_ids, at(t))
        for d, ids in enumerate(list(upcoming)[: self.window]):
            if t + 1 + d >= self._entered[lane]:
                self.log.enter(ids, at(t + 1 + d), local, buffer.id_table)
                self._entered[lane] = t + 2 + d
        self._plan = self._rerank(buffer, as_ids(miss_ids), at(t) + 1)
        self._position[lane] += 1
        return len(self._plan)

    def _at(self, lane: int):
        """Position on the shared time line of this lane's i-th minibatch."""
        return lambda i: i * self.lanes + lane

    @property
    def span(self) -> int:
        """Positions the ranking looks ahead: the lanes' windows together."""
        return self.window * self.lanes

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
        m = miss_ids.shape[0]
        low = (1 << _ID_BITS) - 1
        # one int64 sort key each: rank in the high bits, the tie rule in the low 32 bits
        miss_key = np.sort((self.log.ranks(miss_ids, first, self.span) << _ID_BITS) | (low - miss_ids))[::-1]
        best = int(miss_key[0] >> _ID_BITS) if m else 0
        need = m - (buffer.capacity - buffer.occupancy)  # only the weakest entries can be evicted, ...
        # ... and only those ranked below the best miss: the rest are never kept aside
        free, held_key = self.log.weak_held(buffer.slot_ids, first, self.span, best, need)
        buf_key = np.concatenate((np.full(free.shape[0], -1 << _ID_BITS, dtype=np.int64), held_key))
        k = _admissions(miss_key, buf_key)
        evicted = low - (held_key[: max(0, k - free.shape[0])] & low)
        evict = np.concatenate((free[:k], buffer.lookup(evicted)))
        return ReplacementPlan(as_ids(evict), as_ids(low - (miss_key[:k] & low)), buffer.version)
