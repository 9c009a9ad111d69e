"""The keep policy a buffer ranks its rows by, as settings.

Each variant builds its own :class:`rudder_agent.buffer.keep.KeepPolicy`; ``window`` is the run's
look-ahead (``BufferConfig.lookahead``), which only the lookahead policy reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

if TYPE_CHECKING:
    from rudder_agent.buffer.keep import KeepPolicy


class Decay(BaseModel):
    """The paper's keep policy: replace the rows whose score fell below tau."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["decay"] = "decay"
    looks_ahead: ClassVar[bool] = False

    def build(self, window: int, lanes: int = 1) -> KeepPolicy:
        from rudder_agent.buffer.keep import DecayKeep

        return DecayKeep()


class Lfu(BaseModel):
    """Keep the most accessed rows among those in hand (replacing fetches nothing extra)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["lfu"] = "lfu"
    looks_ahead: ClassVar[bool] = False

    def build(self, window: int, lanes: int = 1) -> KeepPolicy:
        from rudder_agent.buffer.keep import FrequencyKeep

        return FrequencyKeep(0, lanes)


class Lookahead(BaseModel):
    """Keep the rows next used soonest in the sampled window, then the most accessed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["lookahead"] = "lookahead"
    looks_ahead: ClassVar[bool] = True

    def build(self, window: int, lanes: int = 1) -> KeepPolicy:
        """``lanes``: trainers sharing the buffer (their windows are one window of ``window`` x ``lanes``)."""
        from rudder_agent.buffer.keep import FrequencyKeep

        if window < 1:
            raise ValueError("lookahead needs a window of at least 1 minibatch (--lookahead W)")
        return FrequencyKeep(window, lanes)


KeepSettings = Annotated[Union[Decay, Lfu, Lookahead], Field(discriminator="name")]
"""One keep policy, picked by its ``name`` (``--policy``)."""


def keep_policy(name: str) -> Decay | Lfu | Lookahead:
    """The keep-policy settings ``name`` picks (pydantic's ValidationError for an unknown name)."""
    return TypeAdapter(KeepSettings).validate_python({"name": name})
