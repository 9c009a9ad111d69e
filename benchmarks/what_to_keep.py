"""What to keep, measured by replay: %-Hits and remote rows of every keep policy against Belady's MIN.

For each recorded run (``rudder train --trace`` or ``--trace-only``; any controller) and buffer
fraction, replays every traced rank with the `fixed` controller (a replacement at every minibatch)
under ``decay`` (the paper's scoring), ``lfu`` and ``lookahead`` with each window W, and computes
Belady's MIN for the same capacity. Ranks are pooled: %-Hits = hits / remote inputs over all ranks.
Counts are exact, so one run per cell suffices.

    python benchmarks/what_to_keep.py runs/arxiv-2p runs/dblp-2p --fractions 0.05,0.25 --windows 1,2,4,8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rudder_agent.log import configure_logging
from rudder_agent.records.trace import recorded_ranks
from rudder_agent.replay.belady import belady
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay_pooled


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="recorded runs (directories with trace-rank*.rtf)")
    ap.add_argument("--fractions", default="0.05,0.25", help="buffer fractions, comma-separated")
    ap.add_argument("--windows", default="1,2,4,8", help="look-ahead windows W, comma-separated")
    ap.add_argument("--json", type=Path, default=None, help="also write every cell here")
    return ap.parse_args()


def cell(run: Path, fraction: float, policy: str, window: int) -> dict:
    """Pooled hits, remote inputs and comm rows of one policy over every rank of ``run``."""
    if policy == "belady":
        hits = remote = rows = 0
        seconds = 0.0
        for rank in recorded_ranks(run):
            recording = load_recording(run, rank)
            b = belady(recording.remote_inputs(), recording.capacity(fraction))
            hits, remote, rows = hits + b.hits, remote + b.remote_inputs, rows + b.comm_rows
    else:
        p = replay_pooled(run, recorded_ranks(run), "fixed", fraction=fraction, policy=policy, lookahead=max(window, 1))
        hits, remote, rows, seconds = p.hits, p.remote_inputs, p.comm_rows, p.seconds
    return {"run": run.name, "fraction": fraction, "policy": policy, "window": window, "hits": hits,
            "remote_inputs": remote, "comm_rows": rows, "hit_pct": 100.0 * hits / remote if remote else 0.0,
            "replay_s": round(seconds, 2)}


def main() -> None:
    args = parse_args()
    configure_logging("warning")
    fractions = [float(f) for f in args.fractions.split(",")]
    windows = [int(w) for w in args.windows.split(",")]
    variants = [("decay", 0), ("lfu", 0), *[("lookahead", w) for w in windows], ("belady", 0)]
    cells = [cell(run, f, p, w) for run in args.runs for f in fractions for p, w in variants]
    names = [p if p != "lookahead" else f"W={w}" for p, w in variants]
    print("| run | buffer | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for run in args.runs:
        for f in fractions:
            row = [c for c in cells if c["run"] == run.name and c["fraction"] == f]
            best = row[-1]["hit_pct"]
            print(f"| {run.name} | {100 * f:g}% | " + " | ".join(
                f"{c['hit_pct']:.1f} ({c['hit_pct'] / best:.3f}) {c['comm_rows']:,}" for c in row) + " |")
    print("\ncell: pooled %-Hits (ratio to Belady's %-Hits) comm rows")
    if args.json:
        args.json.write_text(json.dumps(cells, indent=2))


if __name__ == "__main__":
    main()
