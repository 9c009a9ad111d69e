"""Each live controller's own settings, one variant per controller, picked by its ``name`` (``--controller``).

The registry (:mod:`rudder_agent.registry`) builds the controller a variant names from the variant alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.settings.flags import flag


class NoneSettings(BaseModel):
    """DistDGL as shipped: no buffer; nothing to set."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["none"] = "none"


class FixedSettings(BaseModel):
    """A replacement at every minibatch; nothing to set."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["fixed"] = "fixed"


class MassiveGNNSettings(BaseModel):
    """MassiveGNN: a warm start, then a replacement every ``period`` minibatches."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["massivegnn"] = "massivegnn"
    period: int = Field(32, ge=1, description="massivegnn: replace every P minibatches")


class ClassifierSettings(BaseModel):
    """A trained classifier answers each request."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["classifier"] = "classifier"
    classifier_path: Path | None = Field(None, description="classifier: trained artefact (.rcls)",
                                         json_schema_extra=flag(exists=True, dir_okay=False))
    finetune_every: int = Field(0, ge=0, description="classifier: refit the decision head every N decisions (0: never)")


ControllerSettings = Annotated[Union[NoneSettings, FixedSettings, MassiveGNNSettings, AgentConfig, ClassifierSettings],
                               Field(discriminator="name")]
"""One live controller's settings, picked by its ``name``."""

CONTROLLER_NAMES: tuple[str, ...] = tuple(kind.model_fields["name"].default for kind in get_args(get_args(
    ControllerSettings)[0]))
"""The controllers a live run can use, by name."""
