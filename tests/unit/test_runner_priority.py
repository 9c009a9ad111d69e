"""The asynchronous controller thread runs at a lower CPU priority than training; sync mode does not."""

from __future__ import annotations

import os
import threading

import pytest

from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import DecisionOutcome, DecisionRequest


class NiceReporter:
    name, thread_nice = "probe", 19

    def __init__(self):
        self.nice: int | None = None

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return DecisionOutcome(request_step=request.step, decision="skip")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("mode, expected", [("async", 19), ("sync", 0)])
def test_controller_thread_priority(mode, expected) -> None:
    ctl = NiceReporter()
    runner = ControllerRunner(ctl, mode)
    try:
        runner.submit(DecisionRequest(step=0, window=[], stale=0, occupancy=0, capacity=1))
        if mode == "sync":
            runner.take()
        else:
            for _ in range(100):
                if runner.take() is not None:
                    break
                threading.Event().wait(0.02)
    finally:
        runner.close()
    assert ctl.nice == expected
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # the caller (training) is untouched
