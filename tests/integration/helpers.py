"""Starting real runs through the CLI, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rudder_agent.metrics import read_jsonl

TINY = ["--dataset", "synthetic:4000", "--parts", "2", "--batch-size", "300"]


def rudder(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `rudder` CLI in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "rudder_agent.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def train(out: Path, *args: str) -> Path:
    """A successful tiny run; fails the test with the CLI's output otherwise."""
    proc = rudder("train", *TINY, "--out", str(out), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def minibatches(run: Path, rank: int) -> list[dict]:
    return read_jsonl(run / f"metrics-rank{rank}.jsonl", kind="minibatch")
