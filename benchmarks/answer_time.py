"""Where each model answer's time goes: a recorded run's first windows, per prompt version, on one embedded server.

    PYTHONPATH=$PWD python benchmarks/answer_time.py RUN [--rank 0] [--limit 16] [--versions v1,v2]
        [--model llamacpp:smollm2-135m] [--threads 1] [--repeat 1] [--json OUT]

The prompts are the agent's own: each window of the run's metric stream is rebuilt and decided by the
open-loop replay's controller (``rudder_agent.replay.open_loop``: windows, static facts, the decision graph
with the guard off, so every window asks the model; history carried from window to window). The model is
one embedded llama.cpp server started as the launcher starts a machine's shared server (``shared_server``,
one slot, ``--threads`` threads) and reached through the backend trainers use (``$RUDDER_LLM_ENDPOINT``),
so the schema, max_tokens and log-probability settings are the product's. Each HTTP answer's llama.cpp
``timings`` object is read off the wire; nothing in the product is changed to measure it. The controller's
warm-up call (the product's, at set-up) is not counted. Versions alternate when repeated (v1, v2, v1, v2 ...).

Columns (per answer = one window the model decided; median / p95 over the answers of that version):
    answers     windows decided by a model call (a swap test would make it two calls; ``calls`` says so)
    valid %     answers the schema accepted (the rest fell back, counted invalid)
    replace / skip  what the answers decided (a change that alters them is not only a speed-up)
    wall s      the controller's whole decision: graph, LangChain, HTTP and the server's work
    prompt tok  prompt tokens of the request (llama.cpp's prompt_n + cache_n)
    cached tok  of them, tokens reused from the slot's KV cache (cache_n), not processed again
    prompt ms   time processing the uncached prompt tokens (prompt_ms)
    gen tok     tokens generated (predicted_n)
    gen ms      time generating them (predicted_ms); schema-constrained sampling (the grammar filters every
                token's candidates) and log-probabilities (top-k per token) are computed inside this loop,
                so their share is measured by switching them off, not by a column
    left ms     wall - prompt ms - gen ms: HTTP, JSON, LangChain and the graph's own nodes
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rudder_agent.llm.embedded import SHARED_ENDPOINT_ENV, shared_server
from rudder_agent.replay.open_loop.agent import agent_settings, make_agent, start_agent
from rudder_agent.replay.open_loop.facts import run_facts
from rudder_agent.replay.open_loop.stream import load_stream
from rudder_agent.replay.open_loop.windows import rebuild_windows

COLUMNS = ("wall_s", "prompt_tok", "cached_tok", "prompt_ms", "gen_tok", "gen_ms", "left_ms")


@dataclass
class Answer:
    """One decided window: its wall time and the llama.cpp timings summed over its calls."""

    version: str
    valid: bool
    decision: str
    calls: int
    wall_s: float
    prompt_tok: int
    cached_tok: int
    prompt_ms: float
    gen_tok: int
    gen_ms: float
    left_ms: float


def transports() -> list[type]:
    """The HTTP transport classes the OpenAI client may send through (httpx, or its fork httpx2)."""
    found = []
    for name in ("httpx", "httpx2"):
        try:
            found.append(importlib.import_module(name).HTTPTransport)
        except ImportError:
            continue
    return found


class TimingsTap:
    """Reads llama.cpp's ``timings`` off every /chat/completions response this process receives."""

    def __init__(self) -> None:
        self.timings: list[dict] = []
        self._sends = {transport: transport.handle_request for transport in transports()}

    def __enter__(self) -> TimingsTap:
        for transport, send in self._sends.items():
            transport.handle_request = self._tap(send)
        return self

    def _tap(self, send):
        seen = self.timings

        def handle_request(transport, request):
            response = send(transport, request)
            if request.url.path.endswith("/chat/completions"):
                response.read()  # cached on the response: the client reads the same bytes
                seen.append(json.loads(response.content).get("timings") or {})
            return response

        return handle_request

    def __exit__(self, *exc: object) -> None:
        for transport, send in self._sends.items():
            transport.handle_request = send

    def take(self) -> list[dict]:
        """The timings seen since the last take."""
        out, self.timings[:] = list(self.timings), []
        return out


def answer(version: str, valid: bool, decision: str, wall_s: float, timings: list[dict]) -> Answer:
    """One answer's row from its calls' timings."""
    total = {k: sum(t.get(k, 0) for t in timings) for k in ("prompt_n", "cache_n", "prompt_ms", "predicted_n",
                                                               "predicted_ms")}
    return Answer(version=version, valid=valid, decision=decision, calls=len(timings), wall_s=wall_s,
                  prompt_tok=total["prompt_n"] + total["cache_n"], cached_tok=total["cache_n"],
                  prompt_ms=total["prompt_ms"], gen_tok=total["predicted_n"], gen_ms=total["predicted_ms"],
                  left_ms=1000 * wall_s - total["prompt_ms"] - total["predicted_ms"])


def replay_version(run_dir: Path, rank: int, limit: int, version: str, model: str, threads: int,
                   tap: TimingsTap) -> list[Answer]:
    """The first ``limit`` windows of one rank through the agent with one prompt version, every window asked."""
    stream = load_stream(run_dir, rank)
    windows = rebuild_windows(stream)[0][:limit]
    facts, _note = run_facts(stream)
    settings = agent_settings(stream.settings(), model=model, prompt_version=version, n_threads=threads,
                              timeout_s=300.0)
    controller = make_agent(settings, guard=False)
    rows = []
    try:
        start_agent(controller, facts, started=False)
        tap.take()  # the warm-up call
        for window in windows:
            tic = time.perf_counter()
            outcome = controller.decide(window.request)
            wall = time.perf_counter() - tic
            timings = tap.take()
            if timings:
                rows.append(answer(version, bool(outcome.valid), outcome.decision, wall, timings))
    finally:
        controller.close()
    return rows


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of non-empty values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def table(rows: Sequence[Answer], versions: Sequence[str]) -> str:
    """One Markdown row per prompt version: answers, valid %, then median / p95 of each column."""
    head = ("| prompt | answers | calls | valid % | replace / skip | "
            + " | ".join(f"{c} p50 / p95" for c in COLUMNS) + " |")
    lines = [head, "|" + "---|" * (5 + len(COLUMNS))]
    for version in versions:
        mine = [r for r in rows if r.version == version]
        if not mine:
            continue
        cells = []
        for column in COLUMNS:
            values = [getattr(r, column) for r in mine]
            fmt = "{:.2f}" if column == "wall_s" else "{:.0f}"
            cells.append(f"{fmt.format(statistics.median(values))} / {fmt.format(percentile(values, 95))}")
        valid = 100 * sum(r.valid for r in mine) / len(mine)
        replace = sum(r.decision == "replace" for r in mine)
        lines.append(f"| {version} | {len(mine)} | {sum(r.calls for r in mine)} | {valid:.0f} | "
                     f"{replace} / {len(mine) - replace} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a recorded run directory (metrics-rank*.jsonl)")
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--limit", type=int, default=16, help="first N request windows")
    parser.add_argument("--versions", default="v1,v2", help="prompt versions, comma-separated")
    parser.add_argument("--model", default="llamacpp:smollm2-135m")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the versions, alternating")
    parser.add_argument("--json", type=Path, default=None, help="write every answer's row here")
    args = parser.parse_args(argv)
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]

    server = shared_server(args.model, n_threads=args.threads, seed=0, parallel=1, host="127.0.0.1", nice=0)
    rows: list[Answer] = []
    with TimingsTap() as tap:
        try:
            if server is not None:
                os.environ.update(server.start())
            for _ in range(args.repeat):
                for version in versions:
                    rows += replay_version(args.run, args.rank, args.limit, version, args.model, args.threads, tap)
        finally:
            if server is not None:
                server.close()
                os.environ.pop(SHARED_ENDPOINT_ENV, None)
    print(table(rows, versions))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
