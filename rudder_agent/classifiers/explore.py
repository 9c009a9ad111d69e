"""Random replace/skip behaviour for replays, so training sees buffer states the recorded controller never left.

A classifier trained only on a fixed (always replace) recording has never seen an empty or
stale buffer, and in closed loop it drifts into exactly those states. Replaying the same
access stream with random decisions and judging every state with the oracle covers them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.decision import DecisionOutcome, DecisionRequest


class RandomBehaviour(Controller):
    """Replace with probability ``p`` at every minibatch (seeded, so datasets are reproducible)."""

    name = "explore"
    spec = ControllerSpec(inline=True)

    def __init__(self, p: float, seed: int | Sequence[int]):
        if not 0.0 <= p <= 1.0:
            raise ValueError("a replace probability must lie in [0, 1]")
        self.p = p
        self.rng = np.random.default_rng(seed)

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        replace = bool(self.rng.random() < self.p)
        return DecisionOutcome(request_step=request.step, decision="replace" if replace else "skip",
                               reason=f"random behaviour p={self.p:g}")
