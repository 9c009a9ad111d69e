"""Open-loop replay of a run, rank by rank: every window through the agent, scored and rolled up."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rudder_agent.errors import InputError
from rudder_agent.passk import PassOptions
from rudder_agent.progress import progress as progress_bar
from rudder_agent.replay.open_loop.agent import agent_settings, make_agent, start_agent
from rudder_agent.replay.open_loop.facts import run_facts
from rudder_agent.replay.open_loop.labels import oracle_labels
from rudder_agent.replay.open_loop.scoring import label_step, summarize_rows, window_row
from rudder_agent.replay.open_loop.stream import RecordedStream, check_run_dir, load_stream
from rudder_agent.replay.open_loop.windows import Window, rebuild_windows


def replay_stream(controller: Any, stream: RecordedStream, windows: Sequence[Window], labels: dict[int, str],
                  opts: PassOptions = PassOptions(), progress: bool | None = None,
                  on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """Every window through ``controller.decide`` in order (history carried); one row per window."""
    index = {m.step: i for i, m in enumerate(stream.minibatches)}
    rows = []
    for window in progress_bar(windows, desc=f"open-loop rank {stream.rank}", unit="window",
                               enabled=progress is not False):
        outcome = controller.decide(window.request)
        row = window_row(stream, window, outcome, labels.get(label_step(window)), index, opts)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


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
    settings = agent_settings(streams[0].settings(), **overrides)
    lock = threading.Lock()

    def emit(row: dict) -> None:
        if on_row is not None:
            with lock:
                on_row(row)

    def replay_rank(stream: RecordedStream, rank_notes: list[str]) -> tuple[Any, list[dict], dict]:
        controller = make_agent(settings, guard)
        try:
            rank_rows, entry = replay_one_rank(controller, stream, run_dir, limit=limit, labels_dir=labels_dir,
                                               horizon=horizon, compute_labels=compute_labels, notes=rank_notes,
                                               progress=progress, on_row=emit)
        finally:
            controller.close()
        return controller.run_record(), rank_rows, entry

    tic = time.perf_counter()
    rank_notes: list[list[str]] = [[] for _ in streams]
    with shared_model_server(settings.model, settings.n_threads, len(streams)) as slots:
        if slots > 1:  # one slot per rank: the ranks' windows go to the server side by side
            with ThreadPoolExecutor(len(streams), thread_name_prefix="open-loop") as pool:
                results = list(pool.map(replay_rank, streams, rank_notes))
        else:
            results = [replay_rank(stream, n) for stream, n in zip(streams, rank_notes)]
    for n in rank_notes:
        notes += n
    rows = [row for _, rank_rows, _ in results for row in rank_rows]
    per_rank = {stream.rank: entry for stream, (_, _, entry) in zip(streams, results)}
    summary = {
        "run": str(run_dir), "ranks": [s.rank for s in streams], "mode": "open-loop",
        "agent": {**results[0][0], "guard": guard, "llm_timeout_s": settings.timeout_s,
                  "llm_min_difference_pct": settings.min_difference_pct},
        "recorded_agent": streams[0].controller.get("agent", {}),
        "limit": limit, "seconds": time.perf_counter() - tic,
        **summarize_rows(rows), "per_rank": per_rank, "notes": list(notes),
    }
    return rows, summary


def replay_one_rank(controller: Any, stream: RecordedStream, run_dir: Path, *, limit: int | None,
                    labels_dir: Path | None, horizon: int, compute_labels: bool, notes: list[str],
                    progress: bool | None, on_row: Callable[[dict], None]) -> tuple[list[dict], dict]:
    """One rank's windows through a controller of its own; its rows and its per-rank summary."""
    windows, reconstructed = rebuild_windows(stream)
    if not windows and not any(m.capacity for m in stream.minibatches):
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
    start_agent(controller, facts, started=False)
    rank_rows = replay_stream(controller, stream, windows, labels, progress=progress, on_row=on_row)
    return rank_rows, {"reconstructed": reconstructed, "oracle_labels": source,
                       "recorded_decisions": len(stream.decisions), **summarize_rows(rank_rows)}


@contextlib.contextmanager
def shared_model_server(model: str, n_threads: int, ranks: int) -> Iterator[int]:
    """For an embedded (`llamacpp:`) model and several ranks: one server with a slot and ``n_threads`` threads per
    rank (up to the cores), which every rank's backend uses (``RUDDER_LLM_ENDPOINT``); yields its slots (1: none
    started, the ranks run one after another)."""
    from rudder_agent.llm.embedded import SHARED_ENDPOINT_ENV, shared_server

    # llama.cpp decodes its slots together in one batch: the threads, not the slots, set how many cores it uses
    threads = min(n_threads * ranks, os.cpu_count() or 1)
    server = shared_server(model, n_threads=threads, seed=0, parallel=ranks, host="127.0.0.1",
                           nice=0) if ranks > 1 and SHARED_ENDPOINT_ENV not in os.environ else None
    if server is None:
        yield 1
        return
    try:
        os.environ.update(server.start())
        yield ranks
    finally:
        os.environ.pop(SHARED_ENDPOINT_ENV, None)
        server.close()
