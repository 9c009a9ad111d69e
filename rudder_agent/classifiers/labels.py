"""Training labels: the paper's pre/post replacement rule (offline and online) and the replay oracle's.

Rule (paper §4.4): for a replacement applied at minibatch s, compare the ``window``
minibatches before s with the ``window`` minibatches from s on, with the Context Builder's
measures: dh = change of window %-Hits (points), dc = change of rows fetched per minibatch.
Each is standardized by its spread over a stream's replacement events (scaled, not
centred, so the sign of a change is kept); the replacement is good (label 1: replace) when
dh / sd(dh) > dc / sd(dc). Online fine-tuning applies the same functions to the stream the
controller has seen so far.

Oracle: the replay's ``OracleJudge`` label at the minibatch the decision applies to
(replace iff replacing there fetches fewer rows over the horizon than skipping).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rudder_agent.classifiers.features import summarize, window_features
from rudder_agent.decision import StaticFacts
from rudder_agent.metrics import MinibatchMetrics


def rule_events(stream: Sequence[MinibatchMetrics], window: int) -> list[int]:
    """Positions of applied replacements with ``window`` minibatches before and after them."""
    return [i for i in range(window, len(stream) - window + 1) if stream[i].decision_applied == "replace"]


def rule_example(facts: StaticFacts, stream: Sequence[MinibatchMetrics], i: int,
                 window: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Features seen before the replacement at position ``i`` and its effect (dh, dc)."""
    pre, post = stream[i - window:i], stream[i:i + window]
    step = stream[i].step
    before, after = summarize(facts, pre, step), summarize(facts, post, step)
    effect = (after.hit_pct - before.hit_pct, after.comm_per_mb - before.comm_per_mb)
    return window_features(facts, pre, step), effect


class Spread:
    """Running per-column standard deviation of (dh, dc); 1 where a column does not vary."""

    def __init__(self) -> None:
        self.n, self.total, self.total_sq = 0, np.zeros(2), np.zeros(2)

    def add(self, effects: np.ndarray) -> Spread:
        """Count more replacement effects (one (dh, dc) row each)."""
        effects = np.asarray(effects, dtype=np.float64).reshape(-1, 2)
        self.n += len(effects)
        self.total += effects.sum(axis=0)
        self.total_sq += (effects ** 2).sum(axis=0)
        return self

    @property
    def sd(self) -> np.ndarray:
        """The scale the rule divides (dh, dc) by."""
        mean = self.total / max(self.n, 1)
        sd = np.sqrt(np.maximum(self.total_sq / max(self.n, 1) - mean ** 2, 0.0))
        return np.where(sd > 1e-6 * (1.0 + np.abs(mean)), sd, 1.0)


def rule_labels(effects: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """1 where the standardized %-Hits gain outweighs the standardized rise in rows, else 0."""
    effects = np.asarray(effects, dtype=np.float64).reshape(-1, 2)
    z = effects / (Spread().add(effects).sd if scale is None else scale)
    return (z[:, 0] > z[:, 1]).astype(np.int64)
