"""Offline replay of recorded runs against any controller, and the bounds every controller is measured against.

The names below are imported on first use, so the command line (``rudder_agent.replay.cli``) loads
without torch and a bad option fails fast. ``bounds`` and ``belady`` are functions, named like
the submodules that define them: importing a submodule never rebinds them to the module.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_WHERE = {
    "Bound": "belady", "belady": "belady", "compulsory": "belady",
    "bounds": "bounds",
    "Oracle": "oracle", "OracleJudge": "oracle", "OracleLabel": "oracle",
    "Recording": "recording", "load_recording": "recording", "recorded_ranks": "recording",
    "replay": "simulator", "replay_run": "simulator",
}

__all__ = sorted(_WHERE)


class _LazyPackage(types.ModuleType):
    """Exports resolved on first use (then cached); a submodule never takes an exported name."""

    def __getattr__(self, name: str) -> Any:
        if name not in _WHERE:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{_WHERE[name]}"), name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return  # the import system binding a submodule (bounds, belady) over the function it exports
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _LazyPackage
