"""The scoring policy: validation, defaults and the exact score arithmetic over many rounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy


def reference_score(policy: ScoringPolicy, rounds: int, accessed: set[int]) -> float:
    """Score of an entry inserted before round 1, after ``rounds`` rounds (pure Python)."""
    score = policy.delta
    for r in range(1, rounds + 1):
        score = score + policy.delta if r in accessed else score * policy.gamma
    return score


def test_defaults_follow_the_paper():
    p = ScoringPolicy()
    assert (p.delta, p.gamma) == (1.0, 0.95)
    assert p.tau == pytest.approx(0.95**25) and p.tau == pytest.approx(0.2774, abs=1e-4)


def test_tau_follows_gamma_unless_given():
    assert ScoringPolicy(gamma=0.9).tau == pytest.approx(0.9**25)
    assert ScoringPolicy(gamma=0.9, tau=None).tau == pytest.approx(0.9**25)
    assert ScoringPolicy(tau=0.5).tau == 0.5


@pytest.mark.parametrize("bad", [{"gamma": 1.0}, {"gamma": 0.0}, {"delta": 0.0}, {"tau": 0.0}, {"tau": -1.0}])
def test_invalid_policies_are_rejected(bad):
    with pytest.raises(ValidationError):
        ScoringPolicy(**bad)


def test_policy_is_frozen():
    with pytest.raises(ValidationError):
        ScoringPolicy().gamma = 0.5


def _buffer_with_one_entry(policy: ScoringPolicy) -> PersistentBuffer:
    buf = PersistentBuffer(4, 0, policy)
    buf.warm_load(np.array([7]))
    return buf


@settings(max_examples=60, deadline=None)
@given(
    gamma=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
    delta=st.sampled_from([1.0, 0.5, 3.0]),
    accessed=st.lists(st.booleans(), min_size=1, max_size=80),
    repeats=st.integers(1, 3),
)
def test_score_after_k_rounds_matches_reference(gamma, delta, accessed, repeats):
    policy = ScoringPolicy(gamma=gamma, delta=delta)
    buf = _buffer_with_one_entry(policy)
    for hit in accessed:
        buf.update_scores(np.full(repeats if hit else 0, 0, dtype=np.int64))  # a repeat counts once
    expected = reference_score(policy, len(accessed), {r + 1 for r, hit in enumerate(accessed) if hit})
    assert buf.scores[0] == expected  # exact: same float64 operations in the same order


def test_closed_forms():
    policy = ScoringPolicy()
    buf = _buffer_with_one_entry(policy)
    for _ in range(10):
        buf.update_scores(np.empty(0, dtype=np.int64))
    assert buf.scores[0] == pytest.approx(0.95**10, rel=1e-12)
    buf.update_scores(np.array([0, 0, 0]))
    buf.update_scores(np.array([0]))
    assert buf.scores[0] == pytest.approx(0.95**10 + 2.0, rel=1e-12)


def test_unaccessed_entry_goes_stale_after_25_rounds():
    buf = _buffer_with_one_entry(ScoringPolicy())
    free = buf.capacity - 1
    for _ in range(24):
        buf.update_scores(np.empty(0, dtype=np.int64))
    assert buf.stale_count() == free
    buf.update_scores(np.empty(0, dtype=np.int64))
    assert buf.stale_count() == free + 1


def test_empty_buffer_is_all_stale_room_and_fills():
    buf = PersistentBuffer(3, 2)
    assert buf.stale_count() == 3 and buf.occupancy == 0
    buf.update_scores(np.empty(0, dtype=np.int64))
    buf.record_misses(np.array([10, 11]))
    plan = buf.plan_replacement()
    assert sorted(plan.insert_ids.tolist()) == [10, 11] and len(plan) == 2
    buf.apply_replacement(plan, torch.ones(2, 2))
    assert buf.occupancy == 2 and buf.stale_count() == 1
