"""The three baselines of the paper: no buffer, replace every minibatch, MassiveGNN."""

from __future__ import annotations

import numpy as np

from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.decision import DecisionOutcome, DecisionRequest
from rudder_agent.settings.controllers import MassiveGNNSettings


class NoBuffer(Controller):
    """DistDGL as shipped: no buffer, every remote row fetched every time."""

    name = "none"
    spec = ControllerSpec(uses_buffer=False, inline=True)

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        return DecisionOutcome(request_step=request.step, decision="skip", reason="no buffer")


class ReplaceEveryMinibatch(Controller):
    """DistDGL+fixed: a replacement at every minibatch."""

    name = "fixed"
    spec = ControllerSpec(inline=True)

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        return DecisionOutcome(request_step=request.step, decision="replace", reason="fixed policy")


class MassiveGNN(Controller):
    """Warm start with the highest-degree remote nodes, then a replacement every ``period`` minibatches."""

    name = "massivegnn"
    spec = ControllerSpec(inline=True, warm_starts=True)

    def __init__(self, period: int):
        self.period = period

    @classmethod
    def from_settings(cls, settings: MassiveGNNSettings) -> Controller:
        return cls(settings.period)

    def warm_start(self, remote_ids: np.ndarray, remote_degrees: np.ndarray, capacity: int) -> np.ndarray:
        order = np.lexsort((remote_ids, -np.asarray(remote_degrees)))  # degree desc, id asc
        return np.asarray(remote_ids)[order[:capacity]]

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        due = request.step > 0 and request.step % self.period == 0
        return DecisionOutcome(
            request_step=request.step, decision="replace" if due else "skip", reason=f"period {self.period}"
        )
