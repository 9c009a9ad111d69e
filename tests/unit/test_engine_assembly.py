"""The in-place assembly of a minibatch's features (issue 16): exact rows, no reuse, no allocation.

``complete`` serves the features in the pulled rows' own tensor (row i is input i; each hit is read as a
local stand-in and overwritten from the buffer) and writes inserted rows straight from the pulled rows
into their slots with one row copy each.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from benchmarks.bench_fetch_path import OldEngine
from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.settings.keep import keep_policy
from rudder_agent.buffer.persistent import copy_rows

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler counts allocations here: keep its log lines out

NUM_NODES, DIM = 400, 5
BOUNDS = np.array([100, 250, 400])  # 3 partitions; ours is 1: ids 100..249
MY_PART = 1


def table(dtype: torch.dtype, dim: int = DIM) -> torch.Tensor:
    """The "DistTensor": distinct rows in every dtype (random bits through float32)."""
    rows = torch.randn(NUM_NODES, dim, generator=torch.Generator().manual_seed(3)) * 100
    return rows.to(dtype)


def is_remote(ids: np.ndarray) -> np.ndarray:
    return np.searchsorted(BOUNDS, ids, side="right") != MY_PART


minibatch = st.tuples(st.lists(st.integers(0, NUM_NODES - 1), unique=True, max_size=60), st.booleans())


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 40),
    policy=st.sampled_from(["decay", "lfu", "lookahead"]),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int64]),
    stream=st.lists(minibatch, min_size=1, max_size=25),
)
def test_assembled_features_equal_a_direct_gather(capacity, policy, dtype, stream):
    """Random minibatches and replacements: every served row and every buffered row is the table's, bit for bit."""
    feats = table(dtype)
    engine = BufferEngine(PersistentBuffer(capacity, DIM, ScoringPolicy(gamma=0.6), dtype=dtype), BOUNDS, MY_PART,
                          keep_policy(policy).build(3))
    batches = [np.array(ids, dtype=np.int64) for ids, _ in stream]
    for i, (ids, (_, replace)) in enumerate(zip(batches, stream)):
        plan = engine.prepare(ids, replace, upcoming=batches[i + 1: i + 4])
        x = engine.complete(plan, feats[torch.from_numpy(plan.pull_ids)])
        assert x.dtype == dtype and torch.equal(x, feats[torch.from_numpy(ids)])
        held = engine.buffer.slot_ids >= 0
        buffered = torch.from_numpy(engine.buffer.slot_ids[held])
        assert torch.equal(engine.buffer.gather(np.flatnonzero(held)), feats[buffered])


def replacing_stream(n: int, seed: int = 0):
    """Skewed minibatches over a small remote set, replacing every other one: hits and evictions galore."""
    rng = np.random.default_rng(seed)
    remote = np.concatenate((np.arange(0, 100), np.arange(250, 400)))
    p = 1.0 / np.arange(1, remote.shape[0] + 1)
    for b in range(n):
        far = rng.choice(np.roll(remote, 7 * b), size=40, replace=False, p=p / p.sum())
        near = rng.choice(np.arange(100, 250), size=20, replace=False)
        yield rng.permutation(np.concatenate((far, near))), b % 2 == 1


def test_features_held_while_later_minibatches_are_served_never_change():
    """The prefetcher prepares minibatch i+1 (and later ones) while the trainer still holds minibatch i's x.

    Every x is kept while the stream goes on, with replacements overwriting the very slots that served its
    hits; none of them may change (a reused output tensor, or a view of the buffer, would).
    """
    feats = table(torch.float32)
    engine = BufferEngine(PersistentBuffer(30, DIM, ScoringPolicy(gamma=0.5)), BOUNDS, MY_PART,
                          keep_policy("lfu").build(0))
    held: list[tuple[torch.Tensor, torch.Tensor]] = []
    overwritten_hit_slots = 0
    served_from: list[set[int]] = []
    for ids, replace in replacing_stream(120):
        plan = engine.prepare(ids, replace)
        x = engine.complete(plan, feats[torch.from_numpy(plan.pull_ids)])
        if plan.replacement is not None:
            evicted = set(plan.replacement.evict_slots.tolist())
            overwritten_hit_slots += sum(len(evicted & s) for s in served_from)
        served_from.append(set(plan.hit_slots.tolist()))
        held.append((x, feats[torch.from_numpy(ids)]))
        for j, (x_old, truth) in enumerate(held):
            assert torch.equal(x_old, truth), f"minibatch {j}'s features changed by minibatch {len(held) - 1}"
    assert overwritten_hit_slots > 100, "the stream must overwrite slots that served earlier hits"
    assert sum(len(s) for s in served_from) > 300


def allocations(engine: BufferEngine, n: int = 30) -> tuple[int, int]:
    """Tensor allocations inside complete() (aten::empty / empty_strided), and the hits served, over a stream."""
    feats = table(torch.float32)
    count = hits = 0
    for ids, replace in replacing_stream(n, seed=1):
        plan = engine.prepare(ids, replace)
        rows = feats[torch.from_numpy(plan.pull_ids)]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            if isinstance(engine, OldEngine):
                engine.assemble(plan, rows)
                if plan.replacement is not None:
                    engine.write_replacement(plan, rows)
            else:
                engine.complete(plan, rows)
        count += sum(e.name in ("aten::empty", "aten::empty_strided") for e in prof.events())
        hits += plan.counts.hits
    return count, hits


def test_complete_allocates_no_tensor_where_the_old_path_allocated_per_minibatch():
    def engine(cls):
        return cls(PersistentBuffer(30, DIM, ScoringPolicy(gamma=0.5)), BOUNDS, MY_PART, keep_policy("lfu").build(0))

    new, hits = allocations(engine(BufferEngine))
    old, _ = allocations(engine(OldEngine))
    assert hits > 50
    assert new == 0, f"complete() allocated {new} tensors over 30 minibatches"
    assert old >= 30, "the old path (kept in benchmarks/bench_fetch_path.py) allocated per minibatch"


def test_copy_rows_checks_every_index_and_copies_bits():
    src = torch.tensor([[float("nan"), -0.0], [1.5, 2.5], [3.0, 4.0]])
    src.view(torch.int32)[0, 0] = 0x7FC00123  # a NaN with a payload: copied as bits, not as a value
    dst = torch.zeros(4, 2)
    copy_rows(dst, np.array([3, 0]), src, np.array([0, 2]))
    assert torch.equal(dst.view(torch.int32)[3], src.view(torch.int32)[0])
    assert torch.equal(dst[0], src[2]) and torch.equal(dst[1:3], torch.zeros(2, 2))
    for bad_dst, bad_src in (([4], [0]), ([-1], [0]), ([0], [3]), ([0], [-1])):
        with pytest.raises(IndexError):
            copy_rows(dst, np.array(bad_dst), src, np.array(bad_src))
    with pytest.raises(ValueError):
        copy_rows(dst, np.array([0, 1]), src, np.array([0]))
    with pytest.raises(ValueError):
        copy_rows(dst.double(), np.array([0]), src, np.array([0]))
    with pytest.raises(ValueError):
        copy_rows(torch.zeros(4, 3), np.array([0]), src, np.array([0]))
    with pytest.raises(ValueError):
        copy_rows(torch.zeros(2, 4).t(), np.array([0]), src, np.array([0]))


def test_a_buffer_of_another_dtype_still_serves_its_rows_converted():
    feats = table(torch.float32)
    engine = BufferEngine(PersistentBuffer(8, DIM, dtype=torch.float16), BOUNDS, MY_PART)
    ids = np.array([3, 120, 260, 7])
    first = engine.prepare(ids, replace=True)
    engine.complete(first, feats[torch.from_numpy(first.pull_ids)])
    plan = engine.prepare(ids, replace=False)
    assert plan.counts.hits == 3
    x = engine.complete(plan, feats[torch.from_numpy(plan.pull_ids)])
    expected = feats[torch.from_numpy(ids)]
    expected[is_remote(ids)] = expected[is_remote(ids)].half().float()  # hits: as the float16 buffer holds them
    assert x.dtype == torch.float32 and torch.equal(x, expected)


def test_a_feature_buffer_needs_a_partition_with_a_local_node():
    with pytest.raises(ValueError, match="owns a node"):
        BufferEngine(PersistentBuffer(4, DIM), np.array([100, 100, 400]), 1)
    BufferEngine(PersistentBuffer(4, 0), np.array([100, 100, 400]), 1)  # replay keeps no rows: fine
