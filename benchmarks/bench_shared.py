"""What one minibatch costs on a machine-shared buffer, alone (no other trainer, no CPU contention).

A synthetic stream with ogbn-arxiv's sizes (a partition of 85,000 local ids, 84,000 remote ones drawn with a
power-law popularity, ~9,000 remote inputs a minibatch, a buffer of 20,442 rows of 128 float32) goes through
the per-trainer engine and through ``SharedEngine`` on a segment in /dev/shm, one process each. Printed per
minibatch: the whole prepare + complete, and for the shared engine the time it held the machine lock and the
state snapshot's size. What the live runs add on top is contention: docs/machines.md.

    PYTHONPATH=$PWD python benchmarks/bench_shared.py [--minibatches 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.shared import MachineSegment, SharedEngine
from rudder_agent.settings.keep import keep_policy

BOUNDS = np.array([85_000, 169_000])
CAPACITY, DIM, WINDOW = 20_442, 128, 8


def stream(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    popularity = 1 / np.arange(1, 84_001) ** 0.8
    popularity /= popularity.sum()
    return [np.unique(np.concatenate((85_000 + rng.choice(84_000, 9_000, p=popularity),
                                      rng.integers(0, 85_000, 20_000)))) for _ in range(n)]


def run(engine, batches: list[np.ndarray]) -> tuple[list[float], list[float], int]:
    step, held, state = [], [], 0
    for i, ids in enumerate(batches):
        tic = time.perf_counter()
        plan = engine.prepare(ids, replace=True, upcoming=batches[i + 1: i + 1 + WINDOW])
        engine.complete(plan, torch.zeros((plan.pull_ids.shape[0], DIM)))
        step.append(time.perf_counter() - tic)
        if plan.share is not None:
            held.append(plan.share.t_share_hold)
            state = max(state, plan.share.state_bytes)
    return step[5:], held[5:], state  # the first minibatches fill the buffer and compile nothing new after


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minibatches", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    batches = stream(args.minibatches)
    for r in range(args.repeats):
        own = BufferEngine(PersistentBuffer(CAPACITY, DIM), BOUNDS, 0, keep_policy("lookahead").build(WINDOW))
        own_step, _, _ = run(own, batches)
        with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
            seg = MachineSegment(Path(shm) / "bench_buffer", CAPACITY, DIM, torch.float32)
            shared = SharedEngine(BufferEngine(PersistentBuffer(CAPACITY, 0), BOUNDS, 0,
                                               keep_policy("lookahead").build(WINDOW, 2), lane=0), seg)
            sh_step, held, state = run(shared, batches)
            seg.close()
        ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
        print(f"repeat {r}: per minibatch (median) own buffer {ms(own_step):.2f} ms, shared {ms(sh_step):.2f} ms, "
              f"lock held {ms(held):.2f} ms, state snapshot {state / 1000:.1f} KB")


if __name__ == "__main__":
    main()
