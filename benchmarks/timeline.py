"""Where each minibatch's time goes: a timeline of a few minibatches of one trainer, runs stacked, and a table.

Reads the stage timers of runs recorded by the built-in trainer (``rudder train`` / ``rudder compare``; see
rudder_agent/stages.py): one row per thread, the sampling thread (sample, fetch) above the main thread (wait for
batch, forward, backward, all-reduce wait, optimizer), the runs (e.g. ``none`` and the default buffer on one
link) stacked on one time scale. For each run it prints a table of the chosen epoch: per stage the median
seconds per minibatch, the total, its share of the epoch and, for the sampling thread, the share of its time that
ran while the main thread was training.

    python benchmarks/timeline.py runs/none runs/fixed --rank 0 --epoch 1 --first 0 --count 6 \\
        --out docs/figures/timeline-200mbit.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rudder_agent.errors import RudderError
from rudder_agent.report.timeline import draw_timeline, epoch_records, format_table, load_timeline_run, stage_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories, drawn top to bottom")
    parser.add_argument("--rank", type=int, default=0, help="the trainer (default 0)")
    parser.add_argument("--epoch", type=int, default=1, help="the epoch (default 1: the first pays start-up costs)")
    parser.add_argument("--first", type=int, default=0, help="the first minibatch shown, its index in the epoch")
    parser.add_argument("--count", type=int, default=6, help="minibatches shown (default 6)")
    parser.add_argument("--out", type=Path, help="the PNG to write (none: the tables only)")
    parser.add_argument("--json", type=Path, help="also write the tables here")
    args = parser.parse_args(argv)
    try:
        runs = [load_timeline_run(path, args.rank) for path in args.runs]
        tables = {}
        for run in runs:
            table = stage_table(epoch_records(run.records, args.epoch))
            tables[run.title] = table.as_dict()
            print(format_table(table, f"{run.title}, rank {args.rank}, epoch {args.epoch}"), end="\n\n")
        if args.out is not None:
            print(f"wrote {draw_timeline(runs, args.epoch, args.first, args.count, args.out)}")
        if args.json is not None:
            args.json.write_text(json.dumps(tables, indent=1) + "\n")
    except RudderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
