"""The replay block of a replay's records: which run was replayed, how, and which settings it overrode."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.settings.controllers import CONTROLLER_NAMES
from rudder_agent.settings.upgrade import current_values


class ReplayBlock(BaseModel):
    """``replay`` in a replay's kind=controller record and ``summary.json`` (absent from a live run's)."""

    of: str | None = Field(None, description="the recorded run directory that was replayed")
    mode: str | None = Field(None, description="how decisions reached the buffer (async, sync, inline, recorded)")
    latency_minibatches: int | None = None
    overrides: dict[str, Any] = Field(default_factory=dict, description="settings given on top of the recorded run's")


def replayed_settings(config: TrainConfig, replay: ReplayBlock | None, controller: str | None = None) -> BufferConfig:
    """The settings a run's decisions were made with: its buffer config, with a replay's overrides on top, and
    ``controller`` (the replay's, a settings variant) with its settings from the overrides or its defaults.

    Overrides recorded under an older setting name are read under the current one.
    """
    overrides = current_values(replay.overrides if replay is not None else {})
    tag = {"controller": controller} if controller in CONTROLLER_NAMES else {}
    return config.buffer.with_values({**overrides, **tag})
