"""The persistent buffer against a pure-Python model of the paper's policy, op by op."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy

UNIVERSE = 24
TABLE = torch.arange(UNIVERSE * 3, dtype=torch.float32).reshape(UNIVERSE, 3)  # the "true" feature rows


class ModelBuffer:
    """Dicts and lists only: the spec of scoring, candidates and replacement selection."""

    def __init__(self, capacity: int, policy: ScoringPolicy, factor: int):
        self.p = policy
        self.ids: list[int | None] = [None] * capacity
        self.scores = [-math.inf] * capacity
        self.cands: dict[int, float] = {}
        self.limit = factor * capacity

    def slot_of(self) -> dict[int, int]:
        return {i: s for s, i in enumerate(self.ids) if i is not None}

    def update_scores(self, hit_slots: list[int]) -> None:
        hit = {s for s in hit_slots if s >= 0}
        self.scores = [x + self.p.delta if s in hit else x * self.p.gamma for s, x in enumerate(self.scores)]

    def record_misses(self, miss: list[int]) -> None:
        buffered = self.slot_of()
        seen = {m for m in miss if m in self.cands and m not in buffered}
        new = [m for m in miss if m not in self.cands and m not in buffered]
        for c in list(self.cands):
            if c in seen:
                self.cands[c] += self.p.delta
            else:
                self.cands[c] *= self.p.gamma
                if self.cands[c] < self.p.tau:
                    del self.cands[c]
        if len(self.cands) + len(new) > self.limit:
            keep = max(0, min(self.limit // 2, self.limit - len(new)))
            self.cands = dict(sorted(self.cands.items(), key=lambda kv: (-kv[1], kv[0]))[:keep])
        for m in new:
            if len(self.cands) >= self.limit:
                break
            self.cands.setdefault(m, self.p.delta)

    def plan(self) -> tuple[set[int], set[int]]:
        stale = sorted((x, s) for s, x in enumerate(self.scores) if x < self.p.tau)
        best = sorted(self.cands.items(), key=lambda kv: (-kv[1], kv[0]))
        k = min(len(stale), len(best))
        return {s for _, s in stale[:k]}, {i for i, _ in best[:k]}

    def apply(self, slots: list[int], ids: list[int]) -> None:
        for s, i in zip(slots, ids):
            self.ids[s], self.scores[s] = i, self.p.delta
            self.cands.pop(i, None)


def assert_agree(buf: PersistentBuffer, model: ModelBuffer) -> None:
    ids = buf.slot_ids
    occupied = ids[ids >= 0]
    assert buf.occupancy == occupied.shape[0] <= buf.capacity
    assert np.unique(occupied).shape[0] == occupied.shape[0], "an id is buffered twice"
    assert ids.tolist() == [-1 if i is None else i for i in model.ids]
    assert buf.scores.tolist() == model.scores  # exact
    slot_of = model.slot_of()
    universe = np.arange(UNIVERSE)
    assert buf.lookup(universe).tolist() == [slot_of.get(i, -1) for i in range(UNIVERSE)]
    assert buf.candidates.snapshot() == model.cands
    assert not set(model.cands) & set(slot_of), "a candidate is also buffered"
    assert buf.stale_count() == sum(x < model.p.tau for x in model.scores)
    if buf.track_features and occupied.shape[0]:
        slots = np.flatnonzero(ids >= 0)
        assert torch.equal(buf.gather(slots), TABLE[torch.from_numpy(ids[slots])])


id_lists = st.lists(st.integers(0, UNIVERSE - 1), max_size=10)
op = st.one_of(
    st.tuples(st.just("access"), id_lists),  # a minibatch: lookup, then score hits and record misses
    st.tuples(st.just("record"), id_lists),  # record_misses alone (buffered ids included on purpose)
    st.tuples(st.just("score"), st.lists(st.integers(-1, 5), max_size=6)),
    st.tuples(st.just("replace"), st.just([])),
    st.tuples(st.just("warm"), st.lists(st.integers(0, UNIVERSE - 1), unique=True, max_size=6)),
)


@settings(max_examples=250, deadline=None)
@given(
    capacity=st.integers(1, 6),
    factor=st.integers(1, 3),
    gamma=st.sampled_from([0.3, 0.7, 0.95]),
    tau=st.sampled_from([None, 0.5]),
    features=st.booleans(),
    ops=st.lists(op, max_size=40),
)
def test_random_sequences_keep_invariants_and_match_the_model(capacity, factor, gamma, tau, features, ops):
    policy = ScoringPolicy(gamma=gamma, tau=tau)
    buf = PersistentBuffer(capacity, 3 if features else 0, policy, candidate_factor=factor)
    model = ModelBuffer(capacity, policy, factor)
    for kind, arg in ops:
        ids = np.array(arg, dtype=np.int64)
        if kind == "access":
            slots = buf.lookup(ids)
            buf.update_scores(slots[slots >= 0])
            model.update_scores(slots.tolist())
            buf.record_misses(ids[slots < 0])
            model.record_misses(ids[slots < 0].tolist())
        elif kind == "record":
            buf.record_misses(ids)
            model.record_misses(arg)
        elif kind == "score":
            ids = ids[ids < capacity]
            buf.update_scores(ids)
            model.update_scores(ids.tolist())
        elif kind == "replace":
            plan = buf.plan_replacement()
            assert (set(plan.evict_slots.tolist()), set(plan.insert_ids.tolist())) == model.plan()
            buf.apply_replacement(plan, TABLE[torch.from_numpy(plan.insert_ids)] if features else None)
            model.apply(plan.evict_slots.tolist(), plan.insert_ids.tolist())
        else:
            before = buf.slot_ids.copy()
            n = buf.warm_load(ids, TABLE[torch.from_numpy(ids)] if features else None)
            new = np.flatnonzero(before != buf.slot_ids)
            assert n == new.shape[0] == min(capacity - (before >= 0).sum(), np.isin(ids, before, invert=True).sum())
            model.apply(new.tolist(), buf.slot_ids[new].tolist())
        assert_agree(buf, model)


def _filled(capacity: int, ids: list[int], policy: ScoringPolicy | None = None) -> PersistentBuffer:
    buf = PersistentBuffer(capacity, 3, policy)
    buf.warm_load(np.array(ids), TABLE[ids])
    return buf


def test_plan_takes_free_slots_then_lowest_scores_and_best_candidates():
    buf = _filled(5, [0, 1, 2, 3], ScoringPolicy(gamma=0.5, tau=0.3))
    buf.update_scores(np.array([0, 1]))                 # 0,1: 2.0   2,3: 0.5
    buf.update_scores(np.array([0, 2]))                 # 0: 3.0 1: 1.0 2: 1.5 3: 0.25 (stale)
    buf.update_scores(np.array([0, 1, 2]))              # 3: 0.125
    buf.record_misses(np.array([10, 11, 12]))           # 10,11,12: 1.0
    buf.record_misses(np.array([11, 12]))               # 10: 0.5, 11,12: 2.0
    plan = buf.plan_replacement()                       # room: slot 4 (free) + slot 3 (stale)
    assert sorted(plan.evict_slots.tolist()) == [3, 4]
    assert sorted(plan.insert_ids.tolist()) == [11, 12]


def test_ties_are_broken_by_slot_and_by_id():
    buf = _filled(4, [0, 1, 2, 3], ScoringPolicy(gamma=0.5, tau=0.9))
    buf.update_scores(np.empty(0, dtype=np.int64))      # all four stale with equal scores
    buf.record_misses(np.array([9, 7, 8]))              # three equal candidates
    plan = buf.plan_replacement()
    assert sorted(plan.evict_slots.tolist()) == [0, 1, 2]
    assert sorted(plan.insert_ids.tolist()) == [7, 8, 9]
    buf2 = _filled(4, [0, 1, 2, 3], ScoringPolicy(gamma=0.5, tau=0.9))
    buf2.update_scores(np.empty(0, dtype=np.int64))
    buf2.record_misses(np.array([5, 9, 7, 8, 6]))
    assert sorted(buf2.plan_replacement().insert_ids.tolist()) == [5, 6, 7, 8]


def test_no_stale_entry_means_an_empty_plan():
    buf = _filled(2, [0, 1])
    buf.update_scores(np.array([0, 1]))
    buf.record_misses(np.array([5, 6]))
    plan = buf.plan_replacement()
    assert len(plan) == 0
    buf.apply_replacement(plan, None)
    assert buf.slot_ids.tolist() == [0, 1]


def test_a_plan_is_refused_once_the_buffer_moved_on():
    buf = PersistentBuffer(2, 3)
    buf.record_misses(np.array([4, 5]))
    plan = buf.plan_replacement()
    buf.record_misses(np.array([6]))
    with pytest.raises(RuntimeError, match="stale ReplacementPlan"):
        buf.apply_replacement(plan, TABLE[[4, 5]])


def test_bad_rows_and_slots_are_refused():
    buf = PersistentBuffer(2, 3)
    buf.record_misses(np.array([4, 5]))
    plan = buf.plan_replacement()
    with pytest.raises(ValueError):
        buf.apply_replacement(plan, None)
    with pytest.raises(ValueError):
        buf.apply_replacement(plan, torch.zeros(2, 4))
    with pytest.raises(IndexError):
        buf.update_scores(np.array([2]))
    with pytest.raises(ValueError):
        buf.record_misses(np.array([-5]))
    with pytest.raises(ValueError):
        buf.warm_load(np.array([1, 1]), TABLE[[1, 1]])
    with pytest.raises(RuntimeError):
        PersistentBuffer(2, 0).gather(np.array([0]))


def test_candidate_memory_is_bounded_and_keeps_the_strongest():
    buf = PersistentBuffer(2, 0, candidate_factor=2)   # at most 4 candidates
    buf.record_misses(np.array([1, 2]))
    buf.record_misses(np.array([1, 2, 3, 4]))           # 1,2: 2.0  3,4: 1.0
    buf.record_misses(np.array([5, 6]))                 # full: keep the strongest 4//2, then add 2
    assert buf.candidates.snapshot() == {1: 1.9, 2: 1.9, 5: 1.0, 6: 1.0}
    buf.record_misses(np.array([7, 8, 9]))              # keep 4-3 so that all three new ones fit
    assert buf.candidates.snapshot() == {1: 1.9 * 0.95, 7: 1.0, 8: 1.0, 9: 1.0}


def test_rows_follow_the_buffer_dtype():
    buf = PersistentBuffer(2, 3, dtype=torch.float16)
    buf.warm_load(np.array([3]), TABLE[[3]])
    out = buf.gather(buf.lookup(np.array([3])))
    assert out.dtype == torch.float16 and torch.equal(out, TABLE[[3]].half())


def test_an_ids_only_copy_holds_the_state_without_rows_and_leaves_the_buffer_whole():
    buf = PersistentBuffer(4, 3)
    buf.warm_load(np.array([10, 11]), torch.arange(6, dtype=torch.float32).reshape(2, 3))
    rows = buf.gather(np.array([0, 1])).clone()
    twin = buf.ids_only()
    assert (twin.feature_dim, twin.occupancy) == (0, 2) and twin._rows.numel() == 0
    assert np.array_equal(twin.slot_ids, buf.slot_ids) and np.array_equal(twin.scores, buf.scores)
    twin.update_scores(np.array([0]))
    assert not np.array_equal(twin.scores, buf.scores)  # a copy: playing on it never touches the buffer
    assert torch.equal(buf.gather(np.array([0, 1])), rows) and buf.feature_dim == 3
