"""The wrapper that runs a role over ssh: the role ends when the launcher's input ends, its exit code comes back,
and a server's wrapper leaves nothing of the run in /dev/shm."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from tests.integration.helpers import alive

SHM = Path("/dev/shm")


def wrapper(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rudder_agent.cluster.remote", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, **popen)


def test_the_role_exit_code_comes_back_and_the_runs_segments_are_removed() -> None:
    prefix = f"rudder_{uuid.uuid4().hex[:8]}_"
    other = SHM / f"rudder_{uuid.uuid4().hex[:8]}_other"
    other.write_bytes(b"another run's")
    try:
        proc = wrapper("--clean-shm", prefix, "--", sys.executable, "-c",
                       f"open('/dev/shm/{prefix}graph', 'w').write('x'); raise SystemExit(3)")
        assert proc.wait(timeout=60) == 3
        assert sorted(SHM.glob(prefix + "*")) == [] and other.exists()
    finally:
        other.unlink()


def test_end_of_input_stops_the_role_and_its_children() -> None:
    """The role starts a grandchild; closing the wrapper's input (the ssh connection ending) ends both."""
    proc = wrapper("--", sys.executable, "-c",
                   "import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; "
                   "time.sleep(600)']); print(c.pid, flush=True); time.sleep(600)")
    grandchild = int(proc.stdout.readline())
    proc.stdin.close()
    assert proc.wait(timeout=60) == 128 + 15  # SIGTERM
    assert not alive(grandchild)
