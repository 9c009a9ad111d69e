"""The buffer's settings: its size and clock, the keep policy and scoring, and the controller.

Besides the tree, a buffer's settings read and write as *values*: one flat mapping from each
setting's name to its value (``{"controller": "llm", "model": ..., "policy": "decay", "delta": ...}``),
the shape the command line, replay overrides and compare presets give them in. A variant's tag
is valued by the field that holds the variant; a variant takes the values of its own fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from rudder_agent.settings.controllers import ControllerSettings, NoneSettings
from rudder_agent.settings.flags import flag
from rudder_agent.buffer.policy import Scoring
from rudder_agent.settings.keep import KeepSettings, Lookahead

Mode = Literal["async", "sync"]
Scope = Literal["machine", "trainer"]


class BufferConfig(BaseModel):
    """Persistent buffer, keep policy, scoring and the controller that times replacements."""

    model_config = ConfigDict(extra="forbid")
    controller: ControllerSettings = Field(default_factory=NoneSettings,
                                           description="none, fixed, massivegnn, llm or classifier")
    fraction: float = Field(0.25, gt=0.0, le=1.0, json_schema_extra=flag("--buffer-fraction"),
                            description="buffer capacity as a fraction of the partition's halo nodes (ceil)")
    policy: KeepSettings = Field(default_factory=Lookahead,
                                 description="what to keep: lookahead (next use in the sampled window, then "
                                             "access counts), lfu (access counts) or decay (the paper's scoring)")
    lookahead: int = Field(8, ge=1, description="minibatches sampled ahead (the window W): the lookahead policy "
                                                "ranks by them, a controller that plays answers forward plays them")
    scoring: Scoring = Field(default_factory=Scoring, description="what makes a buffered row stale")
    scope: Scope = Field("machine", json_schema_extra=flag("--buffer-scope"),
                         description="machine: one buffer per machine in shared memory, shared by its trainers "
                                     "(T x the capacity, each row fetched once per machine); trainer: one each")
    mode: Mode = Field("async", json_schema_extra=flag(switch="sync"),
                       description="sync: the prefetcher waits for a decision every minibatch; async: it does not")

    @property
    def window(self) -> int:
        """Minibatches the keep policy sees ahead: the look-ahead window when the policy looks ahead, else none."""
        return self.lookahead if self.policy.looks_ahead else 0

    def window_for(self, sees_ahead: bool) -> int:
        """Minibatches sampled ahead: the policy's window, or W for a controller that plays answers forward."""
        return self.lookahead if sees_ahead else self.window

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> BufferConfig:
        """The settings ``values`` give (by setting name); defaults for the rest; variants by their tag's value."""
        return cls.model_validate(nest(cls, values))

    @classmethod
    def check_values(cls, values: Mapping[str, Any]) -> None:
        """Validate ``values`` under every variant, so a bad value is refused whichever variant is picked."""
        for name, info in cls.model_fields.items():
            for kind in variants(info) if is_union(info) else ():
                cls.from_values({**values, name: kind.model_fields["name"].default})

    def values(self) -> dict[str, Any]:
        """Every setting's value by its name (the inverse of :meth:`from_values`)."""
        return flatten(self)

    def with_values(self, values: Mapping[str, Any]) -> BufferConfig:
        """These settings with ``values`` set (a tag's value picks another variant, whose own values are kept)."""
        return self.from_values({**self.values(), **values})


def variants(info: FieldInfo) -> tuple[type[BaseModel], ...]:
    """The models a union field may hold (one for a plain sub-model, none for a value); a variant without a
    name of its own (one that holds any other name) is not one of them."""
    kinds = [get_args(k)[0] if get_origin(k) is Annotated else k for k in get_args(info.annotation) or
             (info.annotation,)]
    return tuple(k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)
                 and not ("name" in k.model_fields and k.model_fields["name"].is_required()))


def is_union(info: FieldInfo) -> bool:
    """Whether the field holds one of several tagged variants."""
    return info.discriminator is not None or len(variants(info)) > 1


def nest(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (by setting name) as the nested data of ``model``: each variant with its tag and own values."""
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kinds = variants(info)
        if is_union(info):
            tag = values.get(name, info.get_default(call_default_factory=True).name)
            kind = next((k for k in kinds if k.model_fields["name"].default == tag), None)
            own = {k: values[k] for k in kind.model_fields if k in values and k != "name"} if kind else {}
            data[name] = {"name": tag, **own}
        elif kinds:
            data[name] = nest(kinds[0], values)
        elif name in values:
            data[name] = values[name]
    return data


def flatten(settings: BaseModel) -> dict[str, Any]:
    """A settings tree's values by setting name (a tag valued under the field holding its variant)."""
    out: dict[str, Any] = {}
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if is_union(info):
            out[name] = value.name
            out.update({k: v for k, v in flatten(value).items() if k != "name"})
        elif isinstance(value, BaseModel):
            out.update(flatten(value))
        else:
            out[name] = value
    return out


def settings_fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo, type[BaseModel]]]:
    """Every setting of ``model``'s tree: (name, field, the model declaring it); a union's tag under the union's
    name."""
    for name, info in model.model_fields.items():
        if is_union(info):
            yield name, info, model
            for kind in variants(info):
                yield from ((n, i, m) for n, i, m in settings_fields(kind) if n != "name")
        elif variants(info):
            yield from settings_fields(variants(info)[0])
        else:
            yield name, info, model


def buffer_setting_names() -> set[str]:
    """The settings of the buffer itself (size, clock, keep policy, scoring), not of one controller."""
    controller = BufferConfig.model_fields["controller"]
    own = {n for kind in variants(controller) for n, _, _ in settings_fields(kind)}
    return {name for name, _, _ in settings_fields(BufferConfig)} - own - {"controller"}
