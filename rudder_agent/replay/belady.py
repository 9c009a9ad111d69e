"""Belady's MIN for set requests: the fewest remote rows any buffer of a given capacity could fetch.

Model: minibatch t requests a SET R_t of remote ids at once; those in the buffer are hits,
the others are fetched (one row each). After t the buffer may keep any C of the ids it held
or just fetched (insertion is free beyond the fetch; fetching ahead of use never saves a
row, so on-demand fetching loses nothing). Keeping the C ids whose next request comes
soonest, and never keeping an id that is not requested again (bypass), is optimal: the
usual exchange argument for MIN, since ids requested together are interchangeable.
Each step costs O(C + |R_t|) vectorised work, so ~140 minibatches x ~8k ids take well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Bound:
    """Hits and fetched rows of an ideal buffer on a stream."""

    remote_inputs: int
    hits: int
    comm_rows: int

    @property
    def hit_pct(self) -> float:
        return 100.0 * self.hits / self.remote_inputs if self.remote_inputs else 0.0


def compulsory(stream: Sequence[np.ndarray]) -> Bound:
    """Each distinct id fetched once (an unbounded buffer that starts empty): no buffer can fetch less."""
    remote = int(sum(len(r) for r in stream))
    unique = int(np.unique(np.concatenate(stream)).shape[0]) if stream else 0
    return Bound(remote, remote - unique, unique)


def next_use(stream: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Flattened stream as compact ids, step offsets, the next step each id is requested (T = never), T."""
    T = len(stream)
    sizes = np.fromiter((len(r) for r in stream), dtype=np.int64, count=T)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    if not offsets[-1]:
        return np.empty(0, np.int64), offsets, np.empty(0, np.int64), T
    flat = np.concatenate(stream)
    steps = np.repeat(np.arange(T, dtype=np.int64), sizes)
    _, ids = np.unique(flat, return_inverse=True)
    order = np.lexsort((steps, ids))  # by id, then step
    nxt = np.full(flat.shape[0], T, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    nxt[order[:-1][same]] = steps[order[1:][same]]
    if np.any(nxt[order[:-1][same]] == steps[order[:-1][same]]):
        raise ValueError("each minibatch's remote ids must be distinct (a set)")
    return ids, offsets, nxt, T


def belady(stream: Sequence[np.ndarray], capacity: int) -> Bound:
    """Belady's MIN with bypass on a stream of id sets, for a buffer of ``capacity`` rows starting empty."""
    ids, offsets, nxt, T = next_use(stream)
    n_ids = int(ids.max()) + 1 if ids.shape[0] else 0
    key = np.full(n_ids, T, dtype=np.int64)  # next request of each buffered id
    held = np.zeros(n_ids, dtype=np.bool_)
    asked = np.zeros(n_ids, dtype=np.bool_)
    members = np.empty(0, dtype=np.int64)
    hits = 0
    for t in range(T):
        r, k = ids[offsets[t]: offsets[t + 1]], nxt[offsets[t]: offsets[t + 1]]
        hits += int(np.count_nonzero(held[r]))
        asked[r] = True
        kept = members[~asked[members]]
        asked[r] = False
        cand, ck = np.concatenate((kept, r)), np.concatenate((key[kept], k))
        reused = ck < T
        cand, ck = cand[reused], ck[reused]
        if cand.shape[0] > capacity:
            best = np.argpartition(ck, capacity - 1)[:capacity] if capacity else np.empty(0, np.int64)
            cand, ck = cand[best], ck[best]
        held[members] = False
        held[cand] = True
        key[cand] = ck
        members = cand
    remote = int(ids.shape[0])
    return Bound(remote, hits, remote - hits)
