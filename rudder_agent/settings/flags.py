"""What a settings field tells the command line beyond its default, help and bounds."""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo


def flag(*aliases: str, switch: str | None = None, env: tuple[str, ...] = (), **typer_kwargs: Any) -> dict[str, Any]:
    """``json_schema_extra`` of a field whose flag keeps older names (``aliases``) or takes typer arguments.

    ``switch``: a choice field also gets ``--<switch>``, which sets that value (``--sync`` for mode).
    ``env``: older names of its environment variable (see :func:`env_names`).
    """
    return {"flag": {"aliases": aliases, "switch": switch, "env": env, "typer": typer_kwargs}}


INTERNAL: dict[str, Any] = {"flag": None}
"""``json_schema_extra`` of a field that no command line sets (the agent's own knobs)."""


def flag_of(info: FieldInfo) -> dict[str, Any] | None:
    """The field's flag description (aliases, switch, typer arguments); None for an internal field."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "flag" in extra and extra["flag"] is None:
        return None
    return {"aliases": (), "switch": None, "env": (), "typer": {}, **(extra.get("flag") or {})}


def env_names(prefix: str, name: str, info: FieldInfo) -> tuple[str, ...]:
    """The environment variables that set field ``name``: ``<prefix><NAME>``, then its older names."""
    described = flag_of(info)
    return (prefix + name.upper(), *(described["env"] if described else ()))
