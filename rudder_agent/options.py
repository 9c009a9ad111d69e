"""Command-line options built from config fields, so a command's default, help and bounds cannot disagree."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import typer
from pydantic import BaseModel

_FROM_FIELD: Any = object()


def field_default(model: type[BaseModel], name: str) -> Any:
    """A field's default as the command line spells it (a list comma-separated)."""
    value = model.model_fields[name].get_default(call_default_factory=True)
    return ",".join(map(str, value)) if isinstance(value, list) else value


def bounds(model: type[BaseModel], name: str) -> dict[str, float]:
    """typer's min/max from the field's bounds; an open bound becomes closed and pydantic still rejects its end."""
    out: dict[str, float] = {}
    for constraint in model.model_fields[name].metadata:  # annotated_types Ge/Gt/Le/Lt
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
