"""The counterfactual decision oracle: at each decision point, the action with fewer rows over a horizon.

From the buffer state before minibatch s, two forks play minibatches s .. s+H-1 of the
recorded stream: one replaces at s, the other skips at s; both then follow ``rollout``.
The action whose fork fetches fewer remote rows (misses + replacement rows) wins; a tie
goes to skip (a replacement that buys nothing is not worth its work). With the default
rollout (replace, i.e. DistDGL+fixed) the oracle is a one-step policy improvement over
fixed: on an ogbn-arxiv trace it fetched 1.9% fewer rows than fixed, where a skip rollout
was no better than fixed (it misses benefits that arrive after the horizon).
The same judgement labels any trajectory's states for classifier training and agreement
metrics (``replay_run(label_horizon=H)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.config import BufferConfig
from rudder_agent.controllers.base import Controller
from rudder_agent.controllers.spec import ControllerSpec
from rudder_agent.decision import DEFAULT_HORIZON, Action, DecisionOutcome, DecisionRequest
from rudder_agent.errors import SettingError
from rudder_agent.records.oracle import OracleLabel
from rudder_agent.buffer.counterfactual import play


class OracleJudge:
    """Judges decision points of one replay: reads the live engine's state, never changes it."""

    def __init__(self, engine: BufferEngine, steps: Sequence[int], inputs: Sequence[np.ndarray],
                 horizon: int = DEFAULT_HORIZON, rollout: Action = "replace",
                 windows: Callable[[int], Sequence[np.ndarray]] = lambda i: ()):
        if horizon < 1:
            raise ValueError("horizon must be >= 1 minibatch")
        self.engine, self.inputs, self.horizon, self.rollout = engine, inputs, horizon, rollout
        self.windows = windows  # index -> the look-ahead window the live step saw there
        self._index = {s: i for i, s in enumerate(steps)}

    def label(self, step: int) -> OracleLabel:
        """Compare replace and skip at ``step`` on forks of the current buffer state."""
        first = self._index[step]
        played = range(first, min(first + self.horizon, len(self.inputs)))
        replace_comm, skip_comm = (self._cost(replace_first, played) for replace_first in (True, False))
        return OracleLabel(step=step, horizon=self.horizon, replace_comm=replace_comm, skip_comm=skip_comm,
                           label="replace" if replace_comm < skip_comm else "skip")

    def _cost(self, replace_first: bool, played: range) -> int:
        """Remote rows fetched by a fork that plays minibatches ``played``, choosing ``replace_first`` then the rollout."""
        return play(self.engine, [self.inputs[i] for i in played], replace_first, self.rollout == "replace",
                    [self.windows(i) for i in played]).rows


class Oracle(Controller):
    """Analysis-only controller: sees the future of the replayed stream; usable in replay only."""

    name = "oracle"
    spec = ControllerSpec(inline=True)  # it must judge the exact state each minibatch starts from
    replay_options = ("horizon", "rollout")

    def __init__(self, horizon: int = DEFAULT_HORIZON, rollout: Action = "replace"):
        self.horizon, self.rollout = horizon, rollout
        self.judge: OracleJudge | None = None

    @classmethod
    def from_replay(cls, recorded: BufferConfig, recording: Any, **overrides) -> Controller:
        """Horizon and rollout may be overridden; the keep-policy overrides belong to the buffer, not the oracle."""
        return cls(**{k: v for k, v in overrides.items() if k in cls.replay_options})

    @classmethod
    def preflight_replay(cls, recorded: BufferConfig, **overrides) -> None:
        """Only the horizon is the oracle's own; the buffer's overrides are checked with the recorded settings."""
        if overrides.get("horizon", DEFAULT_HORIZON) < 1:
            raise SettingError("horizon", f"must be at least 1 minibatch, got {overrides['horizon']}")

    def bind(self, engine: BufferEngine, recording: Any) -> None:
        """Give the oracle the replay's engine and stream (the simulator calls this before the first step)."""
        self.judge = OracleJudge(engine, recording.steps, recording.inputs, self.horizon, self.rollout,
                                 lambda i: recording.window(i, engine.keep.window))

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        if self.judge is None:
            raise RuntimeError("the oracle sees the future only inside a replay: bind() it to the replay's engine")
        v = self.judge.label(request.step)
        reason = f"rows over {v.horizon} minibatches: replace {v.replace_comm}, skip {v.skip_comm}"
        return DecisionOutcome(request_step=request.step, decision=v.label, reason=reason)
