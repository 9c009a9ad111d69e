"""The window reduction the agent's prompt and the classifiers' features share."""

from __future__ import annotations

import pytest

from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.window import TREND_FLAT_PP, summarize_window


def batches(hits: list[int], first: int = 0) -> list[MinibatchMetrics]:
    """One minibatch per entry, 100 remote inputs each, ``hits`` of them served by the buffer."""
    return [MinibatchMetrics(rank=0, epoch=0, step=first + i, input_nodes=300, remote_inputs=100, hits=h,
                             misses=100 - h, replace_rows=5, comm_rows=105 - h, comm_bytes=0)
            for i, h in enumerate(hits)]


def test_pooled_figures_and_the_buffer_state_of_the_request():
    w = summarize_window(batches([20, 40], first=3), step=4, stale=7, occupancy=90, capacity=100)
    assert (w.first_step, w.last_step, w.minibatches, w.remote_inputs, w.hits) == (3, 4, 2, 200, 60)
    assert (w.hit_pct, w.comm_rows, w.comm_per_mb, w.replace_rows) == (30.0, 150, 75.0, 10)
    assert (w.stale, w.occupancy, w.capacity, w.free) == (7, 90, 100, 10)


def test_the_trend_compares_with_the_previous_window_else_the_two_halves():
    previous = summarize_window(batches([10, 10]), step=1, stale=0, occupancy=0, capacity=10)
    w = summarize_window(batches([50, 50], first=2), step=3, stale=0, occupancy=0, capacity=10, previous=previous)
    assert (w.hit_trend_pp, w.trend) == (pytest.approx(40.0), "rising")
    w = summarize_window(batches([50, 50, 20, 20]), step=3, stale=0, occupancy=0, capacity=10)
    assert (w.hit_trend_pp, w.trend) == (pytest.approx(-30.0), "falling")


def test_a_change_below_the_flat_threshold_is_flat_and_an_empty_window_is_the_request_step():
    assert TREND_FLAT_PP == 1.0
    assert summarize_window(batches([50, 50, 50, 50]), step=3, stale=0, occupancy=0, capacity=10).trend == "flat"
    assert summarize_window(batches([50, 51]), step=1, stale=0, occupancy=0, capacity=10).trend == "rising"
    w = summarize_window([], step=7, stale=0, occupancy=0, capacity=10)
    assert (w.first_step, w.last_step, w.minibatches, w.hit_pct, w.comm_per_mb, w.trend) == (7, 7, 0, 0.0, 0.0, "flat")
