"""A lowered model server gets its CPU priority back before it is asked to stop (else, starved, it may not)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rudder_agent.llm.embedded import restore_priority

LOWERED = r"""
import os, sys, threading, time
os.nice(19)
try:
    with open("/proc/self/autogroup", "w") as f:
        f.write("19")
except OSError:
    pass
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a second thread, lowered with the first
print("ready", flush=True)
sys.stdin.read()
"""


def nice_of(pid: int, tid: int) -> int:
    with open(f"/proc/{pid}/task/{tid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[16])  # field 19 of stat: nice


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority needs root (CAP_SYS_NICE)")
def test_every_thread_and_the_autogroup_are_raised_back() -> None:
    proc = subprocess.Popen([sys.executable, "-c", LOWERED], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        tids = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task")]
        assert len(tids) >= 2 and all(nice_of(proc.pid, t) == 19 for t in tids)
        assert restore_priority(proc.pid)
        assert [nice_of(proc.pid, t) for t in tids] == [0] * len(tids)
        if os.path.exists(f"/proc/{proc.pid}/autogroup"):
            with open(f"/proc/{proc.pid}/autogroup") as fh:
                assert fh.read().split()[-1] == "0"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_process_that_is_gone_is_not_an_error() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    time.sleep(0.05)
    assert restore_priority(proc.pid) is False
