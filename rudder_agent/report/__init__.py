"""Reports over live runs and replays: tables like the paper's Tables 2-4, Pass@1 with intervals, figures.

The names below are imported on first use, so the command line (``rudder_agent.report.cli``) loads
without torch or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Report": "build", "write_report": "build",
    "PassOptions": "figures",
    "PassRate": "passk", "judge": "passk", "pass_rate": "passk", "wilson": "passk",
    "Run": "runs", "load_run": "runs", "load_runs": "runs",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
