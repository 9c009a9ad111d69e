"""The per-minibatch buffer protocol, free of DistDGL: shared by the live prefetcher and replay.

Per minibatch, in this order:

1. ``prepare``: split the input nodes into local and remote (ids are contiguous per
   partition, so ownership is a range check), look the remote ones up, and play one scoring
   round (hits +delta, the rest of the buffer x gamma; misses feed the candidate tracker).
   Hits are decided HERE, before any replacement of this minibatch. With ``replace`` it
   plans the replacement (stale and free slots <- best candidates, this minibatch's misses
   included) and returns the ids to pull in ONE read: every input in input order, each hit
   standing in as this partition's first local id (read locally: no traffic), followed by
   the inserted ids that are not already misses.
2. the caller reads ``plan.pull_ids`` (one DistTensor read, or nothing in replay);
3. ``complete``: assemble the input features IN the read's rows (row i is input i: only the
   hits are copied, from the buffer over their stand-ins), THEN apply the replacement from
   the pulled rows, so it serves later minibatches only. Each minibatch's features are the
   tensor its read returned: nothing is reused, so an earlier minibatch's features never change.

``prepare`` and ``complete`` must alternate, from one thread at a time (the kernels release the
GIL, so that thread runs beside training): a replacement planned before another ``prepare``
is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from rudder_agent.buffer.idtable import IdTable, as_ids
from rudder_agent.buffer.keep import DecayKeep, KeepPolicy
from rudder_agent.buffer.persistent import PersistentBuffer, ReplacementPlan


@dataclass(frozen=True, slots=True)
class FetchCounts:
    """Row counts of one minibatch, named as in MinibatchMetrics.

    ``stale`` (free slots + entries below tau) is taken after this minibatch's scoring round,
    ``stale`` and ``occupancy`` before its replacement is applied.
    """

    input_nodes: int
    remote_inputs: int
    hits: int
    misses: int
    replace_rows: int
    comm_rows: int
    stale: int
    occupancy: int
    capacity: int


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What to pull for one minibatch and how to assemble it afterwards."""

    input_nodes: np.ndarray  # int64, as given
    pull_ids: np.ndarray  # read these rows, in this order: the inputs (hits as a local stand-in), then extra insert ids
    hit_pos: np.ndarray  # input position of each buffer hit ...
    hit_slots: np.ndarray  # ... and its buffer slot
    replacement: ReplacementPlan | None  # None when not asked to replace; empty when skipped
    insert_src: np.ndarray  # row of pull_ids holding each replacement.insert_ids[i]
    counts: FetchCounts
    staged: torch.Tensor | None = None  # a shared buffer's hit rows, copied out when the hits were decided
    share: object = None  # a shared buffer's ShareStats (buffer/shared.py)


_NONE = np.empty(0, dtype=np.int64)


def partition_start(bounds: np.ndarray, part: int) -> int:
    """The first global id of partition ``part`` (``bounds``: cumulative upper id bounds, ids contiguous per
    partition)."""
    return int(bounds[part - 1]) if part else 0


class BufferEngine:
    """Runs the buffer protocol for one trainer; ``buffer=None`` is DistDGL as shipped."""

    def __init__(self, buffer: PersistentBuffer | None, part_bounds: np.ndarray, my_part: int,
                 keep: KeepPolicy | None = None, lane: int = 0):
        """``lane``: this trainer's index among the trainers sharing ``buffer`` (0 when it is its own)."""
        bounds = as_ids(part_bounds)
        if bounds.ndim != 1 or not 0 <= my_part < bounds.shape[0] or np.any(np.diff(bounds) < 0):
            raise ValueError("part_bounds must be non-decreasing cumulative upper bounds and my_part one of them")
        self.buffer = buffer
        self.keep = keep or DecayKeep()
        self.keep_cpu_s = 0.0  # of the last prepare: the keep policy's round and plan, CPU time of the calling thread
        self.my_part = my_part
        self.lane = lane
        self.local_lo = partition_start(bounds, my_part)
        self.local_hi = int(bounds[my_part])
        if buffer is not None and buffer.track_features and self.local_hi == self.local_lo:
            raise ValueError("a buffer with features needs a partition that owns a node (hits read a local stand-in)")

    def prepare(self, input_nodes: np.ndarray | torch.Tensor, replace: bool,
                upcoming: Sequence[np.ndarray] = ()) -> FetchPlan:
        """Classify, look up, score and (if ``replace``) plan; see the module docstring for the order.

        ``upcoming``: input ids of the minibatches already sampled after this one (the look-ahead window).
        """
        ids = as_ids(input_nodes.numpy() if isinstance(input_nodes, torch.Tensor) else input_nodes)
        remote_pos = np.flatnonzero((ids < self.local_lo) | (ids >= self.local_hi))
        remote_pos = remote_pos[np.argsort(ids[remote_pos], kind="stable")]  # id order: state depends on the input SET only
        buf = self.buffer
        if buf is None:
            r = remote_pos.shape[0]
            counts = FetchCounts(ids.shape[0], r, 0, r, 0, r, 0, 0, 0)
            return FetchPlan(ids, ids, _NONE, _NONE, None, _NONE, counts)

        slots = buf.lookup(ids[remote_pos])
        hit = slots >= 0
        hit_pos, hit_slots = remote_pos[hit], slots[hit]
        miss_pos = remote_pos[~hit]
        miss_ids = ids[miss_pos]
        tic = time.thread_time()
        stale = self.keep.round(buf, hit_slots, miss_ids, ids[remote_pos], upcoming, (self.local_lo, self.local_hi),
                                self.lane)
        replacement = self.keep.plan(buf) if replace else None
        self.keep_cpu_s = time.thread_time() - tic

        base = ids.copy()
        base[hit_pos] = self.local_lo  # a local row in the hit's place: complete() writes the hit over it
        insert_src, extra = _NONE, _NONE
        if replacement is not None and len(replacement):
            # where each inserted id's row will be: at its miss's input position, else appended
            insert_src = IdTable.of(miss_ids, miss_pos).lookup(replacement.insert_ids)
            new = insert_src < 0
            extra = replacement.insert_ids[new]
            insert_src[new] = base.shape[0] + np.arange(extra.shape[0])
        pull_ids = np.concatenate((base, extra)) if extra.shape[0] else base

        misses, replace_rows = miss_ids.shape[0], extra.shape[0]
        counts = FetchCounts(ids.shape[0], remote_pos.shape[0], hit_pos.shape[0], misses, replace_rows,
                             misses + replace_rows, stale, buf.occupancy, buf.capacity)
        return FetchPlan(ids, pull_ids, hit_pos, hit_slots, replacement, insert_src, counts)

    def complete(self, plan: FetchPlan, pulled_rows: torch.Tensor | None) -> torch.Tensor | None:
        """Input features in input order, then the replacement; None in replay (``pulled_rows=None``).

        The features are the first rows of ``pulled_rows`` (the read's own fresh tensor), hits written in place.
        """
        if pulled_rows is None:  # replay: ids only (a buffer that keeps features refuses)
            if self.buffer is not None and plan.replacement is not None:
                self.buffer.apply_replacement(plan.replacement, None)
            return None
        self._check(plan, pulled_rows)
        self.commit(plan)
        return self.fill(plan, pulled_rows)

    def commit(self, plan: FetchPlan) -> None:
        """The planned replacement's ids and scores: the next :meth:`prepare` sees them. Its rows come with
        :meth:`fill`, which a pipelined fetch runs later, on another thread, in the order the plans were made."""
        if self.buffer is not None and plan.replacement is not None:
            self.buffer.commit_replacement(plan.replacement)

    def fill(self, plan: FetchPlan, pulled_rows: torch.Tensor) -> torch.Tensor:
        """The input features from the pulled rows (hits from the buffer), then the committed replacement's rows.

        Fills run in plan order, so a hit is always read after the fill that wrote its row and before any later
        fill overwrites it: the features are the ones an unpipelined fetch serves.
        """
        self._check(plan, pulled_rows)
        pulled_rows = pulled_rows.contiguous()
        out = self.assemble(plan, pulled_rows)
        if plan.replacement is not None and len(plan.replacement):
            self.buffer.write_rows(plan.replacement, pulled_rows, take=plan.insert_src)
        return out

    @staticmethod
    def _check(plan: FetchPlan, pulled_rows: torch.Tensor) -> None:
        if pulled_rows.shape[0] != plan.pull_ids.shape[0]:
            raise ValueError(f"pulled {pulled_rows.shape[0]} rows for {plan.pull_ids.shape[0]} pull ids")

    def assemble(self, plan: FetchPlan, pulled_rows: torch.Tensor) -> torch.Tensor:
        """The input features in place: the first ``len(input_nodes)`` pulled rows, hits copied over their stand-ins."""
        out = pulled_rows[: plan.input_nodes.shape[0]]
        if plan.hit_pos.shape[0]:
            self.buffer.gather_into(out, plan.hit_pos, plan.hit_slots)
        return out


def warm_up(make_keep: Callable[[], KeepPolicy], window: int) -> None:
    """Compile (or load from Numba's cache) every kernel a minibatch step runs, on a toy stream, before training.

    Otherwise the first minibatch pays for it: seconds on a fresh install, ~1 s with the cache.
    """
    engine = BufferEngine(PersistentBuffer(2, 1), np.array([4, 16]), 0, make_keep())
    stream = [np.array(ids) for ids in ([0, 5, 6], [1, 6, 7], [2, 7, 8], [3, 5, 8])]
    for i, ids in enumerate(stream):
        plan = engine.prepare(ids, replace=True, upcoming=stream[i + 1: i + 1 + window])
        engine.complete(plan, torch.zeros((plan.pull_ids.shape[0], 1)))
