"""Pass@1 arithmetic on hand-made streams and the Wilson interval."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.passk import direction, judge, pass_rate, wilson, window_change


def mb(step: int, hits: int, remote: int = 10, comm: int = 10, decision: str | None = None,
       hits_dir: str | None = None, comm_dir: str | None = None) -> dict:
    return {"step": step, "hits": hits, "remote_inputs": remote, "comm_rows": comm, "decision_applied": decision,
            "expected_hits": hits_dir, "expected_comm": comm_dir}


def typed(rows: list[dict]) -> list[MinibatchMetrics]:
    """Hand-made rows as the minibatch records they stand for."""
    return [MinibatchMetrics.model_validate({"rank": 0, "epoch": 0, "input_nodes": r["remote_inputs"],
                                             "comm_bytes": 0, **r}) for r in rows]


def test_direction_respects_eps():
    assert direction(0.99, 1.0) == "unchanged" and direction(-0.99, 1.0) == "unchanged"
    assert direction(1.0, 1.0) == "increase" and direction(-2.5, 1.0) == "decrease"


def test_window_change_pools_hits_and_compares_mean_comm():
    before = [mb(0, 0), mb(1, 2, remote=30)]  # 2 / 40 = 5 %
    after = [mb(2, 6, remote=20, comm=5)]  # 30 %
    assert window_change(typed(before), typed(after), "hits") == pytest.approx(25.0)
    assert window_change(typed(before), typed(after), "comm") == pytest.approx(-50.0)
    assert window_change(typed([]), typed(after), "hits") is None
    assert window_change(typed([mb(0, 0, remote=0)]), typed(after), "hits") is None  # no remote input before
    assert window_change(typed([mb(0, 0, comm=0)]), typed([mb(1, 0, comm=3)]), "comm") == math.inf


def test_pass_at_1_on_a_known_sequence():
    # %-Hits per minibatch: 0 (steps 0-4), then 50 (steps 5-13); 10 remote inputs each
    stream = [mb(s, 0 if s < 5 else 5) for s in range(14)]
    stream[0] |= {"decision_applied": "replace", "expected_hits": "increase"}  # no before window: not judged
    stream[2] |= {"decision_applied": "replace", "expected_hits": "decrease"}  # 0 % -> 20 %: fail
    stream[5] |= {"decision_applied": "replace", "expected_hits": "increase"}  # 0 % -> 50 %: pass
    stream[8] |= {"decision_applied": "skip", "expected_hits": "unchanged"}  # 30 % -> 50 %: fail
    stream[10] |= {"decision_applied": "skip", "expected_hits": "unchanged"}  # 50 % -> 50 %: pass
    stream[13] |= {"decision_applied": "replace", "expected_hits": "increase"}  # 50 % -> 50 % (cut window): fail
    stream[9] |= {"decision_applied": "skip"}  # no prediction: not judged
    stream[6] |= {"expected_hits": "increase"}  # a prediction without an applied decision: not judged
    judged = judge(typed(stream), "hits", k=5, eps=1.0)
    assert [(j.step, j.observed, j.passed) for j in judged] == [
        (2, "increase", False), (5, "increase", True), (8, "increase", False), (10, "unchanged", True),
        (13, "unchanged", False)]
    rate = pass_rate([j.passed for j in judged])
    assert (rate.passed, rate.n) == (2, 5) and rate.rate == pytest.approx(0.4)
    assert rate.lo < 0.4 < rate.hi


def test_window_size_and_eps_change_the_verdict():
    stream = [mb(0, 4), mb(1, 4), mb(2, 5, decision="skip", hits_dir="unchanged"), mb(3, 5)]  # 40 % -> 50 %
    assert [j.passed for j in judge(typed(stream), "hits", k=2, eps=1.0)] == [False]
    assert [j.passed for j in judge(typed(stream), "hits", k=2, eps=20.0)] == [True]
    with pytest.raises(ValueError):
        judge(typed(stream), "hits", k=0)


def test_pass_at_1_on_comm():
    stream = [mb(0, 0, comm=20), mb(1, 0, comm=20, decision="replace", comm_dir="decrease"), mb(2, 0, comm=10),
              mb(3, 0, comm=10, decision="replace", comm_dir="increase")]
    judged = judge(typed(stream), "comm", k=1, eps=1.0)
    assert [(j.step, j.observed, j.passed) for j in judged] == [(1, "unchanged", False), (3, "unchanged", False)]
    judged = judge(typed(stream), "comm", k=2, eps=1.0)  # step 1: 20 -> 15; step 3: 15 -> 10
    assert [(j.observed, j.passed) for j in judged] == [("decrease", True), ("decrease", False)]


def test_wilson_matches_the_textbook_value():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (None, None)
    assert pass_rate([]).rate is None


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_estimate_inside_unit_interval(case):
    passed, n = case
    lo, hi = wilson(passed, n)
    assert 0.0 <= lo <= passed / n <= hi <= 1.0
    assert hi - lo > 0
