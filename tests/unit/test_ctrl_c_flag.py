"""Ctrl-C during a local run becomes a flag the supervisor polls, so it cannot be lost in a finalizer."""

from __future__ import annotations

import os
import signal
import threading

from rudder_agent.cluster.launcher import _ctrl_c_as_flag


def test_sigint_sets_the_flag_instead_of_raising_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    flag = threading.Event()
    with _ctrl_c_as_flag(flag):
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt here without the context manager
        assert flag.wait(5)  # the handler runs in this (main) thread; the timeout is a hang guard only
    assert signal.getsignal(signal.SIGINT) is before
