"""The counterfactual oracle: replace when it clearly pays, skip when it clearly does not, never touch state."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.decision import DecisionRequest
from rudder_agent.replay.oracle import Oracle, OracleJudge
from rudder_agent.buffer.counterfactual import fork

BOUNDS = np.array([1000, 2000])  # partition 0 owns 0..999; every id below is remote


def engine(capacity: int) -> BufferEngine:
    return BufferEngine(PersistentBuffer(capacity, 0), BOUNDS, 0)


def ids(lo: int, n: int) -> np.ndarray:
    return np.arange(1000 + lo, 1000 + lo + n, dtype=np.int64)


def play(e: BufferEngine, batch: np.ndarray, replace: bool) -> None:
    e.complete(e.prepare(batch, replace), None)


@pytest.mark.parametrize("rollout", ["replace", "skip"])
def test_replace_when_the_same_rows_come_back(rollout):
    hot = ids(0, 10)
    stream = [hot] * 6
    e = engine(10)
    v = OracleJudge(e, range(6), stream, horizon=4, rollout=rollout).label(0)
    assert v.label == "replace"
    assert v.replace_comm == 10  # fetched once, then served from the buffer
    assert v.skip_comm == (20 if rollout == "replace" else 40)


def test_skip_when_a_replacement_would_fetch_rows_never_used_again():
    stream = [ids(0, 10), ids(10, 1)] + [ids(100 * k, 10) for k in range(1, 5)]
    e = engine(10)
    play(e, stream[0], replace=False)  # ten misses wait as candidates; the buffer is still empty
    v = OracleJudge(e, range(6), stream, horizon=4).label(1)
    # replacing at 1 pulls 9 old candidates that never return; skipping fills the buffer with misses later
    assert v.label == "skip" and v.replace_comm == v.skip_comm + 9


def test_a_tie_is_a_skip():
    stream = [ids(100 * k, 10) for k in range(6)]  # every minibatch brand new: nothing can help
    v = OracleJudge(engine(10), range(6), stream, horizon=3).label(0)
    assert v.replace_comm == v.skip_comm == 30 and v.label == "skip"


def test_judging_leaves_the_buffer_untouched():
    rng = np.random.default_rng(0)
    stream = [np.unique(rng.integers(1000, 1300, 80)) for _ in range(8)]
    e = engine(40)
    for batch in stream[:3]:
        play(e, batch, replace=True)
    before = (e.buffer.slot_ids.copy(), e.buffer.scores.copy(), e.buffer.candidates.snapshot(), e.buffer.occupancy)
    OracleJudge(e, range(8), stream, horizon=5).label(3)
    after = (e.buffer.slot_ids, e.buffer.scores, e.buffer.candidates.snapshot(), e.buffer.occupancy)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_fork_is_independent():
    e = engine(5)
    twin = fork(e)
    play(twin, ids(0, 5), replace=True)
    assert twin.buffer.occupancy == 5 and e.buffer.occupancy == 0


def test_oracle_controller_needs_a_replay():
    with pytest.raises(RuntimeError, match="inside a replay"):
        Oracle().decide(DecisionRequest(step=0, window=[], stale=0, occupancy=0, capacity=1))


def test_oracle_controller_decides_from_the_bound_state():
    stream = [ids(0, 10)] * 4
    e = engine(10)
    oracle = Oracle(horizon=3)
    oracle.bind(e, SimpleNamespace(steps=[7, 8, 9, 10], inputs=stream, window=lambda i, size: []))  # steps may start anywhere
    outcome = oracle.decide(DecisionRequest(step=7, window=[], stale=10, occupancy=0, capacity=10))
    assert outcome.decision == "replace" and outcome.request_step == 7
