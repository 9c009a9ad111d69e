"""Where shared data and caches live, so every module resolves them the same way."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """Offline copies of public graphs (``../shared/data`` beside the checkout, or $RUDDER_DATA)."""
    env = os.environ.get("RUDDER_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """Derived artefacts (features, partitions); $RUDDER_CACHE or ``.rudder-cache`` in the checkout."""
    env = os.environ.get("RUDDER_CACHE")
    path = Path(env) if env else PROJECT_ROOT / ".rudder-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
