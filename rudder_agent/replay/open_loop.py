"""Open-loop replay of a recorded metric stream: the windows the agent saw, through the decision graph again.

`rudder replay` is closed loop: it re-simulates the buffer from a ``--trace`` recording, so
each decision changes what the next minibatches hit. This module needs only the metric
stream (``metrics-rank<r>.jsonl``) that every run writes. Each ``kind=decision`` record
becomes the request the controller answered live (its step, the minibatches of its window,
the buffer's stale/occupancy/capacity and the what-if computed live) and goes through an
:class:`LLMController` with any model, prompt version and chain-of-thought setting, which
carries its history from one request to the next as in a live run. The answers change
nothing: the stream is fixed, so the replay measures decisions, validity, latency and
agreement (with the recorded decisions, the oracle, the what-if), never their effect.

Runs recorded before decision records existed are replayed from their minibatch records:
a window ends before each minibatch a decision was applied to (exact in sync mode, an
approximation in async mode, where requests are made after every minibatch).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from rudder_agent.config import BufferConfig, TrainConfig, read_run_config
from rudder_agent.settings.agent import AgentConfig
from rudder_agent.settings.upgrade import current_values
from rudder_agent.decision import DecisionOutcome, DecisionRecord, DecisionRequest, StaticFacts
from rudder_agent.errors import InputError, RudderError, first_line
from rudder_agent.progress import progress as progress_bar
from rudder_agent.metrics import MinibatchMetrics, read_jsonl
from rudder_agent.report.figures import PassOptions
from rudder_agent.report.passk import PassRate, direction, pass_rate, window_change

AGREE_SOURCES = ("model", "no-difference", "guard")
"""Recorded sources whose decisions are compared (a recorded fallback is a failure, not a decision)."""
SOURCES = ("model", "guard", "no-difference", "fallback")
ASKED = ("model", "fallback")
"""Sources of windows where the model was called (a fallback follows an invalid answer or a timeout)."""
REASON_CHARS = 200


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


@dataclass(frozen=True)
class RecordedStream:
    """One rank's metric stream, loaded once."""

    run_dir: Path
    rank: int
    config: TrainConfig
    minibatches: list[dict]
    """kind=minibatch rows, sorted by step."""
    decisions: list[dict]
    """kind=decision rows, in the order they were answered."""
    labels: dict[int, str] = field(default_factory=dict)
    """kind=oracle labels by step (a `rudder replay --labels H` output holds them)."""
    controller: dict = field(default_factory=dict)
    """The kind=controller row ({} when the run was killed)."""
    summary: dict = field(default_factory=dict)


def stream_ranks(run_dir: Path) -> list[int]:
    """Ranks with a metric stream in ``run_dir``."""
    return sorted(int(m.group(1)) for p in run_dir.glob("metrics-rank*.jsonl")
                  if (m := re.fullmatch(r"metrics-rank(\d+)\.jsonl", p.name)))


def check_run_dir(run_dir: Path) -> list[int]:
    """The ranks of a run directory; InputError (one line) for anything that is not one."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory: give a run directory (`rudder train --out` or "
                         "`rudder replay --out`)")
    if not (run_dir / "config.json").is_file():
        raise InputError(f"{run_dir} is not a run directory (no config.json)")
    ranks = stream_ranks(run_dir)
    if not ranks:
        raise InputError(f"{run_dir} holds no metrics-rank*.jsonl")
    return ranks


def load_stream(run_dir: Path, rank: int) -> RecordedStream:
    """Read one rank's metric stream and the run's recorded config."""
    ranks = check_run_dir(run_dir)
    if rank not in ranks:
        raise InputError(f"{run_dir} has no metric stream for rank {rank} (ranks present: "
                         f"{', '.join(map(str, ranks))})")
    rows = read_jsonl(run_dir / f"metrics-rank{rank}.jsonl")
    controllers = [r for r in rows if r.get("kind") == "controller"]
    summary_path = run_dir / "summary.json"
    return RecordedStream(
        run_dir=run_dir, rank=rank, config=read_run_config(run_dir / "config.json"),
        minibatches=sorted((r for r in rows if r.get("kind") == "minibatch"), key=lambda r: r["step"]),
        decisions=[r for r in rows if r.get("kind") == "decision"],
        labels={r["step"]: r["label"] for r in rows if r.get("kind") == "oracle"},
        controller=controllers[-1] if controllers else {},
        summary=json.loads(summary_path.read_text()) if summary_path.is_file() else {},
    )


def applied_steps(minibatches: Sequence[dict]) -> list[int]:
    """Steps of the minibatches a decision was applied to, in order."""
    return [m["step"] for m in minibatches
            if m.get("decision_applied") is not None and m.get("decision_source") != "idle"]  # idle: no answer


def metrics(row: dict) -> MinibatchMetrics:
    return MinibatchMetrics.model_validate(row)


def windows_from_decisions(minibatches: Sequence[dict], decisions: Sequence[dict]) -> list[Window]:
    """The requests the controller answered, from its kind=decision records.

    At most one decision is in flight and answers are applied in order, so the k-th answered
    request is the k-th decision applied (later than its request); the last may never be.
    """
    by_step = {m["step"]: m for m in minibatches}
    applied = applied_steps(minibatches)
    out, k = [], 0
    for row in decisions:
        record = DecisionRecord.model_validate(row)
        steps = range(record.first_step, record.last_step + 1) if record.minibatches else range(0)
        window = [metrics(by_step[s]) for s in steps if s in by_step]
        while k < len(applied) and applied[k] <= record.request_step:  # an answer from before (not recorded)
            k += 1
        applied_step = applied[k] if k < len(applied) else None
        k += applied_step is not None
        request = DecisionRequest(step=record.request_step, window=window, stale=record.stale,
                                  occupancy=record.occupancy, capacity=record.capacity, whatif=record.outcome.whatif)
        out.append(Window(request, record.outcome, applied_step, missing=len(steps) - len(window)))
    return out


def windows_from_minibatches(minibatches: Sequence[dict]) -> list[Window]:
    """Reconstructed requests for runs without decision records: a window ends before each applied decision.

    The request is made after the window's last minibatch with the buffer state that minibatch
    left; the recorded answer is the decision applied to the next minibatch. Exact for a sync
    run; for an async one, where requests are made after every minibatch and answered later,
    the windows are an approximation. No what-if was recorded in minibatch records.
    """
    out, window = [], []
    for row in minibatches:
        if row.get("decision_applied") is not None and row.get("decision_source") != "idle" and window:
            last = window[-1]
            recorded = DecisionOutcome(request_step=last.step, decision=row["decision_applied"],
                                       source=row.get("decision_source") or "rule",
                                       valid=row.get("decision_valid") is not False,
                                       expected_hits=row.get("expected_hits"), expected_comm=row.get("expected_comm"),
                                       reason="recorded")
            out.append(Window(DecisionRequest(step=last.step, window=window, stale=last.stale,
                                              occupancy=last.occupancy, capacity=last.capacity),
                              recorded, row["step"]))
            window = []
        window.append(metrics(row))
    return out


def rebuild_windows(stream: RecordedStream) -> tuple[list[Window], bool]:
    """The stream's windows and whether they were reconstructed from minibatch records (an old run)."""
    if stream.decisions:
        return windows_from_decisions(stream.minibatches, stream.decisions), False
    return windows_from_minibatches(stream.minibatches), True


def minibatches_per_epoch(minibatches: Sequence[dict]) -> int:
    """The most minibatches any epoch of the stream holds (a killed run's last epoch is short)."""
    counts: dict[int, int] = {}
    for m in minibatches:
        counts[m["epoch"]] = counts.get(m["epoch"], 0) + 1
    return max(counts.values(), default=0)


def trace_dir(stream: RecordedStream) -> Path | None:
    """Where the run's access trace lives: its own directory, or the run a replay was made of."""
    of = (stream.summary.get("replay") or {}).get("of")
    for d in (stream.run_dir, Path(of) if of else None):
        if d is not None and (d / f"trace-rank{stream.rank}.json").is_file():
            return d
    return None


def run_facts(stream: RecordedStream) -> tuple[StaticFacts, str | None]:
    """The static facts the live agent was given, and a note when they had to be approximated.

    In order: the kind=controller record (runs since open-loop replay), the trace's meta, the
    partition's rudder_meta.json (partition = rank, as the local launcher places trainers).
    """
    capacity = next((m["capacity"] for m in stream.minibatches if m.get("capacity")), 0)
    if stream.controller.get("facts"):
        return StaticFacts.model_validate(stream.controller["facts"]), None
    traced = trace_dir(stream)
    if traced is not None:  # a replay's buffer may be another size (--fraction): its own capacity
        from rudder_agent.traces import read_trace_meta

        facts = read_trace_meta(traced / f"trace-rank{stream.rank}.json").facts
        return facts.model_copy(update={"capacity": capacity or facts.capacity}), None
    cfg = stream.config
    total = cfg.epochs * minibatches_per_epoch(stream.minibatches)
    meta_path = Path(cfg.part_config).parent / "rudder_meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        part = next(p for p in meta["partitions"] if p["part_id"] == stream.rank)
        return StaticFacts(dataset=cfg.dataset, num_nodes=meta["num_nodes"], num_edges=meta["num_edges"],
                           num_parts=meta["parts"], partition=stream.rank,
                           local_nodes=part["node_end"] - part["node_start"], halo_nodes=part["halo_nodes"],
                           capacity=capacity, total_minibatches=total, feature_dim=meta["feat_dim"]), None
    except (OSError, ValueError, KeyError, StopIteration):
        halo = math.ceil(capacity / cfg.buffer.fraction) if capacity else 0
        return (StaticFacts(dataset=cfg.dataset, num_nodes=0, num_edges=0, num_parts=cfg.parts,
                            partition=stream.rank, local_nodes=0, halo_nodes=halo, capacity=capacity,
                            total_minibatches=total, feature_dim=0),
                f"rank {stream.rank}: graph facts unknown ({meta_path} unreadable): the prompt shows 0 nodes and edges")


def oracle_labels(stream: RecordedStream, labels_dir: Path | None, horizon: int,
                  compute: bool) -> tuple[dict[int, str], str | None]:
    """Oracle labels of the recorded trajectory by step, and where they came from (None: no labels).

    From ``labels_dir`` (a `rudder replay RUN --labels H` output), else the stream's own
    kind=oracle records, else (``compute``) by replaying the trace with the recorded decisions.
    """
    if labels_dir is not None:
        path = labels_dir / f"metrics-rank{stream.rank}.jsonl"
        if not path.is_file():
            raise InputError(f"--labels {labels_dir} has no metrics-rank{stream.rank}.jsonl")
        labels = {r["step"]: r["label"] for r in read_jsonl(path, kind="oracle")}
        if not labels:
            raise InputError(f"--labels {labels_dir}: metrics-rank{stream.rank}.jsonl holds no kind=oracle records "
                             "(write them with `rudder replay RUN --labels H`)")
        return labels, f"--labels {labels_dir}"
    if stream.labels:
        return stream.labels, "the stream's kind=oracle records"
    traced = stream.run_dir
    # a replay's trajectory is not its recording's: only a live run's own trace labels its states
    if (not compute or stream.summary.get("replay") or not (traced / f"trace-rank{stream.rank}.json").is_file()
            or not stream.decisions and not applied_steps(stream.minibatches)):
        return {}, None
    from rudder_agent.replay.recording import load_recording
    from rudder_agent.replay.simulator import replay

    labels: dict[int, str] = {}

    def collect(record: Any, kind: str) -> None:
        if kind == "oracle":
            labels[record["step"]] = record["label"]

    try:
        replay(load_recording(traced, stream.rank), "recorded", collect, label_horizon=horizon, progress=False)
    except RudderError as err:  # e.g. a killed run whose trace holds minibatches its stream lacks
        return {}, f"not computed from the trace: {first_line(err)}"
    return labels, f"computed from the trace (H={horizon})"


def agreement(a: str | None, b: str | None) -> bool | None:
    """Whether two decisions agree; None when either is unknown."""
    return None if a is None or b is None else a == b


def judged(stream: Sequence[dict], index: dict[int, int], step: int | None, target: str, expected: str | None,
           opts: PassOptions) -> bool | None:
    """Pass@1 of one prediction on the recorded stream around ``step`` (see report.passk); None: not judged."""
    if step is None or expected is None or step not in index:
        return None
    i = index[step]
    change = window_change(stream[max(0, i - opts.k):i], stream[i:i + opts.k], target)  # type: ignore[arg-type]
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


def replay_stream(controller: Any, stream: RecordedStream, windows: Sequence[Window], labels: dict[int, str],
                  opts: PassOptions = PassOptions(), progress: bool | None = None,
                  on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """Every window through ``controller.decide`` in order (history carried); one row per window."""
    index = {m["step"]: i for i, m in enumerate(stream.minibatches)}
    rows = []
    for window in progress_bar(windows, desc=f"open-loop rank {stream.rank}", unit="window",
                               enabled=progress is not False):
        outcome = controller.decide(window.request)
        row = window_row(stream, window, outcome, labels.get(label_step(window)), index, opts)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


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


AGENT_SETTINGS = ("model", "prompt_version", "cot", "fallback", "n_threads", "timeout_s", "min_difference_pct",
                  "swap_test")
"""The agent settings an open-loop replay may override (unset: the recorded run's)."""


def recorded_settings(stream: RecordedStream) -> BufferConfig:
    """The settings the recorded decisions were made with: the run's config, with a replay's overrides on top."""
    return stream.config.buffer.with_values(current_values((stream.summary.get("replay") or {}).get("overrides", {})))


def agent_settings(recorded: BufferConfig, **overrides: Any) -> AgentConfig:
    """The recorded run's agent settings with ``overrides`` (None: keep the recorded value)."""
    update = {k: v for k, v in current_values(overrides).items() if v is not None}
    unknown = sorted(set(update) - set(AGENT_SETTINGS))
    if unknown:
        raise ValueError(f"open-loop replay cannot override {', '.join(unknown)}")
    return recorded.with_values({**update, "controller": "llm"}).controller


def make_agent(settings: AgentConfig, guard: bool = True) -> Any:
    """The LLMController these settings name; a bad prompt version or model string is an InputError.

    ``guard``: False asks the model in every window, also those the guard's rules settle.
    """
    from rudder_agent.agent.controller import LLMController
    from rudder_agent.agent.prompts import PromptTemplateError

    try:
        return LLMController(settings.model_copy(update={"guard": guard}))
    except PromptTemplateError as err:
        raise InputError(str(err)) from None


def start_agent(controller: Any, facts: StaticFacts, started: bool) -> None:
    """Set the controller up for one rank: the backend once, then new facts and an empty history per rank."""
    from rudder_agent.llm.errors import BackendError

    if started:
        controller.facts, controller.history = facts, []
        return
    try:
        controller.setup(facts)
    except BackendError as err:
        raise InputError(f"cannot start model {controller.config.model!r}: {err}") from None


def open_loop(run_dir: Path, ranks: Sequence[int] | None = None, *, limit: int | None = None,
              labels_dir: Path | None = None, horizon: int = 8, compute_labels: bool = True,
              progress: bool | None = None, notes: list[str] | None = None,
              on_row: Callable[[dict], None] | None = None, guard: bool = True,
              **overrides: Any) -> tuple[list[dict], dict]:
    """Replay the windows of ``ranks`` (default: every rank) open loop; returns the rows and the summary.

    ``overrides``: agent settings (model, prompt_version, cot, ...); unset ones are the recorded run's.
    ``guard``: False asks the model in every window (a stream the guard answered says nothing of the model else).
    ``notes`` collects one-line remarks (reconstructed windows, approximated facts, labels' source).
    """
    notes = notes if notes is not None else []
    all_ranks = check_run_dir(run_dir)
    ranks = list(ranks) if ranks is not None else all_ranks
    streams = [load_stream(run_dir, r) for r in ranks]
    settings = agent_settings(recorded_settings(streams[0]), **overrides)
    controller = make_agent(settings, guard)
    rows: list[dict] = []
    per_rank: dict[int, dict] = {}
    tic = time.perf_counter()
    try:
        for i, stream in enumerate(streams):
            windows, reconstructed = rebuild_windows(stream)
            if not windows and not any(m.get("capacity") for m in stream.minibatches):
                raise InputError(f"{run_dir} was run without a buffer (controller none): it has no decisions to replay")
            if reconstructed:
                notes.append(f"rank {stream.rank}: no decision records (a run from before they were written): "
                             f"{len(windows)} windows reconstructed from the minibatch records (approximate)")
            if limit is not None:
                windows = windows[:limit]
            if not windows:
                raise InputError(f"{run_dir} rank {stream.rank}: no decision windows in the metric stream")
            missing = sum(w.missing for w in windows)
            if missing:
                notes.append(f"rank {stream.rank}: {missing} window minibatches are missing from the stream")
            facts, note = run_facts(stream)
            if note:
                notes.append(note)
            labels, source = oracle_labels(stream, labels_dir, horizon, compute_labels)
            why = "none recorded and no trace to compute them" if compute_labels else "none recorded; --no-oracle"
            notes.append(f"rank {stream.rank}: oracle labels: {source}" if source else
                         f"rank {stream.rank}: no oracle labels ({why})")
            start_agent(controller, facts, started=i > 0)
            rank_rows = replay_stream(controller, stream, windows, labels, progress=progress, on_row=on_row)
            rows += rank_rows
            per_rank[stream.rank] = {"reconstructed": reconstructed, "oracle_labels": source,
                                     "recorded_decisions": len(stream.decisions), **summarize_rows(rank_rows)}
    finally:
        controller.close()
    summary = {
        "run": str(run_dir), "ranks": [s.rank for s in streams], "mode": "open-loop",
        "agent": {**controller.run_record(), "guard": guard, "llm_timeout_s": settings.timeout_s,
                  "llm_min_difference_pct": settings.min_difference_pct},
        "recorded_agent": streams[0].controller.get("agent", {}),
        "limit": limit, "seconds": time.perf_counter() - tic,
        **summarize_rows(rows), "per_rank": per_rank, "notes": list(notes),
    }
    return rows, summary


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _rate(r: dict) -> str:
    return "n/a (n=0)" if not r["n"] else f"{r['pct']:.0f}% ({r['agreed']}/{r['n']})"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


TABLE: list[tuple[str, Callable[[dict], str]]] = [
    ("windows", lambda s: str(s["windows"])),
    ("model calls", lambda s: str(s["model_calls"])),
    ("valid %", lambda s: _pct(s["valid_pct"])),
    ("latency mean / median s", lambda s: f"{_seconds(s['latency_mean_s'])} / {_seconds(s['latency_median_s'])}"),
    ("replace / skip", lambda s: f"{s['decisions']['replace']} / {s['decisions']['skip']}"),
    ("model / guard / no-diff / fallback", lambda s: " / ".join(str(s["sources"][k]) for k in SOURCES)),
    ("agrees with recorded", lambda s: _rate(s["agree_recorded"])),
    *[(f"  where recorded {src}", (lambda src: lambda s: _rate(s["agree_recorded_by_source"][src]))(src))
      for src in AGREE_SOURCES],
    ("agrees with oracle", lambda s: _rate(s["agree_oracle"])),
    ("agrees with what-if", lambda s: _rate(s["agree_whatif"])),
    ("Pass@1 %-Hits (agreeing)", lambda s: _rate(s["pass1_hits"])),
    ("Pass@1 comm (agreeing)", lambda s: _rate(s["pass1_comm"])),
]


def format_table(summary: dict) -> str:
    """A Markdown table: one column per rank (and 'all' when there are several)."""
    columns = [(f"rank {r}", s) for r, s in summary["per_rank"].items()]
    if len(columns) > 1:
        columns.append(("all", summary))
    header = "| open loop | " + " | ".join(name for name, _ in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    lines += ["| " + name + " | " + " | ".join(cell(s) for _, s in columns) + " |" for name, cell in TABLE]
    return "\n".join(lines)
