"""Rows of every controller under every keep policy, by replay, with Belady's MIN in every cell.

For each recorded run (``rudder train --trace-only``) and buffer fraction, replays the chosen ranks
with each controller under each policy and pools the rows fetched; `none` fetches every remote input,
Belady's MIN is the bound for the same capacity. Counts are exact, so one replay per cell suffices.
The `llm` column is the what-if agent with the model never asked (``--llm-min-difference 100``): what
prompt v2 asks the model to do; closed-loop tables with the real model are in docs/agent.md.

    python benchmarks/controller_matrix.py traces/ogbn-arxiv-2p traces/com-dblp-4p --fractions 0.05,0.25 \\
        --policies decay,lfu,lookahead --controllers fixed,massivegnn,llm --json matrix.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rudder_agent.log import configure_logging
from rudder_agent.replay import load_recording, recorded_ranks
from rudder_agent.replay.belady import belady
from rudder_agent.replay.simulator import replay

SKIP_ANSWER = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "never asked"}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="recorded runs (directories with trace-rank*.rtf)")
    ap.add_argument("--fractions", default="0.05,0.25", help="buffer fractions, comma-separated")
    ap.add_argument("--policies", default="decay,lfu,lookahead", help="keep policies, comma-separated")
    ap.add_argument("--controllers", default="fixed,massivegnn,llm", help="controllers, comma-separated")
    ap.add_argument("--ranks", default=None, help="ranks to replay, comma-separated (default: every traced rank)")
    ap.add_argument("--json", type=Path, default=None, help="also write every cell here")
    return ap.parse_args()


def controller_overrides(controller: str, script: Path) -> dict:
    """The what-if agent for `llm` (the model is never asked); nothing for the others."""
    return {"llm_model": f"scripted:{script}", "llm_min_difference_pct": 100.0} if controller == "llm" else {}


def cell(run: Path, ranks: list[int], fraction: float, policy: str, controller: str, script: Path) -> dict:
    """Pooled rows and hits of one controller and policy over ``ranks`` of ``run``, beside `none` and Belady."""
    rows = hits = remote = belady_rows = 0
    seconds = 0.0
    for rank in ranks:
        recording = load_recording(run, rank)
        bound = belady(recording.remote_inputs(), recording.capacity(fraction))
        belady_rows += bound.comm_rows
        seen: list = []
        tic = time.perf_counter()
        replay(recording, controller, lambda r, kind: seen.append(r) if kind == "minibatch" else None,
               mode="async", fraction=fraction, progress=False, policy=policy,
               **controller_overrides(controller, script))
        seconds += time.perf_counter() - tic
        rows += sum(m.comm_rows for m in seen)
        hits += sum(m.hits for m in seen)
        remote += sum(m.remote_inputs for m in seen)
    return {"run": run.name, "ranks": ranks, "fraction": fraction, "policy": policy, "controller": controller,
            "comm_rows": rows, "none_rows": remote, "belady_rows": belady_rows, "hits": hits,
            "vs_none": rows / remote if remote else 0.0, "vs_belady": rows / belady_rows if belady_rows else 0.0,
            "replay_s": round(seconds, 2)}


def table(cells: list[dict], controllers: list[str]) -> str:
    """Markdown: one row per run, fraction and policy; rows and ratio to `none` per controller, then Belady."""
    head = "| run | buffer | policy | " + " | ".join(controllers) + " | Belady | none |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    keyed = {(c["run"], c["fraction"], c["policy"], c["controller"]): c for c in cells}
    for run, fraction, policy in dict.fromkeys((c["run"], c["fraction"], c["policy"]) for c in cells):
        row = [keyed[(run, fraction, policy, k)] for k in controllers]
        first = row[0]
        lines.append(f"| {run} | {fraction:.0%} | {policy} | "
                     + " | ".join(f"{c['comm_rows']:,} ({c['vs_none']:.3f})" for c in row)
                     + f" | {first['belady_rows']:,} ({first['belady_rows'] / first['none_rows']:.3f})"
                     + f" | {first['none_rows']:,} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    configure_logging("warning")
    fractions = [float(f) for f in args.fractions.split(",")]
    policies, controllers = args.policies.split(","), args.controllers.split(",")
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "skip.jsonl"
        script.write_text(json.dumps(SKIP_ANSWER) + "\n")
        for run in args.runs:
            ranks = [int(r) for r in args.ranks.split(",")] if args.ranks else recorded_ranks(run)
            for fraction in fractions:
                for policy in policies:
                    for controller in controllers:
                        c = cell(run, ranks, fraction, policy, controller, script)
                        cells.append(c)
                        print(f"{run.name} {fraction:.0%} {policy} {controller}: {c['comm_rows']:,} rows "
                              f"({c['vs_none']:.3f}x none, {c['vs_belady']:.3f}x Belady) in {c['replay_s']} s",
                              flush=True)
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))
    print(table(cells, controllers))


if __name__ == "__main__":
    main()
