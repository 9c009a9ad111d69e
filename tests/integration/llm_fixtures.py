"""Live runs with the embedded model: launching `rudder train`, watching its model servers, reading its records."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from rudder_agent.records.stream import read_jsonl
from tests.integration.helpers import TINY, alive  # noqa: F401  (alive: re-exported for the llm tests)

SERVER_SCRIPT = "serve_gguf.py"
STARTED = re.compile(r"embedded_llm_started\b.*?\bpid=(\d+)")
STOPPED = re.compile(r"embedded_llm_stopped\b.*?\bpid=(\d+)\b.*?\breturncode=(-?\d+)")
SLOTS = re.compile(r"embedded_llm_started\b.*?\bslots=(\d+)")

# Small batches give many minibatches; a small buffer fills at once (the guard fills empty slots without
# the model) and a high tau makes entries stale after a few idle rounds, so the guard lets the model decide.
ASKS_THE_MODEL = ["--batch-size", "60", "--buffer-fraction", "0.05", "--tau", "0.9"]


def launch(out: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """`rudder train` on the tiny synthetic graph in a child process; its stderr goes to a file beside ``out``."""
    stderr = out.parent / f"{out.name}.stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "rudder_agent.cli", "train", *TINY, "--out", str(out), *args],
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
    return proc, stderr


class ServerWatch:
    """Records every llama.cpp server process (serve_gguf.py) below a process, with its parent.

    A server started by a trainer lives as long as that trainer's controller (the whole run),
    so a poll every 0.1 s cannot miss one; the launcher's own log line is checked as well.
    With ``nice`` set, each server found is given that CPU priority (see test_llm_async_live.py).
    """

    def __init__(self, root: int, nice: int | None = None):
        self.root = root
        self.nice = nice
        self.seen: dict[int, int] = {}  # pid -> parent pid
        self.reniced: list[int] = []
        self.renice_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                for child in psutil.Process(self.root).children(recursive=True):
                    try:
                        if child.pid in self.seen or any(p.endswith(SERVER_SCRIPT) for p in child.cmdline()):
                            self.seen.setdefault(child.pid, child.ppid())
                            self._renice(child.pid)
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        continue
            except psutil.NoSuchProcess:
                return
            self._stop.wait(0.1)

    def _renice(self, pid: int) -> None:
        """Every thread of ``pid`` (a nice value is per thread on Linux), again at each poll: the server
        sets its own nice value after start and llama.cpp may start threads later."""
        if self.nice is None:
            return
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                if os.getpriority(os.PRIO_PROCESS, int(tid)) != self.nice:
                    os.setpriority(os.PRIO_PROCESS, int(tid), self.nice)
        except (FileNotFoundError, ProcessLookupError):
            return  # it ended
        except PermissionError as err:  # raising a priority needs CAP_SYS_NICE
            self.renice_error = str(err)
            return
        if pid not in self.reniced:
            self.reniced.append(pid)

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join()
        return dict(self.seen)


def stop_watching(watch: ServerWatch, proc: subprocess.Popen) -> dict[int, int]:
    """The servers ``watch`` saw below ``proc``; ``proc`` killed if it still runs (its processes follow it)."""
    servers = watch.stop()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return servers


def wait_for(predicate, what: str, bound_s: float = 240.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``predicate`` until true; fail (not hang) after ``bound_s`` or if ``proc`` ends first."""
    deadline = time.monotonic() + bound_s
    while not predicate():
        assert proc is None or proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {bound_s:.0f} s"
        time.sleep(0.2)


def controller_record(run: Path, rank: int) -> dict:
    """The kind=controller record a trainer writes when it closes its controller."""
    (record,) = read_jsonl(run / f"metrics-rank{rank}.jsonl", kind="controller")
    return record


def model_calls(record: dict) -> int:
    """Decisions that asked the model (valid or not), from one trainer's record; guard answers ask nothing."""
    d = record["decisions"]
    return d.get("replace", 0) + d.get("skip", 0) + d.get("invalid", 0)
