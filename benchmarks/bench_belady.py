"""Belady's MIN bound on a stream the size of one ogbn-arxiv epoch: seconds per call (no bound asserted).

    python benchmarks/bench_belady.py [--steps 140] [--ids 9000] [--capacity 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rudder_agent.replay.belady import belady


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=140, help="minibatches")
    ap.add_argument("--ids", type=int, default=9000, help="zipf draws per minibatch (distinct ids are fewer)")
    ap.add_argument("--universe", type=int, default=80_000, help="remote ids")
    ap.add_argument("--capacity", type=int, default=10_000, help="buffer rows")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    stream = [np.unique(rng.zipf(1.3, args.ids) % args.universe).astype(np.int64) for _ in range(args.steps)]
    times = []
    for _ in range(args.repeats):
        tic = time.perf_counter()
        bound = belady(stream, args.capacity)
        times.append(time.perf_counter() - tic)
    print(f"{sum(map(len, stream))} requests over {args.steps} steps, capacity {args.capacity}: {bound}")
    print(f"belady: median {statistics.median(times):.3f} s, min {min(times):.3f} s over {args.repeats} runs")


if __name__ == "__main__":
    main()
