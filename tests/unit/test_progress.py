"""Progress bars only on a terminal: elsewhere whole lines at most every interval, never a carriage return."""

from __future__ import annotations

import ast
import fcntl
import io
import os
import pty
import select
import struct
import sys
import termios
from pathlib import Path

import pytest

from rudder_agent.progress import PlainProgress, is_terminal, progress

ROOT = Path(__file__).resolve().parents[2]


def test_not_a_terminal_gets_plain_lines_and_nothing_for_short_work(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert not is_terminal()
    items = list(progress(range(40), desc="replay rank 0", unit="mb"))
    assert items == list(range(40)) and err.getvalue() == ""  # quick work: silent


def test_plain_lines_are_periodic_whole_lines(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    clock = iter(range(0, 1000, 10))  # every call to monotonic() is 10 s later
    monkeypatch.setattr("rudder_agent.progress.time.monotonic", lambda: next(clock))
    with progress(total=6, desc="epochs", unit="epoch", interval_s=25) as bar:
        assert isinstance(bar, PlainProgress)
        for _ in range(6):
            bar.update()
        bar.write("epoch line")
    text = err.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines == ["epochs: 3/6 epoch (50%) running, 30 s", "epochs: 6/6 epoch (100%) running, 60 s",
                     "epoch line", "epochs: 6/6 epoch (100%) done, 70 s"]


def test_a_terminal_gets_a_tqdm_bar(monkeypatch):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a terminal has a size
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            monkeypatch.setattr(sys, "stderr", tty)
            assert is_terminal()
            for _ in progress(range(3), desc="bounds", unit="run"):
                pass
            tty.flush()
        assert select.select([leader], [], [], 5)[0], "nothing was drawn"
        assert "\rbounds:" in os.read(leader, 65536).decode()  # tqdm redraws its bar in place
    finally:
        os.close(leader)
        os.close(follower)


def test_disabled_is_silent_everywhere(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress(total=3, desc="x", enabled=False)
    bar.update(3)
    bar.close()
    assert err.getvalue() == ""


@pytest.mark.parametrize("folder", ["rudder_agent", "benchmarks", "examples"])
def test_nothing_draws_tqdm_itself(folder):
    """One helper everywhere: only rudder_agent/progress.py imports tqdm."""
    offenders = []
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "tqdm" or n.startswith("tqdm.") for n in names) and path.name != "progress.py":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
