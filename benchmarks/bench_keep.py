"""Hot path of the keep policies: the policy's round per minibatch (counts, window, re-ranking), and the whole engine.

A skewed synthetic stream: 50k input ids per minibatch, 40% remote, drawn with a power-law
popularity from 200k remote nodes (a halo-sized id space, as on ogbn-arxiv); a buffer of 25% of
them. Reports CPU milliseconds of the keep policy's ``round`` alone and of the whole
``engine.prepare(..., replace=True)`` + ``complete`` (ids only), medians and spread over repeats
after a warm-up, plus the memory of the look-ahead window's ids and of the policy's access log
(live runs also hold the window's sampled blocks).

    python benchmarks/bench_keep.py --inputs 50000 --windows 4,8 --repeats 30
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.settings.keep import keep_policy
from rudder_agent.buffer.persistent import PersistentBuffer


LOCAL, REMOTE = 200_000, 200_000


def stream(n: int, inputs: int, remote_share: float = 0.4, seed: int = 0) -> list[np.ndarray]:
    """Minibatches of unique ids: local ones uniform, remote ones power-law (a few hot nodes, a long tail)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = int(inputs * remote_share)
        remote = np.unique(LOCAL + (REMOTE * rng.power(0.3, size=3 * r)).astype(np.int64))[:r]
        local = rng.choice(LOCAL, size=inputs - remote.shape[0], replace=False)
        out.append(rng.permutation(np.concatenate((local, remote))))
    return out


class Timed:
    """Wraps a keep policy and records the CPU time of each round."""

    def __init__(self, keep):
        self.keep, self.times = keep, []
        self.name, self.window = keep.name, keep.window

    def round(self, *args):
        tic = time.thread_time()
        out = self.keep.round(*args)
        self.times.append(1e3 * (time.thread_time() - tic))
        return out

    def plan(self, buffer):
        return self.keep.plan(buffer)


def bench(policy: str, window: int, batches: list[np.ndarray], capacity: int, warm: int) -> tuple:
    keep = Timed(keep_policy(policy).build(window))
    engine = BufferEngine(PersistentBuffer(capacity, 0), np.array([LOCAL, LOCAL + REMOTE]), 0, keep)
    times = []
    for i, ids in enumerate(batches[:-max(window, 1)]):
        upcoming = batches[i + 1: i + 1 + window]
        tic = time.thread_time()  # CPU time of this thread: other processes on a shared machine do not count
        engine.complete(engine.prepare(ids, replace=True, upcoming=upcoming), None)
        times.append(1e3 * (time.thread_time() - tic))
    log = getattr(keep.keep, "log", None)
    return keep.times[warm:], times[warm:], log.nbytes if log is not None else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=50_000)
    ap.add_argument("--capacity", type=int, default=REMOTE // 4)
    ap.add_argument("--windows", default="4,8")
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    warm = 10
    batches = stream(warm + args.repeats + max(windows) + 1, args.inputs)
    remote = np.mean([np.count_nonzero(b >= LOCAL) for b in batches])
    print(f"{args.inputs} inputs/minibatch ({remote:.0f} remote), buffer {args.capacity} rows, "
          f"CPU ms, median [min-max] of {args.repeats} after {warm} warm-up minibatches")
    print("| policy | policy round | whole engine step | window ids MiB | access log MiB |")
    print("|---|---|---|---|---|")
    for policy, window in [("decay", 0), ("lfu", 0), *[("lookahead", w) for w in windows]]:
        rounds, steps, log_bytes = bench(policy, window, batches, args.capacity, warm)
        mib = window * args.inputs * 8 / 2**20
        name = f"lookahead W={window}" if window else policy
        print(f"| {name} | {statistics.median(rounds):.2f} [{min(rounds):.2f}-{max(rounds):.2f}] "
              f"| {statistics.median(steps):.2f} [{min(steps):.2f}-{max(steps):.2f}] | {mib:.1f} "
              f"| {log_bytes / 2**20:.1f} |")


if __name__ == "__main__":
    main()
