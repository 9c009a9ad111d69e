"""A window of minibatch records reduced to the figures the agent's prompt and the classifiers read.

The agent's Metrics Collector and the classifiers' features are the same reduction, so a
classifier sees the same %-Hits, trend and communication figures as the LLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from rudder_agent.metrics import MinibatchMetrics

Trend = Literal["rising", "falling", "flat"]
TREND_FLAT_PP = 1.0
"""A %-Hits change smaller than this many points counts as flat (sampling noise)."""


class WindowSummary(BaseModel):
    """The minibatches of one request reduced to the figures the prompt and the history use."""

    first_step: int
    last_step: int
    minibatches: int
    remote_inputs: int
    hits: int
    hit_pct: float = Field(description="hits / remote inputs over this window only, x 100")
    hit_trend_pp: float = Field(description="change of hit_pct in points vs the previous window (or within it)")
    trend: Trend
    comm_rows: int
    comm_per_mb: float
    replace_rows: int
    stale: int = Field(description="slots a replacement may overwrite (the buffer counts empty ones too)")
    occupancy: int
    capacity: int

    @property
    def free(self) -> int:
        """Empty buffer slots."""
        return max(self.capacity - self.occupancy, 0)


def summarize_window(batches: Sequence[MinibatchMetrics], step: int, stale: int, occupancy: int, capacity: int,
                     previous: WindowSummary | None = None) -> WindowSummary:
    """``batches`` (a request made at ``step`` with that buffer state) as one summary.

    The trend compares with the ``previous`` window when there is one, else the window's two halves.
    """
    hit_pct = _hit_pct(batches)
    if previous is not None and previous.minibatches and batches:
        trend_pp = hit_pct - previous.hit_pct
    elif len(batches) >= 2:
        half = len(batches) // 2
        trend_pp = _hit_pct(batches[half:]) - _hit_pct(batches[:half])
    else:
        trend_pp = 0.0
    comm_rows = sum(m.comm_rows for m in batches)
    return WindowSummary(
        first_step=batches[0].step if batches else step,
        last_step=batches[-1].step if batches else step,
        minibatches=len(batches),
        remote_inputs=sum(m.remote_inputs for m in batches),
        hits=sum(m.hits for m in batches),
        hit_pct=hit_pct,
        hit_trend_pp=trend_pp,
        trend=_trend(trend_pp),
        comm_rows=comm_rows,
        comm_per_mb=comm_rows / len(batches) if batches else 0.0,
        replace_rows=sum(m.replace_rows for m in batches),
        stale=stale,
        occupancy=occupancy,
        capacity=capacity,
    )


def _hit_pct(batches: Sequence[MinibatchMetrics]) -> float:
    remote = sum(m.remote_inputs for m in batches)
    return 100.0 * sum(m.hits for m in batches) / remote if remote else 0.0


def _trend(change_pp: float) -> Trend:
    if change_pp >= TREND_FLAT_PP:
        return "rising"
    if change_pp <= -TREND_FLAT_PP:
        return "falling"
    return "flat"
