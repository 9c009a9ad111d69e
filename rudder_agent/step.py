"""One minibatch through the buffer, written once for live runs and replay.

decision (from the channel) → ``engine.prepare`` (hits, scoring, replacement plan) → read the
pulled rows (one DistTensor read live, nothing in replay) → ``engine.complete`` → metrics →
offered to the channel. Live and replay differ only in where the ids come from, how rows are
read and the channel's clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from rudder_agent.buffer.counterfactual import Outlook
from rudder_agent.buffer.engine import BufferEngine, FetchPlan
from rudder_agent.controllers.channel import DecisionChannel
from rudder_agent.decision import DecisionOutcome, DecisionRecord
from rudder_agent.metrics import MinibatchMetrics, minibatch_record

IDLE = DecisionOutcome(request_step=-1, decision="replace", source="idle",
                       reason="no fresh answer; the keep policy re-ranks for free")
"""What a minibatch without an answer applies when its controller asks for it and replacing is free."""

ReadRows = Callable[[np.ndarray], torch.Tensor | None]
"""Rows of the given global ids, in that order (a DistTensor read), or None when nothing is read.

The tensor must be the caller's to give (a DistTensor read returns a fresh one): the engine writes the
buffer hits into it and serves it as the minibatch's features.
"""


def no_rows(ids: np.ndarray) -> None:
    """Replay reads no feature rows: the engine keeps ids and scores only."""
    return None


@dataclass(slots=True)
class Planned:
    """A minibatch planned and committed, its rows still to pull (:meth:`MinibatchStep.fill`)."""

    plan: FetchPlan
    metrics: MinibatchMetrics


class MinibatchStep:
    """Runs the per-minibatch protocol for one trainer (or one replayed rank)."""

    def __init__(self, engine: BufferEngine, channel: DecisionChannel | None, outlook: Outlook | None = None, *,
                 rank: int, row_bytes: int, timed: bool = True):
        """``outlook``: the view ahead the channel's requests carry (the same one: the step advances it)."""
        self.engine, self.channel = engine, channel
        self.rank, self.row_bytes, self.timed = rank, row_bytes, timed
        self.outlook = outlook if outlook is not None else Outlook(engine)

    def __call__(self, ids: np.ndarray, read_rows: ReadRows, *, epoch: int, step: int,
                 upcoming: Sequence[np.ndarray] = (), **extra) -> tuple[torch.Tensor | None, MinibatchMetrics]:
        """Features of minibatch ``step`` (None in replay) and its metrics, already offered to the channel.

        ``upcoming``: the input ids of the minibatches already sampled after this one (the look-ahead window).
        """
        tic = time.perf_counter()
        outcome, t_wait = self._decision(step)
        with self.outlook.lock:  # a controller thread may fork the engine: never mid-step
            plan = self._prepare(ids, outcome, upcoming)
            pulling = time.perf_counter()
            rows = read_rows(plan.pull_ids)
            t_pull = time.perf_counter() - pulling
            x = self.engine.complete(plan, rows)
            self.outlook.advance(ids, upcoming)
        if self.timed:
            extra = {"t_fetch": time.perf_counter() - tic - t_wait, "t_wait": t_wait, "t_keep": self.engine.keep_cpu_s,
                     "t_pull": t_pull, **extra}
        return x, self._offer(plan, outcome, epoch, step, extra)

    def plan(self, ids: np.ndarray, *, epoch: int, step: int, upcoming: Sequence[np.ndarray] = ()) -> Planned:
        """The first half of a pipelined step: decide, plan and commit minibatch ``step`` (ids only), offer its
        metrics; the pulled rows come with :meth:`fill`, called in plan order (a plain BufferEngine only).

        The channel sees the same metrics, and the engine the same ids, as with :meth:`__call__`: what is
        decided and fetched does not change, only when the rows arrive.
        """
        tic = time.perf_counter()
        outcome, t_wait = self._decision(step)
        with self.outlook.lock:
            plan = self._prepare(ids, outcome, upcoming)
            self.engine.commit(plan)
            self.outlook.advance(ids, upcoming)
        extra = {"t_fetch": time.perf_counter() - tic - t_wait, "t_wait": t_wait, "t_keep": self.engine.keep_cpu_s}
        return Planned(plan, self._offer(plan, outcome, epoch, step, extra))

    def fill(self, planned: Planned, read_rows: ReadRows) -> torch.Tensor:
        """The second half: read the planned rows and assemble the features (timed into the metrics)."""
        tic = time.perf_counter()
        rows = read_rows(planned.plan.pull_ids)
        pulled = time.perf_counter()
        x = self.engine.fill(planned.plan, rows)
        m = planned.metrics
        m.t_pull = pulled - tic
        m.t_fetch += time.perf_counter() - tic  # the plan's part, then this one
        return x

    def _decision(self, step: int) -> tuple[DecisionOutcome | None, float]:
        outcome, t_wait = self.channel.decision_for(step) if self.channel is not None else (None, 0.0)
        if outcome is None and self.channel is not None and self.channel.replaces_between_answers \
                and not self.engine.keep.fetches_rows:
            outcome = IDLE  # no fresh answer: keep re-ranking, which fetches nothing under this policy
        return outcome, t_wait

    def _prepare(self, ids: np.ndarray, outcome: DecisionOutcome | None, upcoming: Sequence[np.ndarray]):
        return self.engine.prepare(ids, replace=outcome is not None and outcome.decision == "replace",
                                   upcoming=upcoming)

    def _offer(self, plan, outcome: DecisionOutcome | None, epoch: int, step: int, extra: dict) -> MinibatchMetrics:
        if plan.share is not None:  # a machine-shared buffer: its order, waits and refetches
            extra = {**extra, **plan.share.fields()}
        metrics = minibatch_record(plan.counts, outcome, rank=self.rank, epoch=epoch, step=step,
                                   row_bytes=self.row_bytes, requested=self.channel is not None, **extra)
        if self.channel is not None:
            self.channel.offer(metrics)
        return metrics

    def decisions(self) -> list[DecisionRecord]:
        """Requests answered since the last call, for the metrics stream (kind=decision)."""
        answered = self.channel.stats.answered if self.channel is not None else ()
        out = []
        while answered:
            out.append(answered.popleft().model_copy(update={"rank": self.rank}))
        return out
