"""The launcher's supervision with stand-in processes (no DistDGL): failures, time-out, Ctrl-C, stop.

The stand-ins wait on ``signal.pause()`` until they are signalled, so "still running" is a state,
not a race with a clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rudder_agent.cluster.isolation import leftover_segments, remove_stale_segments
from rudder_agent.cluster.launcher import ClusterFailure, ClusterTimeout, LocalCluster
from rudder_agent.config import TrainConfig
from tests.integration.helpers import alive

WAITS = "import signal\nprint('up', flush=True)\nsignal.pause()\n"
FAILS = "import sys\nprint('server broke', flush=True)\nsys.exit(3)\n"
DONE = "print('done', flush=True)\n"


def cluster(tmp_path: Path, **roles: tuple[str, bool]) -> LocalCluster:
    """Start one stand-in process per role: ``role=(script, is_trainer)``."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    cfg = TrainConfig(dataset="x", parts=2, part_config=tmp_path / "p.json", graph_name="g", out_dir=run)
    c = LocalCluster(cfg, show_progress=False, shutdown_grace_s=5.0)
    for role, (script, is_trainer) in roles.items():
        path = tmp_path / f"{role}.py"
        path.write_text(script)
        c._start(role, 0, path, dict(os.environ), [], is_trainer)
    c._write_cluster_json()
    return c


def stopped(c: LocalCluster) -> dict:
    c.stop()
    return json.loads((c.run_dir / "cluster.json").read_text())


def test_a_failing_server_is_named_and_everything_else_is_stopped(tmp_path):
    c = cluster(tmp_path, **{"server-0": (FAILS, False), "trainer-0": (WAITS, True)})
    with pytest.raises(ClusterFailure, match=r"^server-0 failed \(exit code 3\)") as err:
        c.supervise()
    assert "server broke" in err.value.tail
    record = stopped(c)
    assert record["stopped_by_launcher"] == {"trainer-0": "SIGTERM"}
    assert record["exit_codes"] == {"server-0": 3, "trainer-0": -signal.SIGTERM}


def test_the_time_limit_stops_running_processes(tmp_path):
    c = cluster(tmp_path, **{"server-0": (WAITS, False), "trainer-0": (WAITS, True)})
    with pytest.raises(ClusterTimeout, match=r"^the run did not finish within 0.3 s \(--timeout\)"):
        c.supervise(timeout_s=0.3)
    record = stopped(c)
    assert record["stopped_by_launcher"] == {"server-0": "SIGTERM", "trainer-0": "SIGTERM"}
    assert set(record["exit_codes"].values()) == {-signal.SIGTERM}


def test_a_ctrl_c_flag_interrupts_supervision(tmp_path):
    c = cluster(tmp_path, **{"server-0": (WAITS, False), "trainer-0": (WAITS, True)})
    c._interrupted.set()
    with pytest.raises(KeyboardInterrupt):
        c.supervise()
    assert set(stopped(c)["stopped_by_launcher"]) == {"server-0", "trainer-0"}


def test_a_finished_run_is_not_signalled(tmp_path):
    c = cluster(tmp_path, **{"server-0": (DONE, False), "trainer-0": (DONE, True)})
    c.supervise(timeout_s=60)  # the limit is a hang guard only
    record = stopped(c)
    assert record["stopped_by_launcher"] == {}
    assert record["exit_codes"] == {"server-0": 0, "trainer-0": 0}


LAUNCHER = r"""
import os, sys
from pathlib import Path
from rudder_agent.cluster import isolation
from rudder_agent.cluster.launcher import LocalCluster
from rudder_agent.config import TrainConfig

tmp = Path(sys.argv[1])
run = tmp / "run"
(run / "logs").mkdir(parents=True)
c = LocalCluster(TrainConfig(dataset="x", parts=1, part_config=tmp / "p.json", graph_name="g", out_dir=run),
                 show_progress=False)
env = {**os.environ, isolation.PREFIX_ENV: c.run_prefix}
for role in ("server-0", "trainer-0"):
    c._start(role, 0, tmp / "holds_shm.py", env, [], role.startswith("trainer"))
c._write_cluster_json()
c.supervise()
"""
HOLDS_SHM = """
import os, signal, sys
path = f"/dev/shm/{os.environ['RUDDER_SHM_PREFIX']}m0_{sys.argv[0].rsplit('/', 1)[-1]}_{os.getpid()}"
open(path, "w").close()  # a shared-memory segment under the run's prefix, as DGL's servers and trainers make
print("up", flush=True)
signal.pause()
"""


def test_a_killed_launcher_takes_its_processes_along_and_the_next_launch_removes_their_memory(tmp_path):
    """SIGKILL leaves the launcher no chance to stop anything: the kernel's parent-death signal ends its
    processes, and the next launch removes the shared memory of runs whose every process is gone."""

    (tmp_path / "holds_shm.py").write_text(HOLDS_SHM)
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path)])
    run = tmp_path / "run"
    logs = [run / "logs" / f"{role}.log" for role in ("server-0", "trainer-0")]
    deadline = time.monotonic() + 60  # hang guard only: both stand-ins write "up" once they hold their segment
    while not all(p.exists() and "up" in p.read_text() for p in logs):
        assert launcher.poll() is None and time.monotonic() < deadline, "the stand-ins never came up"
        time.sleep(0.05)
    cluster = json.loads((run / "cluster.json").read_text())
    assert len(leftover_segments(cluster["shm_prefix"])) == 2
    launcher.kill()
    launcher.wait()
    cluster = json.loads((run / "cluster.json").read_text())
    assert "exit_codes" not in cluster  # the launcher never got to stop anything itself
    pids = cluster["pids"].values()
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline + 30, "a stand-in outlived its launcher"  # hang guard only
        time.sleep(0.05)
    assert len(leftover_segments(cluster["shm_prefix"])) == 2  # nobody removed them: the launcher was killed
    remove_stale_segments()  # what the next launch does first
    assert leftover_segments(cluster["shm_prefix"]) == []

