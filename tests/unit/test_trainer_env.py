"""A user's trainer script gets the run's isolation as its interpreter starts, with no import of ours, and any
sitecustomize it shadows still runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rudder_agent.cluster.trainer_env import STARTUP_DIR, with_startup
from rudder_agent.paths import SHM_PREFIX_ENV

PROBE = "import sys; print(sys.modules['rudder_agent.cluster.isolation']._applied if " \
        "'rudder_agent.cluster.isolation' in sys.modules else 'not loaded')"


def start(tmp_path: Path, **env: str) -> list[str]:
    shadowed = tmp_path / "theirs"
    shadowed.mkdir(exist_ok=True)
    (shadowed / "sitecustomize.py").write_text("print('their sitecustomize ran')\n")
    base = {k: v for k, v in os.environ.items() if k != SHM_PREFIX_ENV}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120,
                          env={**base, **env, "PYTHONPATH": with_startup(str(shadowed))})
    return proc.stdout.split()


def test_a_launched_script_starts_with_the_isolation_applied(tmp_path: Path) -> None:
    assert start(tmp_path, **{SHM_PREFIX_ENV: "rudder_0000abcd_"}) == ["their", "sitecustomize", "ran", "True"]


def test_outside_a_run_nothing_of_ours_is_loaded(tmp_path: Path) -> None:
    assert start(tmp_path) == ["their", "sitecustomize", "ran", "not", "loaded"]
    assert with_startup(None) == str(STARTUP_DIR) and with_startup("/a").startswith(str(STARTUP_DIR) + os.pathsep)
