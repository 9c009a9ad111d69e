"""Where shared data, caches and the packaged files live, so every module resolves them the same way.

The same code runs from a checkout (``make install``: an editable install) and from an installed
wheel (``pip install .``). What ships inside the package (prompt templates) is found beside this
file; what a user owns is found from the environment first:

- shared data: ``$RUDDER_DATA``, else ``../shared/data`` beside a checkout, else the per-user data
  folder (``platformdirs``, e.g. ``~/.local/share/rudder/data``);
- caches (features, partitions, downloads, converted model weights): ``$RUDDER_CACHE``, else the per-user
  cache folder (``platformdirs``, e.g. ``~/.cache/rudder``);
- a run's shared memory: every name under ``/dev/shm`` starts with ``$RUDDER_SHM_PREFIX`` (set by the launcher
  for each role), so a run's leftovers can be found and removed.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "rudder"
PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
"""The checkout's root when running from one; for an installed wheel, the site-packages folder."""
PROMPTS_DIR = PACKAGE_DIR / "prompts"
"""Packaged prompt templates: ``decision/<version>/{system,user}.md``."""
SHM_PREFIX_ENV = "RUDDER_SHM_PREFIX"
"""The launcher's shared-memory name prefix of a run (see the module docstring)."""
RUN_CONFIG_ENV = "RUDDER_RUN_CONFIG"
"""The run's ``config.json``, named in every trainer's environment by ``rudder train``: a user's script attached
with :class:`rudder_agent.attach.BufferedFeatures` takes the run's settings from it without reading any file itself."""


def checkout_root() -> Path | None:
    """The source checkout this package runs from, or None when it runs from an installed wheel."""
    return PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else None


def shared_data_dir() -> Path:
    """Offline copies of public graphs: $RUDDER_DATA, ``../shared/data`` beside a checkout, or the user data folder."""
    env = os.environ.get("RUDDER_DATA")
    if env:
        return Path(env)
    root = checkout_root()
    return root.parent / "shared" / "data" if root else platformdirs.user_data_path(APP_NAME) / "data"


def cache_dir() -> Path:
    """Derived artefacts (features, partitions): $RUDDER_CACHE, or the per-user cache folder."""
    env = os.environ.get("RUDDER_CACHE")
    path = Path(env) if env else platformdirs.user_cache_path(APP_NAME)
    path.mkdir(parents=True, exist_ok=True)
    return path
