"""A command draws progress bars on a terminal only: redirected to a file, its stderr has no carriage return."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PARTITION = [sys.executable, "-m", "rudder_agent.cli", "partition", "--dataset", "cora", "--parts", "2", "--force"]


def test_redirected_stderr_gets_no_bar(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    with log.open("w") as err:
        proc = subprocess.run(PARTITION, stdout=subprocess.DEVNULL, stderr=err, timeout=300,
                              env={**os.environ, "RUDDER_CACHE": str(tmp_path / "cache")})
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "partition.done" in text and "\r" not in text and "stage" not in text


def test_a_terminal_gets_the_bar(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(PARTITION, stdout=subprocess.DEVNULL, stderr=follower,
                            env={**os.environ, "RUDDER_CACHE": str(tmp_path / "cache")})
    os.close(follower)
    chunks = []
    try:
        while True:
            if select.select([leader], [], [], 300)[0]:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            else:
                break
    finally:
        os.close(leader)
        assert proc.wait(timeout=300) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "\rcora: " in text and "stage" in text  # tqdm's bar, redrawn in place
