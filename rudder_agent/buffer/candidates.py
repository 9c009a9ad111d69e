"""Replacement candidates: recently missed remote nodes ranked by a decayed miss frequency.

A candidate's score follows the buffer's own policy (paper §2.1): +delta in a round in which
it is missed, x gamma in a round in which it is not, and it is forgotten once below tau, so
"recent" means "missed within about the last 25 rounds" with the default policy. Memory is
bounded by ``max_entries`` (a multiple of the buffer capacity): when a round brings more new
ids than there is room for, the weakest half is dropped in one O(n) pass.
"""

from __future__ import annotations

import numba
import numpy as np

from rudder_agent.buffer.idtable import IdTable, _delete, _find, _insert, as_ids
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.buffer.select import smallest_k


@numba.njit(cache=True, nogil=True)
def _mark_and_decay(ids, scores, stamps, n, keys, vals, shift, mask, bkeys, bshift, bmask,
                    miss, fresh, rnd, delta, gamma, tau):
    """Credit tracked misses once, decay the rest, forget those below tau; count untracked misses."""
    n_new = 0
    for m in range(miss.shape[0]):
        key = miss[m]
        fresh[m] = False
        if _find(bkeys, key, bshift, bmask) >= 0:
            continue  # buffered: not a miss, never a candidate
        c = _find(keys, key, shift, mask)
        if c < 0:
            fresh[m] = True
            n_new += 1
        elif stamps[vals[c]] != rnd:
            stamps[vals[c]] = rnd
            scores[vals[c]] += delta
    # downward scan with swap-remove: the entry moved into p was already visited
    for p in range(n - 1, -1, -1):
        if stamps[p] == rnd:
            continue
        scores[p] *= gamma
        if scores[p] < tau:
            _delete(keys, vals, ids[p], shift, mask)
            n -= 1
            if p != n:
                ids[p], scores[p], stamps[p] = ids[n], scores[n], stamps[n]
                vals[_find(keys, ids[p], shift, mask)] = p
    return n, n_new


@numba.njit(cache=True, nogil=True)
def _insert_fresh(ids, scores, stamps, n, limit, keys, vals, shift, mask, miss, fresh, rnd, delta):
    """Track the untracked misses of this round, in order, while there is room."""
    for m in range(miss.shape[0]):
        if n >= limit:
            break
        if fresh[m] and _insert(keys, vals, miss[m], n, shift, mask):
            ids[n], scores[n], stamps[n] = miss[m], delta, rnd
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _remove(ids, scores, stamps, n, keys, vals, shift, mask, gone):
    """Forget the given ids (swap-remove keeps the arrays dense)."""
    for g in range(gone.shape[0]):
        p = _delete(keys, vals, gone[g], shift, mask)
        if p < 0:
            continue
        n -= 1
        if p != n:
            ids[p], scores[p], stamps[p] = ids[n], scores[n], stamps[n]
            vals[_find(keys, ids[p], shift, mask)] = p
    return n


class CandidateTracker:
    """Bounded set of recently missed node ids with their decayed miss frequency."""

    def __init__(self, policy: ScoringPolicy, max_entries: int):
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.policy = policy
        self.max_entries = max_entries
        self._table = IdTable(max_entries)
        self._ids = np.empty(max_entries, dtype=np.int64)
        self._scores = np.empty(max_entries, dtype=np.float64)
        self._stamps = np.full(max_entries, -1, dtype=np.int64)
        self._n = 0
        self._round = 0

    def __len__(self) -> int:
        return self._n

    def record(self, miss_ids: np.ndarray, buffered: IdTable) -> None:
        """One round: ids in ``miss_ids`` (minus those in ``buffered``) were missed, others were not."""
        miss = as_ids(miss_ids)
        if miss.shape[0] and miss.min() < 0:
            raise ValueError("node ids must be >= 0")
        self._round += 1
        p, t, b = self.policy, self._table, buffered
        fresh = np.empty(miss.shape[0], dtype=np.bool_)
        self._n, n_new = _mark_and_decay(
            self._ids, self._scores, self._stamps, self._n, t.keys, t.vals, t.shift, t.mask,
            b.keys, b.shift, b.mask, miss, fresh, self._round, p.delta, p.gamma, p.tau)
        if self._n + n_new > self.max_entries:
            self._keep_strongest(max(0, min(self.max_entries // 2, self.max_entries - n_new)))
        self._n = _insert_fresh(self._ids, self._scores, self._stamps, self._n, self.max_entries,
                                t.keys, t.vals, t.shift, t.mask, miss, fresh, self._round, p.delta)
        t.size = self._n

    def top(self, k: int) -> np.ndarray:
        """Ids of the k highest-scored candidates (ties: smaller id first), unordered."""
        n = self._n
        return self._ids[smallest_k(-self._scores[:n], self._ids[:n], k)]

    def remove(self, ids: np.ndarray) -> None:
        """Forget ids (they entered the buffer)."""
        t = self._table
        self._n = _remove(self._ids, self._scores, self._stamps, self._n, t.keys, t.vals, t.shift, t.mask,
                          as_ids(ids))
        t.size = self._n

    def snapshot(self) -> dict[int, float]:
        """id -> score of every candidate (tests and debugging; O(n) Python)."""
        return dict(zip(self._ids[: self._n].tolist(), self._scores[: self._n].tolist()))

    def _keep_strongest(self, keep: int) -> None:
        """Drop all but the ``keep`` highest-scored candidates and rebuild the id table."""
        n = self._n
        idx = smallest_k(-self._scores[:n], self._ids[:n], keep)
        self._ids[:keep] = self._ids[idx]
        self._scores[:keep] = self._scores[idx]
        self._stamps[:keep] = self._stamps[idx]
        self._n = keep
        self._table.clear()
        self._table.insert(self._ids[:keep], np.arange(keep, dtype=np.int64))
