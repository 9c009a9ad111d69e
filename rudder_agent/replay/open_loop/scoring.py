"""How one replayed window scores against the recorded run, the oracle and the what-if; and the roll-up of many."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from rudder_agent.decision import DecisionOutcome
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.passk import PassOptions, PassRate, Target, direction, pass_rate, window_change
from rudder_agent.replay.open_loop.stream import RecordedStream
from rudder_agent.replay.open_loop.windows import Window

AGREE_SOURCES = ("model", "no-difference", "guard")
"""Recorded sources whose decisions are compared (a recorded fallback is a failure, not a decision)."""
SOURCES = ("model", "guard", "no-difference", "fallback")
ASKED = ("model", "fallback")
"""Sources of windows where the model was called (a fallback follows an invalid answer or a timeout)."""
REASON_CHARS = 200


def agreement(a: str | None, b: str | None) -> bool | None:
    """Whether two decisions agree; None when either is unknown."""
    return None if a is None or b is None else a == b


def judged(stream: Sequence[MinibatchMetrics], index: dict[int, int], step: int | None, target: Target,
           expected: str | None, opts: PassOptions) -> bool | None:
    """Pass@1 of one prediction on the recorded stream around ``step`` (see rudder_agent.passk); None: not judged."""
    if step is None or expected is None or step not in index:
        return None
    i = index[step]
    change = window_change(stream[max(0, i - opts.k):i], stream[i:i + opts.k], target)
    if change is None:
        return None
    return direction(change, opts.eps_hits if target == "hits" else opts.eps_comm) == expected


def window_row(stream: RecordedStream, window: Window, outcome: DecisionOutcome, label: str | None,
               index: dict[int, int], opts: PassOptions) -> dict:
    """What one replayed window reports: the new answer beside the recorded one, the oracle and the what-if."""
    r, rec = window.request, window.recorded
    favours = r.whatif.favours if r.whatif is not None else None
    # the recorded stream shows the effect of the recorded decision only: judge a prediction where they agree
    same = rec is not None and outcome.source == "model" and outcome.decision == rec.decision
    pass_step = window.applied_step if same else None
    return {
        "rank": stream.rank, "request_step": r.step,
        "first_step": r.window[0].step if r.window else None, "last_step": r.window[-1].step if r.window else None,
        "minibatches": len(r.window), "missing_minibatches": window.missing,
        "stale": r.stale, "occupancy": r.occupancy, "capacity": r.capacity,
        "decision": outcome.decision, "source": outcome.source, "valid": outcome.valid,
        "latency_s": outcome.latency_s, "expected_hits": outcome.expected_hits,
        "expected_comm": outcome.expected_comm, "reason": outcome.reason[:REASON_CHARS],
        "recorded_decision": rec.decision if rec else None, "recorded_source": rec.source if rec else None,
        "recorded_valid": rec.valid if rec else None, "applied_step": window.applied_step,
        "agrees_recorded": agreement(outcome.decision, rec.decision) if rec and rec.source in AGREE_SOURCES else None,
        "oracle_label": label, "agrees_oracle": agreement(outcome.decision, label),
        "whatif": r.whatif.model_dump() if r.whatif is not None else None,
        "whatif_favours": favours, "agrees_whatif": agreement(outcome.decision, favours),
        "pass1_hits": judged(stream.minibatches, index, pass_step, "hits", outcome.expected_hits, opts),
        "pass1_comm": judged(stream.minibatches, index, pass_step, "comm", outcome.expected_comm, opts),
    }


def label_step(window: Window) -> int:
    """The minibatch whose oracle label judges this window's answer: where the recorded answer was applied,
    else the first one it could apply to (the one after the request)."""
    return window.applied_step if window.applied_step is not None else window.request.step + 1


def rate(outcomes: Sequence[bool | None]) -> dict:
    """An agreement or pass rate over the judged outcomes: percent, 95% Wilson interval and counts."""
    judged_ = [bool(o) for o in outcomes if o is not None]
    r: PassRate = pass_rate(judged_)
    return {"pct": None if r.rate is None else 100 * r.rate, "agreed": r.passed, "n": r.n,
            "lo": None if r.lo is None else 100 * r.lo, "hi": None if r.hi is None else 100 * r.hi}


def summarize_rows(rows: Sequence[dict]) -> dict:
    """Windows, model calls, validity, latency, decision split and agreement rates of replayed windows."""
    asked = [r for r in rows if r["source"] in ASKED]
    latencies = [r["latency_s"] for r in asked]
    return {
        "windows": len(rows),
        "model_calls": len(asked),
        "valid_pct": 100.0 * sum(r["valid"] for r in asked) / len(asked) if asked else None,
        "latency_mean_s": statistics.fmean(latencies) if latencies else None,
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": float(np.percentile(latencies, 95)) if latencies else None,
        "decisions": {d: sum(r["decision"] == d for r in rows) for d in ("replace", "skip")},
        "sources": {s: sum(r["source"] == s for r in rows) for s in SOURCES},
        "agree_recorded": rate([r["agrees_recorded"] for r in rows]),
        "agree_recorded_by_source": {s: rate([r["agrees_recorded"] for r in rows if r["recorded_source"] == s])
                                     for s in AGREE_SOURCES},
        "agree_oracle": rate([r["agrees_oracle"] for r in rows]),
        "agree_whatif": rate([r["agrees_whatif"] for r in rows]),
        "pass1_hits": rate([r["pass1_hits"] for r in rows]),
        "pass1_comm": rate([r["pass1_comm"] for r in rows]),
    }
