"""Older config.json files, upgraded to the current shape by one function, one step per version.

Version 1 (no ``version`` key) is the flat buffer of the runs recorded first: every setting of
every controller side by side, some under older names (``llm_model``, earlier ``model``; the swap
test as true/false), the keep policy missing before there was one (those runs used decay), the
GNN settings under ``model`` instead of ``gnn``, and a testing aid, ``fail_at_step``.
Version 2 nests the buffer (:class:`rudder_agent.settings.buffer.BufferConfig`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rudder_agent.settings.buffer import BufferConfig, nest

CONFIG_VERSION = 2
"""The shape of the config.json this code writes."""

RENAMED: dict[str, str] = {
    "llm_model": "model", "llm_threads": "n_threads", "llm_timeout_s": "timeout_s",
    "llm_min_difference_pct": "min_difference_pct", "llm_whatif": "whatif", "llm_duty_cycle": "duty_cycle",
    "llm_swap_test": "swap_test",
}
"""A version-1 buffer field -> the name of the setting it holds (``model`` kept its name)."""

RECORDED_BEFORE: dict[str, Any] = {"policy": "decay"}
"""Buffer settings added after runs were first recorded, with the value every earlier run used."""


def current_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Buffer settings by version-1 name (a config's buffer, an older replay's overrides) under today's names."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = RENAMED.get(key, key)
        if name in out:
            raise ValueError(f"{key!r} and {name!r} both set {name}: give one")
        out[name] = {True: "on", False: "off"}[value] if name == "swap_test" and isinstance(value, bool) else value
    return out


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded run's config dict (any version) in the current shape, so it loads and replays as it ran."""
    version = data.get("version", 1)
    if version > CONFIG_VERSION:
        raise ValueError(f"config version {version} is newer than this rudder reads ({CONFIG_VERSION}): upgrade rudder")
    out = dict(data)
    if version == 1:
        out = _from_version_1(out)
    return out


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """Nest the flat buffer, its older names current; ``model`` -> ``gnn``; the testing aid dropped."""
    if "model" in data:
        if "gnn" in data:
            raise ValueError("'model' and 'gnn' both set the GNN settings: give one")
        data["gnn"] = data.pop("model")
    data.pop("fail_at_step", None)
    if isinstance(data.get("buffer"), dict):
        data["buffer"] = nest(BufferConfig, current_values({**RECORDED_BEFORE, **data["buffer"]}))
    return {**data, "version": 2}
