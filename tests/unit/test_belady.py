"""Belady's MIN on set requests and the compulsory bound: hand-computed streams and an exhaustive check."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import pytest

from rudder_agent.replay.belady import Bound, belady, compulsory


def sets(*steps: tuple[int, ...]) -> list[np.ndarray]:
    return [np.array(s, dtype=np.int64) for s in steps]


def brute_force_min_misses(stream: list[np.ndarray], capacity: int) -> int:
    """Fewest misses over every keep-set choice after every step (exponential; tiny streams only)."""
    steps = [frozenset(s.tolist()) for s in stream]

    @lru_cache(maxsize=None)
    def best(t: int, held: frozenset) -> int:
        if t == len(steps):
            return 0
        misses = len(steps[t] - held)
        pool = sorted(held | steps[t])
        keep_options = itertools.chain.from_iterable(
            itertools.combinations(pool, k) for k in range(min(capacity, len(pool)) + 1))
        return misses + min(best(t + 1, frozenset(keep)) for keep in keep_options)

    return best(0, frozenset())


def test_hand_computed_capacity_two():
    # t0: 1,2,3 miss; keep 1,2 (next use t1) over 3 (t2). t1: 2 hits. t2: 3 misses and is never
    # used again (bypass), keep 1,2 (t3). t3: 2 hits.
    stream = sets((1, 2, 3), (1, 2), (3,), (1, 2))
    assert belady(stream, 2) == Bound(remote_inputs=8, hits=4, comm_rows=4)


def test_hand_computed_capacity_one():
    # t0: keep 1 (or 2). t1: one hit, one miss. t2: miss. t3: one hit, one miss.
    stream = sets((1, 2, 3), (1, 2), (3,), (1, 2))
    assert belady(stream, 1) == Bound(8, 2, 6)


def test_bypass_keeps_the_sooner_reused_row():
    # capacity 1: 1 is reused at t2 and t4, 2 at t3 only after 1's next use: keep 1 throughout
    stream = sets((1,), (2,), (1,), (2,), (1,))
    assert belady(stream, 1) == Bound(5, 2, 3)


def test_capacity_zero_and_huge():
    stream = sets((1, 2), (2, 3), (1, 3))
    assert belady(stream, 0) == Bound(6, 0, 6)
    assert belady(stream, 100) == compulsory(stream) == Bound(6, 3, 3)


def test_compulsory_counts_distinct_ids():
    assert compulsory(sets((5, 9), (9,), (5, 7), ())) == Bound(5, 2, 3)
    assert compulsory([]) == Bound(0, 0, 0)


def test_hit_pct():
    assert Bound(8, 4, 4).hit_pct == 50.0
    assert Bound(0, 0, 0).hit_pct == 0.0


def test_repeated_id_within_a_minibatch_is_refused():
    with pytest.raises(ValueError, match="distinct"):
        belady(sets((1, 1), (1,)), 1)


@pytest.mark.parametrize("seed", range(30))
def test_matches_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    universe, T, capacity = int(rng.integers(2, 7)), int(rng.integers(1, 7)), int(rng.integers(0, 4))
    stream = [np.sort(rng.choice(universe, size=int(rng.integers(0, universe + 1)), replace=False)).astype(np.int64)
              for _ in range(T)]
    got = belady(stream, capacity)
    assert got.comm_rows == brute_force_min_misses(stream, capacity)
    assert got.hits + got.comm_rows == sum(len(s) for s in stream)
    assert got.comm_rows >= compulsory(stream).comm_rows


def reference_min(stream: list[np.ndarray], capacity: int) -> Bound:
    """Belady's MIN with bypass in plain Python sets (slow, obviously the rule): after each step keep the
    ``capacity`` ids whose next request comes soonest, never one that is not requested again."""
    T, uses = len(stream), {}
    for t, r in enumerate(stream):
        for i in r.tolist():
            uses.setdefault(i, []).append(t)
    served, held, hits = dict.fromkeys(uses, 0), set(), 0
    for r in stream:
        req = r.tolist()
        hits += sum(i in held for i in req)
        for i in req:
            served[i] += 1

        def next_use(i: int) -> int:
            return uses[i][served[i]] if served[i] < len(uses[i]) else T

        held = {i for n, i in sorted((next_use(i), i) for i in held.union(req))[:capacity] if n < T}
    remote = sum(len(r) for r in stream)
    return Bound(remote, hits, remote - hits)


@pytest.fixture(scope="module")
def large_stream() -> list[np.ndarray]:
    rng = np.random.default_rng(0)  # ~650 ids per step, a heavy-tailed reuse pattern, ~65k requests
    return [np.unique(rng.zipf(1.3, 3000) % 20_000).astype(np.int64) for _ in range(100)]


@pytest.mark.parametrize("capacity", [64, 1000, 3000])
def test_large_stream_matches_the_plain_reference(large_stream, capacity):
    # The vectorised implementation (compact ids, argpartition, kept/asked masks) against the plain rule
    # at a scale the exhaustive search cannot reach; its speed is measured by benchmarks/bench_belady.py.
    got = belady(large_stream, capacity)
    assert got == reference_min(large_stream, capacity)
    assert compulsory(large_stream).comm_rows < got.comm_rows < got.remote_inputs
