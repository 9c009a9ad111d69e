"""The requests a controller answered, rebuilt from a rank's records, with what the recorded run did with each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rudder_agent.decision import DecisionOutcome, DecisionRecord, DecisionRequest
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.decisions import applied_outcome, decided
from rudder_agent.replay.open_loop.stream import RecordedStream


@dataclass(frozen=True)
class Window:
    """One request rebuilt from the stream, with what the recorded run did with it."""

    request: DecisionRequest
    recorded: DecisionOutcome | None
    """The recorded answer (None when the stream does not say)."""
    applied_step: int | None
    """The minibatch the recorded answer was applied to (None: the run ended first)."""
    missing: int = 0
    """Minibatches of the window absent from the stream (a torn or filtered file)."""


def applied_steps(minibatches: Sequence[MinibatchMetrics]) -> list[int]:
    """Steps of the minibatches a decision was applied to, in order."""
    return [m.step for m in minibatches if decided(m)]


def windows_from_decisions(minibatches: Sequence[MinibatchMetrics],
                           decisions: Sequence[DecisionRecord]) -> list[Window]:
    """The requests the controller answered, from its kind=decision records.

    At most one decision is in flight and answers are applied in order, so the k-th answered
    request is the k-th decision applied (later than its request); the last may never be.
    """
    by_step = {m.step: m for m in minibatches}
    applied = applied_steps(minibatches)
    out, k = [], 0
    for record in decisions:
        steps = range(record.first_step, record.last_step + 1) if record.minibatches else range(0)
        window = [by_step[s] for s in steps if s in by_step]
        while k < len(applied) and applied[k] <= record.request_step:  # an answer from before (not recorded)
            k += 1
        applied_step = applied[k] if k < len(applied) else None
        k += applied_step is not None
        request = DecisionRequest(step=record.request_step, window=window, stale=record.stale,
                                  occupancy=record.occupancy, capacity=record.capacity, whatif=record.outcome.whatif)
        out.append(Window(request, record.outcome, applied_step, missing=len(steps) - len(window)))
    return out


def windows_from_minibatches(minibatches: Sequence[MinibatchMetrics]) -> list[Window]:
    """Reconstructed requests for runs without decision records: a window ends before each applied decision.

    The request is made after the window's last minibatch with the buffer state that minibatch
    left; the recorded answer is the decision applied to the next minibatch. Exact for a sync
    run; for an async one, where requests are made after every minibatch and answered later,
    the windows are an approximation. No what-if was recorded in minibatch records.
    """
    out, window = [], []
    for m in minibatches:
        if decided(m) and window:
            last = window[-1]
            out.append(Window(DecisionRequest(step=last.step, window=window, stale=last.stale,
                                              occupancy=last.occupancy, capacity=last.capacity),
                              applied_outcome(m, last.step), m.step))
            window = []
        window.append(m)
    return out


def rebuild_windows(stream: RecordedStream) -> tuple[list[Window], bool]:
    """The stream's windows and whether they were reconstructed from minibatch records (an old run)."""
    if stream.decisions:
        return windows_from_decisions(stream.minibatches, stream.decisions), False
    return windows_from_minibatches(stream.minibatches), True
