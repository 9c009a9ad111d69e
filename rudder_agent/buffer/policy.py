"""The scoring policy of paper §2.1: what makes a buffered node, or a candidate, stale."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

STALE_ROUNDS = 25
"""Rounds without access after which an entry scored delta=1 falls below the default tau."""


POLICY_FIELDS = ("delta", "gamma", "tau")
"""The settings that define the scoring policy (BufferConfig fields of the same names)."""


class ScoringPolicy(BaseModel):
    """Accessed: score += delta; not accessed in a round: score *= gamma; stale: score < tau."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delta: float = Field(1.0, gt=0.0, description="score gained in a round in which the node is sampled")
    gamma: float = Field(0.95, gt=0.0, lt=1.0, description="decay factor of a round without access")
    tau: float = Field(gt=0.0, description="staleness threshold; default gamma**25")

    @classmethod
    def from_settings(cls, settings: Any, **overrides) -> "ScoringPolicy":
        """The policy a run's buffer settings name (``delta``/``gamma``/``tau``), with replay's overrides."""
        return cls(**{k: overrides.get(k, getattr(settings, k)) for k in POLICY_FIELDS})

    @model_validator(mode="before")
    @classmethod
    def _default_tau(cls, data: Any) -> Any:
        """Derive tau from gamma when it is left out or None (the config passes None)."""
        if isinstance(data, dict) and data.get("tau") is None:
            gamma = data.get("gamma", cls.model_fields["gamma"].default)
            data = {**data, "tau": float(gamma) ** STALE_ROUNDS}
        return data
