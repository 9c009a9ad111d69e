"""The asynchronous controller thread runs at a lower CPU priority than training; sync mode does not.

Relative to the caller (training), so the test holds whatever nice value the suite itself runs at."""

from __future__ import annotations

import os
import threading

import pytest

from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.controllers.runner import ControllerRunner
from rudder_agent.decision import DecisionOutcome, DecisionRequest


class NiceReporter(Controller):
    name, spec = "probe", ControllerSpec(thread_nice=19)

    def __init__(self):
        self.nice: int | None = None

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return DecisionOutcome(request_step=request.step, decision="skip")

    def close(self) -> None:
        pass


LOWEST = 19


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_controller_thread_priority(mode) -> None:
    training = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
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
    if mode == "async":  # below training: the lowest priority there is, strictly below unless training is there too
        assert ctl.nice == LOWEST and (ctl.nice > training or training == LOWEST)
    else:  # the caller's own thread decides: training's priority
        assert ctl.nice == training
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == training  # the caller (training) is untouched
