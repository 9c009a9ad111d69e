"""Micro-benchmarks of the buffer's hot path: is it cheap next to one minibatch of training?

Median (and min) milliseconds over ``--repeats`` runs after ``--warmup`` runs (which also pay the Numba
JIT/cache load) for:
  (a) lookup + score round of one minibatch on a full buffer,
  (b) one replacement (plan + apply) of ``--replace-rows`` rows,
  (c) one engine.prepare + engine.complete, without and with a replacement
      (the feature read between them, a stand-in for the DistTensor read, is not timed).

    python benchmarks/bench_buffer.py --help
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable

import numpy as np
import torch

from rudder_agent.buffer.engine import BufferEngine, FetchCounts
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capacity", type=int, default=50_000, help="buffer rows")
    ap.add_argument("--batch", type=int, default=50_000, help="input nodes per minibatch")
    ap.add_argument("--dim", type=int, default=128, help="feature dimension")
    ap.add_argument("--replace-rows", type=int, default=10_000, help="rows of the replacement in (b)")
    ap.add_argument("--nodes", type=int, default=400_000, help="graph nodes (4 equal partitions)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def measure(run: Callable[[], float], repeats: int, warmup: int) -> tuple[float, float]:
    """Median and min in ms of the seconds ``run`` reports (it times only its own part).

    The min shows the cost without interference from other processes on a shared machine.
    """
    times = [run() for _ in range(warmup + repeats)][warmup:]
    return 1e3 * statistics.median(times), 1e3 * min(times)


def skewed_unique(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    """n distinct ids from ``pool``, popular ones (low ranks) more often: a sampler-like access."""
    ranks = np.unique(np.minimum(rng.zipf(1.3, 3 * n) - 1, pool.shape[0] - 1))
    rest = rng.permutation(np.setdiff1d(np.arange(pool.shape[0]), ranks))
    picked = np.concatenate((ranks, rest))[:n]
    return rng.permutation(pool[picked])


def full_buffer(args: argparse.Namespace, ids: np.ndarray) -> PersistentBuffer:
    buf = PersistentBuffer(args.capacity, args.dim, ScoringPolicy())
    buf.warm_load(ids[: args.capacity], torch.randn(args.capacity, args.dim))
    return buf


def bench_lookup_score(args, rng) -> tuple[float, float]:
    """(a): half of the minibatch is buffered."""
    ids = rng.permutation(args.nodes)
    buf = full_buffer(args, ids)
    batch = rng.permutation(np.concatenate((ids[: args.batch // 2], ids[-(args.batch - args.batch // 2):])))

    def run() -> float:
        t0 = time.perf_counter()
        slots = buf.lookup(batch)
        buf.update_scores(slots[slots >= 0])
        return time.perf_counter() - t0

    return measure(run, args.repeats, args.warmup)


def bench_replacement(args, rng) -> tuple[float, float]:
    """(b): a full buffer with ``replace-rows`` stale entries and twice as many candidates."""
    ids = rng.permutation(args.nodes)
    template = full_buffer(args, ids)
    live = np.arange(args.replace_rows, args.capacity)
    for _ in range(30):  # the first replace-rows slots go stale
        template.update_scores(live)
    template.record_misses(ids[args.capacity: args.capacity + 2 * args.replace_rows])
    rows = torch.randn(args.replace_rows, args.dim)

    def run() -> float:
        buf = copy.deepcopy(template)
        t0 = time.perf_counter()
        plan = buf.plan_replacement()
        buf.apply_replacement(plan, rows[: len(plan)])
        return time.perf_counter() - t0

    return measure(run, args.repeats, args.warmup)


def bench_engine(args, rng, replace: bool) -> tuple[tuple[float, float], list[tuple[FetchCounts, int]]]:
    """(c): fresh skewed minibatches on a warmed-up buffer; returns timings and the timed counts."""
    table = torch.randn(args.nodes, args.dim)
    bounds = np.cumsum(np.full(4, args.nodes // 4))
    bounds[-1] = args.nodes
    engine = BufferEngine(PersistentBuffer(args.capacity, args.dim, ScoringPolicy()), bounds, 0)
    pool = rng.permutation(args.nodes)
    for _ in range(60):  # warm-up stream, longer than 25 rounds: full buffer with stale entries
        p = engine.prepare(skewed_unique(rng, pool, args.batch), replace=True)
        engine.complete(p, table[torch.from_numpy(p.pull_ids)])
    counts: list[tuple[FetchCounts, int]] = []

    def run() -> float:
        batch = skewed_unique(rng, pool, args.batch)
        t0 = time.perf_counter()
        plan = engine.prepare(batch, replace)
        t1 = time.perf_counter()
        rows = table[torch.from_numpy(plan.pull_ids)]  # the DistTensor read: not ours, not timed
        t2 = time.perf_counter()
        engine.complete(plan, rows)
        counts.append((plan.counts, len(plan.replacement or ())))
        return (t1 - t0) + (time.perf_counter() - t2)

    return measure(run, args.repeats, args.warmup), counts[args.warmup:]


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    rows = [
        (f"(a) lookup + score round, {args.batch} ids, capacity {args.capacity}", bench_lookup_score(args, rng)),
        (f"(b) replacement plan + apply, {args.replace_rows} rows, D={args.dim}", bench_replacement(args, rng)),
    ]
    for replace in (False, True):
        timing, counts = bench_engine(args, rng, replace)
        hits = 100.0 * sum(c.hits for c, _ in counts) / max(1, sum(c.remote_inputs for c, _ in counts))
        inserted = statistics.mean(n for _, n in counts)
        extra = statistics.mean(c.replace_rows for c, _ in counts)
        what = f"replacing {inserted:.0f} rows ({extra:.0f} extra pulled)" if replace else "no replacement"
        rows.append((f"(c) engine prepare+complete, {args.batch} inputs, {what}, {hits:.0f}% hits", timing))
    width = max(len(name) for name, _ in rows)
    print(f"{'benchmark'.ljust(width)}  median ms     min ms")
    for name, (med, low) in rows:
        print(f"{name.ljust(width)}  {med:9.2f}  {low:9.2f}")
    print(f"{args.repeats} repeats after {args.warmup} warm-up runs; torch threads: {torch.get_num_threads()}")

if __name__ == "__main__":
    main()
