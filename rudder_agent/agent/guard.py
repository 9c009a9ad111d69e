"""Cheap rules that run without the model: the pre-call guard and the fallback policy."""

from __future__ import annotations

from dataclasses import dataclass

from rudder_agent.agent.state import Progress, WindowSummary
from rudder_agent.decision import Action, WhatIf
from rudder_agent.settings.agent import AgentConfig

_DEFAULT = AgentConfig.model_fields
"""The guard's defaults are the agent settings' (declared once, there)."""


@dataclass(frozen=True)
class Guard:
    """Answers without the model when the answer is obvious; saves latency and model mistakes."""

    enabled: bool = _DEFAULT["guard"].default
    end_fraction: float = _DEFAULT["guard_end_fraction"].default
    fill_fraction: float = _DEFAULT["guard_fill_fraction"].default
    min_difference_pct: float = 0.0
    """0: always ask (the agent's own threshold is ``AgentConfig.min_difference_pct``)."""

    @classmethod
    def from_config(cls, config) -> Guard:
        """The guard an AgentConfig describes."""
        return cls(config.guard, config.guard_end_fraction, config.guard_fill_fraction, config.min_difference_pct)

    def obvious(self, window: WindowSummary, progress: Progress) -> bool:
        """Whether the answer is settled without counterfactuals (nothing to replace, or empty slots to fill)."""
        return bool(self.skip_reason(window, progress, played=True))

    def no_difference_reason(self, whatif: WhatIf | None) -> str | None:
        """Why the model need not be asked: the two answers fetch nearly the same rows (None: they differ)."""
        if not self.enabled or whatif is None:
            return None
        if whatif.difference < self.min_difference_pct / 100.0 * whatif.skip_rows:  # 0: always ask
            return (f"replace and skip differ by {whatif.difference} rows over {whatif.minibatches} minibatches "
                    f"(< {self.min_difference_pct:g}% of {whatif.skip_rows}): {whatif.favours}")
        return None

    def skip_reason(self, window: WindowSummary, progress: Progress, played: bool = False) -> str | None:
        """Why the answer must be skip without asking, or None when the model should decide.

        ``played``: a what-if measured both answers, so the end-of-training rule (a refill cannot pay
        back) is left to it: under a keep policy whose replacement fetches nothing, replacing is free.
        """
        if not self.enabled:
            return None
        if window.minibatches == 0:
            return "no new minibatch metrics"
        if not played and window.stale == 0 and window.free == 0:
            return "nothing to replace: no stale entries and no empty slots"
        if not played and progress.total and progress.pending < self.end_fraction * progress.total:
            return f"last {100 * self.end_fraction:g}% of minibatches: a refill cannot pay back"
        return None

    def fill_reason(self, window: WindowSummary) -> str | None:
        """Why the answer must be replace without asking: empty slots evict nothing, so filling them only helps."""
        if self.enabled and window.minibatches and window.capacity and window.free > self.fill_fraction * window.capacity:
            return f"{window.free} of {window.capacity} slots are empty: fill them"
        return None


def rule_decision(window: WindowSummary, low_hit_pct: float) -> Action:
    """The `rule` fallback: replace when something is replaceable and %-Hits falls or is low."""
    replaceable = window.stale > 0 or window.free > 0
    struggling = window.trend == "falling" or window.hit_pct < low_hit_pct
    return "replace" if window.minibatches and replaceable and struggling else "skip"
