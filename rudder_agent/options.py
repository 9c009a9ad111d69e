"""Command-line options built from config fields, so a command's default, help and bounds cannot disagree.

The buffer's settings become options by the rule of :mod:`rudder_agent.settings` (one option per
setting, named by its field), through :func:`setting_options` and :func:`setting_values`.
"""

from __future__ import annotations

import functools
import inspect
from types import UnionType
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rudder_agent.settings.buffer import BufferConfig, is_union, settings_fields
from rudder_agent.settings.flags import flag_of

_FROM_FIELD: Any = object()


def field_default(model: type[BaseModel], name: str) -> Any:
    """A field's default as the command line spells it (a list comma-separated)."""
    value = model.model_fields[name].get_default(call_default_factory=True)
    return ",".join(map(str, value)) if isinstance(value, list) else value


def bounds(model: type[BaseModel], name: str) -> dict[str, float]:
    """typer's min/max from the field's bounds; an open bound becomes closed and pydantic still rejects its end."""
    return field_bounds(model.model_fields[name])


def field_bounds(info: FieldInfo) -> dict[str, float]:
    """:func:`bounds` of one field."""
    out: dict[str, float] = {}
    for constraint in info.metadata:  # annotated_types Ge/Gt/Le/Lt
        for key, attr in (("min", "ge"), ("min", "gt"), ("max", "le"), ("max", "lt")):
            if getattr(constraint, attr, None) is not None:
                out[key] = getattr(constraint, attr)
    return out


def opt(model: type[BaseModel], name: str, *decls: str, default: Any = _FROM_FIELD, note: str = "",
        **typer_kwargs: Any) -> Any:
    """A typer option with the field's default, description (plus ``note``) and bounds; ``decls`` rename the flag."""
    info = model.model_fields[name]
    value = field_default(model, name) if default is _FROM_FIELD else default
    return typer.Option(value, *decls, help=(info.description or "") + note,
                        **{**bounds(model, name), **typer_kwargs})


def switch(model: type[BaseModel], name: str, value: str, **typer_kwargs: Any) -> Any:
    """A ``--<value>`` flag for a choice field: set means ``value``; unset means the field's default."""
    return typer.Option(field_default(model, name) == value, f"--{value}",
                        help=model.model_fields[name].description, **typer_kwargs)


def recorded(model: type[BaseModel], name: str, *decls: str, **typer_kwargs: Any) -> Any:
    """A `rudder replay` option: unset keeps the recorded run's value."""
    return opt(model, name, *decls, default=None, note=" (default: the recorded run's)", **typer_kwargs)


def flag_name(name: str) -> str:
    """A setting's flag: ``--`` and its name with dashes (:mod:`rudder_agent.settings`)."""
    return "--" + name.replace("_", "-")


def option_type(info: FieldInfo, optional: bool) -> Any:
    """The type typer parses a setting as: a choice or a variant's tag as text, ``X | None`` as Optional[X]."""
    members = get_args(info.annotation) if get_origin(info.annotation) in (Union, UnionType) else (info.annotation,)
    kinds = [k for k in members if k is not type(None)]
    kind = str if is_union(info) or get_origin(kinds[0]) is Literal else kinds[0]
    return Optional[kind] if optional or len(kinds) < len(members) else kind


def setting_options(*, recorded: bool = False, skip: tuple[str, ...] = (),
                    only: type[BaseModel] | None = None) -> dict[str, tuple[Any, Any]]:
    """An option group (see :func:`option_group`) with one option per buffer setting but ``skip``.

    ``recorded``: `rudder replay`'s options, whose unset value keeps the recorded run's.
    ``only``: the settings of one model of the tree (a controller's variant).
    """
    out: dict[str, tuple[Any, Any]] = {}
    for name, info, owner in settings_fields(BufferConfig):
        described = flag_of(info)
        if described is None or name in skip or only not in (None, owner):
            continue
        default = info.get_default(call_default_factory=True)
        default = None if recorded else (default.name if is_union(info) else default)
        kind = option_type(info, recorded)
        decls = [flag_name(name), *described["aliases"]]
        if kind in (bool, Optional[bool]):
            decls = [f"{d}/--no-{d[2:]}" if "/" not in d else d for d in decls]
        note = " (default: the recorded run's)" if recorded else ""
        out[name] = (kind, typer.Option(default, *decls, help=(info.description or "") + note,
                                        **{**field_bounds(info), **described["typer"]}))
        if described["switch"]:
            out[described["switch"]] = (bool, typer.Option(False, flag_name(described["switch"]),
                                                            help=info.description))
    return out


def setting_values(options: dict[str, Any], *, recorded: bool = False) -> dict[str, Any]:
    """The settings an option group's values give, by name (a switch set picks its value; paths made absolute).

    ``recorded``: only the options given (unset ones keep the recorded run's).
    """
    values = dict(options)
    for name, info, _ in settings_fields(BufferConfig):
        switch = (flag_of(info) or {}).get("switch")
        if switch and values.pop(switch, False):
            values[name] = switch
    return {k: v.resolve() if isinstance(v, Path) else v for k, v in values.items()
            if not (recorded and v is None)}


def option_group(name: str, options: dict[str, tuple[Any, Any]]) -> Any:
    """Give a command the options of a group shared with other commands; it receives their values as dict ``name``.

    ``options``: option parameter -> (type, typer option). The command declares ``name: dict`` last; the command
    line shows the group's options in its place, declared once for every command that takes the group.
    """

    def decorate(command: Any) -> Any:
        signature = inspect.signature(command)
        if list(signature.parameters)[-1] != name:
            raise TypeError(f"{command.__name__} must take `{name}` as its last parameter")
        shared = [inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
                  for option, (kind, default) in options.items()]

        @functools.wraps(command)
        def with_group(*args: Any, **kwargs: Any) -> Any:
            group = {option: kwargs.pop(option) for option in options}
            return command(*args, **kwargs, **{name: group})

        with_group.__signature__ = signature.replace(parameters=[*list(signature.parameters.values())[:-1], *shared])
        return with_group

    return decorate


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set option ``name`` (rather than leaving its default)."""
    source = ctx.get_parameter_source(name)  # click's ParameterSource: COMMANDLINE, ENVIRONMENT, DEFAULT, ...
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
