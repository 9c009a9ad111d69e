"""How much faster than the live run is its replay? (target: >= 20x on an ogbn-arxiv trace)

For each traced rank of RUN_DIR, times ``replay_run`` end to end (trace decoding, the buffer
engine, the controller, writing metrics-rank*.jsonl and summary.json) and compares it with the
time the live trainer spent in its epochs (the sum of its recorded epoch times), and, since the
first live epoch pays start-up costs, also a steady epoch (median after the first) with the
replay time of an average epoch. The first replay also pays Numba's cache load and is
reported apart; the median of ``--repeats`` is used.

    python benchmarks/bench_replay.py runs/arxiv-fixed --controller fixed
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rudder_agent.log import configure_logging
from rudder_agent.records.epoch import median_after_first
from rudder_agent.records.trace import recorded_ranks
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay_run


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a run recorded with `rudder train --trace`")
    ap.add_argument("--controller", default="fixed", help="controller to replay (a rule or scripted one)")
    ap.add_argument("--model", default=None, help="llm controller: model string, e.g. scripted:answers.jsonl")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    return ap.parse_args()


def timed_replay(args: argparse.Namespace, rank: int, out: Path) -> float:
    options = {"model": args.model} if args.model else {}
    tic = time.perf_counter()
    replay_run(args.run_dir, rank, args.controller, out_dir=out, progress=False, **options)
    return time.perf_counter() - tic


def main() -> None:
    args = parse_args()
    configure_logging("warning")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rank in recorded_ranks(args.run_dir):
            recording = load_recording(args.run_dir, rank)
            first = timed_replay(args, rank, Path(tmp))
            replay_s = statistics.median(timed_replay(args, rank, Path(tmp)) for _ in range(args.repeats))
            live_s, epochs = recording.live_seconds(), len(recording.epoch_times_s)
            steady_s = median_after_first(recording.epoch_times_s)
            rows.append({"rank": rank, "minibatches": len(recording.steps), "epochs": epochs,
                         "live_s": live_s, "replay_s": replay_s, "first_replay_s": first,
                         "speedup": live_s / replay_s, "steady_epoch_s": steady_s,
                         "steady_epoch_speedup": steady_s / (replay_s / epochs)})
    print(f"{'rank':>4} {'minibatches':>11} {'live s':>8} {'replay s':>9} {'first s':>8} {'speed-up':>9} "
          f"{'steady epoch':>13}")
    for r in rows:
        print(f"{r['rank']:>4} {r['minibatches']:>11} {r['live_s']:>8.2f} {r['replay_s']:>9.3f} "
              f"{r['first_replay_s']:>8.3f} {r['speedup']:>8.1f}x {r['steady_epoch_speedup']:>12.1f}x")
    live, replay = sum(r["live_s"] for r in rows), sum(r["replay_s"] for r in rows)
    print(f"all ranks, one after the other: {live:.2f} s live trainer time vs {replay:.3f} s replay "
          f"= {live / replay:.1f}x  (controller {args.controller})")
    if args.json:
        args.json.write_text(json.dumps({"controller": args.controller, "ranks": rows, "speedup": live / replay},
                                        indent=2))


if __name__ == "__main__":
    main()
