"""Each live controller's own settings, one variant per controller, picked by its ``name`` (``--controller``).

A controller with nothing to set needs no variant of its own: any other name is held by
:class:`PlainSettings`, and the registry (:mod:`rudder_agent.registry`), which knows the controllers,
refuses a name it does not know. The registry builds the controller a variant names from the variant alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

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


class PlainSettings(BaseModel):
    """A controller without settings of its own: its name only."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str


OWN_SETTINGS: tuple[type[BaseModel], ...] = (NoneSettings, FixedSettings, MassiveGNNSettings, AgentConfig,
                                             ClassifierSettings)
"""The controllers with a settings variant of their own."""

CONTROLLER_NAMES: tuple[str, ...] = tuple(kind.model_fields["name"].default for kind in OWN_SETTINGS)
"""The controllers with a settings variant of their own, by name."""

PLAIN = "plain"
"""The tag of :class:`PlainSettings` among the variants (never a controller's name)."""


def variant_tag(settings: Any) -> str:
    """The variant that holds ``settings`` (data or a model): its name's own, else the plain one."""
    name = settings.get("name") if isinstance(settings, dict) else getattr(settings, "name", None)
    return name if name in CONTROLLER_NAMES else PLAIN


ControllerSettings = Annotated[Union[tuple(Annotated[kind, Tag(name)] for kind, name in zip(OWN_SETTINGS,
                                                                                          CONTROLLER_NAMES))
                                     + (Annotated[PlainSettings, Tag(PLAIN)],)],
                               Discriminator(variant_tag)]
"""One live controller's settings, picked by its ``name``."""
