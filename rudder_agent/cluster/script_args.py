"""A user's trainer script's own command line (``rudder train --trainer SCRIPT -- ARGS``), placeholders filled.

Every trainer gets ARGS verbatim, as DGL's launch tool passes a user's command; ``{name}`` placeholders name
what only the run knows (where its ip_config and partition lie) or what it already sets. Without ARGS the
script gets ``--config {config}`` (the run's settings as one JSON file).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rudder_agent.errors import SettingError

PLACEHOLDERS: dict[str, str] = {
    "ip_config": "the run's ip_config file (DGL's format)",
    "part_config": "the partition's JSON (dgl.distributed.partition_graph's)",
    "graph_name": "the partition's graph name",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "fanouts": "--fanouts, comma-separated",
    "out": "the run directory (--out)",
    "config": "the run's settings, config.json in the run directory",
}
"""Placeholder name -> what it stands for."""
DEFAULT_ARGS = ("--config", "{config}")
"""What a script gets without ARGS."""
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def check(args: Sequence[str]) -> None:
    """Refuse a placeholder nobody fills (a misspelt one would reach the script as it is)."""
    unknown = sorted({m for a in args for m in _PLACEHOLDER.findall(a) if m not in PLACEHOLDERS})
    if unknown:
        raise SettingError("trainer", f"unknown placeholder {', '.join('{' + u + '}' for u in unknown)} in the "
                                      f"script's arguments; known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")


def fill(args: Sequence[str], values: dict[str, str]) -> list[str]:
    """``args`` with every placeholder replaced by its value."""
    return [_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), a) for a in args]
