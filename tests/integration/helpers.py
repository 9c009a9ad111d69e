"""Starting real runs through the CLI, as a user would, and checking what they leave behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from rudder_agent.records.stream import read_jsonl

TINY = ["--dataset", "synthetic:4000", "--parts", "2", "--batch-size", "300"]
ROLES = {"server-0", "server-1", "trainer-0", "trainer-1"}
STOPPED = {-signal.SIGTERM, -signal.SIGKILL, -signal.SIGABRT, -signal.SIGSEGV}
"""Exit codes of a process ended by the launcher's SIGTERM (or the SIGKILL after it). DGL's own handler
answers SIGTERM with "User pressed Ctrl+C, Exiting" and then aborts, hence SIGABRT; under load its
teardown has also crashed (SIGSEGV, seen once in a Ctrl-C with the model server and namespaces up).
Tests check with ``stopped_by_launcher`` that such a process was signalled first."""


def rudder(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
           prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the `rudder` CLI in a child process (``prefix`` e.g. runs it as another user)."""
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "rudder_agent.cli", *args], capture_output=True, text=True,
        timeout=timeout, env=env,
    )


def start_rudder(*args: str, **popen) -> subprocess.Popen:
    """Start the `rudder` CLI without waiting for it (to interrupt or disturb it mid-run)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "rudder_agent.cli", *args], text=True, **popen)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    """Wait for a started run; one that hangs is interrupted, then killed (its processes follow it) and fails."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise


def train(out: Path, *args: str) -> Path:
    """A successful tiny run; fails the test with the CLI's output otherwise."""
    proc = rudder("train", *TINY, "--out", str(out), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def minibatches(run: Path, rank: int) -> list[dict]:
    return read_jsonl(run / f"metrics-rank{rank}.jsonl", kind="minibatch")


def wait_for_file(path: Path, proc: subprocess.Popen, limit_s: float = 180) -> None:
    """Hang guard only: wait until ``path`` exists (training has started) or the run has ended."""
    deadline = time.monotonic() + limit_s
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not path.exists():
        if proc.poll() is None:
            proc.kill()  # the launcher's processes get SIGTERM when it dies
        out, err = proc.communicate()
        raise AssertionError(f"{path.name} never appeared (exit code {proc.returncode}):\n{out}\n{err}")


def cluster_record(run_dir: Path) -> dict:
    """cluster.json: pids at start; at stop, which processes the launcher signalled and every exit code."""
    return json.loads((run_dir / "cluster.json").read_text())


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_no_leftovers(run_dir: Path) -> dict:
    """Every process of the run has ended, the launcher saw each end, and the shared memory is gone."""
    cluster = cluster_record(run_dir)
    assert set(cluster["pids"]) == ROLES
    assert [role for role, pid in cluster["pids"].items() if alive(pid)] == []
    assert set(cluster["exit_codes"]) == ROLES and None not in cluster["exit_codes"].values(), cluster
    assert sorted(Path("/dev/shm").glob(cluster["shm_prefix"] + "*")) == []
    return cluster


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()}
