"""The scoring policy of paper §2.1: what makes a buffered node, or a candidate, stale."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_WINDOW = 32
"""Longest look-ahead window (all trainers sharing a buffer together): the look-ahead policy keeps occurrence
bits in one 64-bit word per id. Here, beside the settings, so that checking it loads no Numba kernel."""
STALE_ROUNDS = 25
"""Rounds without access after which an entry scored delta=1 falls below the default tau."""


class Scoring(BaseModel):
    """The scoring policy of paper §2.1 as a run sets it: accessed, score += delta; not accessed, score *= gamma;
    stale below tau (unset: derived from gamma)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    delta: float = Field(1.0, gt=0.0, description="scoring policy: score gained when a buffered node is sampled")
    gamma: float = Field(0.95, gt=0.0, lt=1.0,
                         description="scoring policy: score decay per minibatch a buffered node is not sampled")
    tau: float | None = Field(None, gt=0.0, description="scoring policy: staleness threshold; unset: gamma**25")


class ScoringPolicy(Scoring):
    """The scoring a buffer applies: the settings with tau resolved."""

    tau: float = Field(gt=0.0, description="staleness threshold; default gamma**STALE_ROUNDS")

    @classmethod
    def from_settings(cls, settings: Scoring) -> "ScoringPolicy":
        """The policy a run's scoring settings describe (tau derived from gamma when unset)."""
        return cls(**dict(settings))

    @model_validator(mode="before")
    @classmethod
    def _default_tau(cls, data: Any) -> Any:
        """Derive tau from gamma when it is left out or None (the config passes None)."""
        if isinstance(data, dict) and data.get("tau") is None:
            gamma = data.get("gamma", cls.model_fields["gamma"].default)
            data = {**data, "tau": float(gamma) ** STALE_ROUNDS}
        return data
