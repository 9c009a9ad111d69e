"""Pass@1 (paper §4.6): does the observed direction of change after a decision match the predicted one?

A decision applied at minibatch s is judged on one trainer's stream: the *before* window
is minibatches s-k .. s-1, the *after* window s .. s+k-1 (the decision acts on minibatch s
itself: its replacement rows are fetched there). Windows are cut at the ends of the stream;
a decision with an empty side, or with no remote input on a side, is not judged.

- %-Hits: change = pooled %-Hits after - pooled %-Hits before (points);
- comm: change = relative change of the mean comm rows per minibatch (percent).

The observed direction is ``unchanged`` when |change| < eps, else ``increase``/``decrease``.
The 95% interval is Wilson's score interval, i.e. the set of rates that Pearson's chi-square
test (1 degree of freedom) does not reject at the 5% level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from rudder_agent.decision import Direction
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.decisions import decided

Target = Literal["hits", "comm"]
DIRECTIONS = frozenset(get_args(Direction))
Z95 = math.sqrt(3.841458820694124)  # sqrt of the chi-square(1) 95% quantile = 1.95996...


@dataclass(frozen=True)
class PassOptions:
    """How Pass@1 windows are judged: k minibatches a side, and the changes that count as unchanged."""

    k: int = 5
    eps_hits: float = 1.0
    eps_comm: float = 1.0


@dataclass(frozen=True)
class Judgement:
    """One judged decision."""

    step: int
    decision: str
    expected: str
    observed: str
    change: float
    passed: bool


@dataclass(frozen=True)
class PassRate:
    """Pass@1 with its 95% interval; ``rate`` is None when nothing was judged."""

    passed: int
    n: int
    lo: float | None
    hi: float | None

    @property
    def rate(self) -> float | None:
        return self.passed / self.n if self.n else None


def direction(change: float, eps: float) -> Direction:
    """Observed direction of a change; |change| < eps counts as unchanged."""
    if abs(change) < eps:
        return "unchanged"
    return "increase" if change > 0 else "decrease"


def window_change(before: Sequence[MinibatchMetrics], after: Sequence[MinibatchMetrics],
                  target: Target) -> float | None:
    """After minus before: %-Hits points, or comm rows per minibatch in percent; None if undefined."""
    if not before or not after:
        return None
    if target == "hits":
        remote_b, remote_a = (sum(m.remote_inputs for m in w) for w in (before, after))
        if not remote_b or not remote_a:
            return None
        return 100.0 * (sum(m.hits for m in after) / remote_a - sum(m.hits for m in before) / remote_b)
    mean_b, mean_a = (sum(m.comm_rows for m in w) / len(w) for w in (before, after))
    if not mean_b:
        return 0.0 if not mean_a else math.inf
    return 100.0 * (mean_a - mean_b) / mean_b


def judge(stream: Sequence[MinibatchMetrics], target: Target, k: int = 5, eps: float = 1.0) -> list[Judgement]:
    """Judge every applied decision of one trainer's minibatch stream (sorted by step) that carries a prediction."""
    if k < 1:
        raise ValueError("the window k must be >= 1 minibatch")
    out = []
    for i, m in enumerate(stream):
        expected = getattr(m, f"expected_{target}")
        if not decided(m) or expected not in DIRECTIONS:
            continue
        change = window_change(stream[max(0, i - k):i], stream[i:i + k], target)
        if change is None:
            continue
        observed = direction(change, eps)
        out.append(Judgement(m.step, m.decision_applied, expected, observed, change, observed == expected))
    return out


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval for a binomial rate (stays inside [0, 1], sane at 0/n and n/n)."""
    if n == 0:
        return None, None
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at 0/n and n/n the bound is exactly 0 or 1; computing it would leave a rounding residue
    return (0.0 if passed == 0 else centre - half), (1.0 if passed == n else centre + half)


def pass_rate(outcomes: Sequence[bool]) -> PassRate:
    """Share of True outcomes with its Wilson 95% interval."""
    passed, n = sum(bool(o) for o in outcomes), len(outcomes)
    return PassRate(passed, n, *wilson(passed, n))
