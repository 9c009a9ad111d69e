"""The persistent buffer: a fixed number of remote-node feature rows kept across minibatches.

Rows live in ONE preallocated tensor ``[capacity, D]``; beside it a float64 score per slot, the
node id per slot (-1 = empty) and an O(1) id -> slot hash table sized by the capacity. Empty
slots score -inf, so "free slots first, then stale entries lowest score first" is one
ranking, and an empty slot counts as stale room (otherwise an empty buffer could never fill:
"with no stale entry a replacement is skipped"). The buffer and its candidate tracker never
share an id.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numba
import numpy as np
import torch

from rudder_agent.buffer.candidates import CandidateTracker
from rudder_agent.buffer.idtable import EMPTY, IdTable, _delete, _insert, as_ids
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.buffer.select import smallest_k

CANDIDATE_FACTOR = 2
"""Candidates tracked per buffer slot: room for a full buffer's worth of replacements twice over."""


@dataclass(frozen=True, slots=True)
class ReplacementPlan:
    """Put ``insert_ids[i]`` into ``evict_slots[i]``; valid only for the buffer state it was planned on."""

    evict_slots: np.ndarray
    insert_ids: np.ndarray
    version: int

    def __len__(self) -> int:
        return int(self.insert_ids.shape[0])


@numba.njit(cache=True, nogil=True)
def _score_round(scores, stamps, hit_slots, rnd, delta, gamma):
    """+delta once per accessed slot, x gamma for every other slot (-inf empties stay -inf)."""
    for h in range(hit_slots.shape[0]):
        s = hit_slots[h]
        if s >= 0 and stamps[s] != rnd:
            stamps[s] = rnd
            scores[s] += delta
    for s in range(scores.shape[0]):
        if stamps[s] != rnd:
            scores[s] *= gamma


@numba.njit(cache=True, nogil=True)
def _replace(slot_ids, scores, keys, vals, shift, mask, evict_slots, insert_ids, delta):
    """Unmap every evicted id first, then map the new ones; return how many slots were empty."""
    filled = 0
    for i in range(evict_slots.shape[0]):
        old = slot_ids[evict_slots[i]]
        if old == EMPTY:
            filled += 1
        else:
            _delete(keys, vals, old, shift, mask)
    for i in range(evict_slots.shape[0]):
        s = evict_slots[i]
        slot_ids[s] = insert_ids[i]
        scores[s] = delta
        _insert(keys, vals, insert_ids[i], s, shift, mask)
    return filled


@numba.njit(cache=True, nogil=True)
def _copy_rows(dst, dst_idx, src, src_idx):
    """``dst[dst_idx[k]] = src[src_idx[k]]`` for every k, rows as raw bytes: one pass, no temporary."""
    for k in range(dst_idx.shape[0]):
        d, s = dst_idx[k], src_idx[k]
        for b in range(dst.shape[1]):
            dst[d, b] = src[s, b]


def copy_rows(dst: torch.Tensor, dst_idx: np.ndarray, src: torch.Tensor, src_idx: np.ndarray) -> None:
    """``dst[dst_idx] = src[src_idx]`` in place, bit for bit, without the temporary torch would gather into.

    Both tensors are 2-D, contiguous and of one dtype; every index is checked (the kernel does not).
    """
    if dst.dtype != src.dtype or dst.ndim != 2 or dst.shape[1:] != src.shape[1:] \
            or not (dst.is_contiguous() and src.is_contiguous()):
        raise ValueError(f"copy_rows needs contiguous rows of one dtype and width: {dst.dtype} {tuple(dst.shape)}"
                         f" <- {src.dtype} {tuple(src.shape)}")
    dst_idx, src_idx = as_ids(dst_idx), as_ids(src_idx)
    if dst_idx.shape != src_idx.shape:
        raise ValueError(f"{dst_idx.shape[0]} destination rows for {src_idx.shape[0]} source rows")
    for idx, n, what in ((dst_idx, dst.shape[0], "destination"), (src_idx, src.shape[0], "source")):
        if idx.shape[0] and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"{what} row out of range [0, {n})")
    _copy_rows(_bytes(dst), dst_idx, _bytes(src), src_idx)


def _bytes(t: torch.Tensor) -> np.ndarray:
    """A contiguous [n, D] tensor's memory as an [n, D * itemsize] uint8 array (no copy, any dtype)."""
    return t.detach().view(torch.uint8).numpy() if t.shape[1] else np.empty((t.shape[0], 0), dtype=np.uint8)


class PersistentBuffer:
    """Fixed-capacity store of remote feature rows with the paper's scoring and replacement."""

    def __init__(self, capacity: int, feature_dim: int, policy: ScoringPolicy | None = None,
                 dtype: torch.dtype = torch.float32, candidate_factor: int = CANDIDATE_FACTOR):
        if capacity < 1 or feature_dim < 0 or candidate_factor < 1:
            raise ValueError("need capacity >= 1, feature_dim >= 0 (0 = ids and scores only), candidate_factor >= 1")
        self.capacity = capacity
        self.feature_dim = feature_dim
        self.policy = policy or ScoringPolicy()
        self.dtype = dtype
        self._rows = torch.empty((capacity, feature_dim), dtype=dtype)
        self._scores = np.full(capacity, -np.inf)
        self._slot_ids = np.full(capacity, EMPTY, dtype=np.int64)
        self._stamps = np.full(capacity, -1, dtype=np.int64)
        self._table = IdTable(capacity)
        self._candidates = CandidateTracker(self.policy, candidate_factor * capacity)
        self._round = 0
        self._version = 0
        self._occupancy = 0

    @property
    def occupancy(self) -> int:
        """Slots holding a node."""
        return self._occupancy

    @property
    def track_features(self) -> bool:
        """False for an ids-and-scores-only buffer (offline replay, counting)."""
        return self.feature_dim > 0

    @property
    def slot_ids(self) -> np.ndarray:
        """Node id per slot, -1 when empty (read-only view)."""
        return _readonly(self._slot_ids)

    @property
    def scores(self) -> np.ndarray:
        """Score per slot, -inf when empty (read-only view)."""
        return _readonly(self._scores)

    @property
    def version(self) -> int:
        """Changes with every round and replacement: a plan applies only to the state it was made on."""
        return self._version

    @property
    def id_table(self) -> IdTable:
        """The id -> slot table (read it, never write it)."""
        return self._table

    @property
    def candidates(self) -> CandidateTracker:
        """The recently missed ids a replacement would insert."""
        return self._candidates

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Slot of each id, -1 where not buffered."""
        return self._table.lookup(ids)

    def update_scores(self, hit_slots: np.ndarray) -> None:
        """One scoring round: the slots in ``hit_slots`` (negatives ignored) were accessed."""
        hit_slots = as_ids(hit_slots)
        if hit_slots.shape[0] and hit_slots.max() >= self.capacity:
            raise IndexError(f"slot {hit_slots.max()} out of range for capacity {self.capacity}")
        self._round += 1
        self._version += 1
        _score_round(self._scores, self._stamps, hit_slots, self._round, self.policy.delta, self.policy.gamma)

    def record_misses(self, miss_ids: np.ndarray) -> None:
        """One candidate round: these remote ids were sampled but not buffered."""
        self._version += 1
        self._candidates.record(miss_ids, self._table)

    def ids_only(self) -> PersistentBuffer:
        """A copy of slots, scores, id table and candidates without the feature rows (what-if play reads none)."""
        twin = copy.deepcopy(self, {id(self._rows): torch.empty((0, 0), dtype=self.dtype)})
        twin.feature_dim = 0
        return twin

    def stale_count(self) -> int:
        """Slots a replacement may overwrite: empty ones plus entries scored below tau."""
        return int(np.count_nonzero(self._scores < self.policy.tau))

    def plan_replacement(self) -> ReplacementPlan:
        """Evict free then stale slots (lowest score first, ties by slot) for the top candidates.

        Size = min(free + stale, candidates); an empty plan means "skipped".
        """
        stale = np.flatnonzero(self._scores < self.policy.tau)
        k = min(stale.shape[0], len(self._candidates))
        evict = stale[smallest_k(self._scores[stale], stale, k)]
        return ReplacementPlan(evict, self._candidates.top(k), self._version)

    def apply_replacement(self, plan: ReplacementPlan, rows: torch.Tensor | None = None,
                          take: np.ndarray | None = None) -> None:
        """Write the planned rows: ``rows[take[i]]`` (default ``rows[i]``) is the row of ``plan.insert_ids[i]``."""
        if plan.version != self._version:
            raise RuntimeError("stale ReplacementPlan: the buffer changed since it was planned")
        self._write_rows(plan.evict_slots, rows, take)
        self.commit_replacement(plan)

    def commit_replacement(self, plan: ReplacementPlan) -> None:
        """Apply the planned ids and scores only; the rows follow through :meth:`write_rows` (a pipelined fetch:
        the next minibatch is planned against these ids while this one's rows are still being pulled)."""
        if plan.version != self._version:
            raise RuntimeError("stale ReplacementPlan: the buffer changed since it was planned")
        t = self._table
        self._occupancy += _replace(self._slot_ids, self._scores, t.keys, t.vals, t.shift, t.mask,
                                   plan.evict_slots, plan.insert_ids, self.policy.delta)
        t.size = self._occupancy
        self._candidates.remove(plan.insert_ids)
        self._version += 1

    def gather(self, slots: np.ndarray) -> torch.Tensor:
        """Feature rows of the given slots."""
        if not self.track_features:
            raise RuntimeError("this buffer keeps no features (feature_dim=0)")
        return self._rows.index_select(0, torch.from_numpy(as_ids(slots)))

    def gather_into(self, out: torch.Tensor, positions: np.ndarray, slots: np.ndarray) -> None:
        """``out[positions[k]] = row of slots[k]``: rows copied straight to where they are served."""
        if not self.track_features:
            raise RuntimeError("this buffer keeps no features (feature_dim=0)")
        if out.dtype == self.dtype:
            copy_rows(out, positions, self._rows, slots)
        else:  # not on the live path (the buffer takes the DistTensor's dtype)
            out[torch.from_numpy(as_ids(positions))] = self.gather(slots).to(out.dtype)

    def warm_load(self, ids: np.ndarray, rows: torch.Tensor | None = None) -> int:
        """Fill free slots with ids in the given order (degree-ordered warm start); returns how many.

        Ids already buffered are skipped; loading stops when the buffer is full.
        """
        ids = as_ids(ids)
        if np.unique(ids).shape[0] != ids.shape[0]:
            raise ValueError("warm_load ids must be unique")
        take = np.flatnonzero(self.lookup(ids) < 0)[: self.capacity - self._occupancy]
        free = np.flatnonzero(self._slot_ids == EMPTY)[: take.shape[0]]
        plan = ReplacementPlan(free, ids[take], self._version)
        self.apply_replacement(plan, None if rows is None else rows[torch.from_numpy(take)])
        return len(plan)

    def write_rows(self, plan: ReplacementPlan, rows: torch.Tensor, take: np.ndarray | None = None) -> None:
        """The rows of a replacement committed by :meth:`commit_replacement`: ``rows[take[i]]`` (default
        ``rows[i]``) into the slot that took ``plan.insert_ids[i]``."""
        self._write_rows(plan.evict_slots, rows, take)

    def _write_rows(self, slots: np.ndarray, rows: torch.Tensor | None, take: np.ndarray | None) -> None:
        """Copy ``rows[take]`` (default: ``rows``) into slots, checking they match the plan and the buffer's layout."""
        if rows is None:
            if self.track_features and slots.shape[0]:
                raise ValueError("this buffer keeps features: pass the rows of the inserted ids")
            return
        n = slots.shape[0] if take is None else rows.shape[0]  # with ``take``, rows may hold more than the plan
        if tuple(rows.shape) != (n, self.feature_dim):
            raise ValueError(f"rows shape {tuple(rows.shape)} != ({n}, {self.feature_dim})")
        if self.track_features:
            take = np.arange(slots.shape[0]) if take is None else take
            copy_rows(self._rows, slots, rows.to(self.dtype).contiguous(), take)


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view
