"""Per-stage CPU cost of the buffered fetch path, the old assembly beside the new one.

No DistDGL: a synthetic feature matrix stands in for the DistTensor, sized like ogbn-arxiv on 2 partitions
(169,343 nodes, 128 float32 features; ~33k input nodes per minibatch, ~22% of them remote, drawn from a
~56k-node halo; a buffer of 25% of the halo). Each hit rate is one stream: a minibatch's remote inputs are
that share of buffered ids and the rest halo misses, popular ids more often; every ``--replace-every``-th
minibatch asks for a replacement. Two engines, old and new, play the same stream in lockstep (same ids, same
decisions, so the same buffer state: checked every minibatch), alternating which goes first. Per minibatch
and engine, four stages are timed in process CPU time:

  prepare   engine.prepare (lookup, scoring round, replacement plan, pull ids)
  read      the stand-in for the DistTensor read: ``table[pull_ids]`` (old: the non-hit inputs; new: every
            input, hits as one local stand-in id, so each of those rows is a cache-hot local copy)
  assemble  the minibatch's features. old: a new [n, D] tensor, the hits gathered into a temporary, then two
            index_copy_ passes (hits, pulled rows). new: the read's own rows, hits copied over their stand-ins
  replace   writing the inserted rows into the buffer, on replacing minibatches only. old: index_select into a
            temporary, then index_copy_. new: one row copy from the pulled rows into the slots

For reference, ``none`` is the same stand-in read of every input (no buffer). Every served row of both
paths is checked against a direct gather (outside the timings). The old path is kept here (``OldEngine``)
as it was before issue 16, so the two can be compared on any machine. Tensor allocations per minibatch
(aten::empty / empty_strided in assemble + replace) are counted with the torch profiler on a few extra
minibatches.

    python benchmarks/bench_fetch_path.py --help
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from rudder_agent.buffer.engine import BufferEngine, FetchCounts
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.buffer.idtable import IdTable, as_ids
from rudder_agent.settings.keep import keep_policy
from rudder_agent.buffer.persistent import ReplacementPlan

STAGES = ("prepare", "read", "assemble", "replace")
os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler counts allocations: keep its log lines out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=169_343, help="graph nodes, two equal partitions (ours is 0)")
    ap.add_argument("--inputs", type=int, default=33_000, help="input nodes per minibatch")
    ap.add_argument("--remote", type=float, default=0.22, help="share of the inputs that are remote")
    ap.add_argument("--halo", type=int, default=56_000, help="remote nodes a minibatch may draw from")
    ap.add_argument("--fraction", type=float, default=0.25, help="buffer capacity as a share of the halo")
    ap.add_argument("--dim", type=int, default=128, help="feature dimension (float32)")
    ap.add_argument("--hit-rates", default="0.3,0.45,0.6", help="buffer hits per remote input, one stream each")
    ap.add_argument("--replace-every", type=int, default=2, help="every k-th minibatch asks for a replacement")
    ap.add_argument("--policy", default="lfu", choices=("decay", "lfu"),
                    help="keep policy, without a window (decay rarely finds stale rows in this stream)")
    ap.add_argument("--minibatches", type=int, default=60, help="timed minibatches per hit rate")
    ap.add_argument("--warmup", type=int, default=10, help="untimed minibatches first (JIT, page faults)")
    ap.add_argument("--alloc-minibatches", type=int, default=4, help="minibatches profiled for allocations")
    ap.add_argument("--torch-threads", type=int, default=1, help="the trainer runs torch with 1 thread")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


# ---- the old path, as engine.py had it before issue 16 -------------------------------------------------


@dataclass(frozen=True, slots=True)
class OldPlan:
    input_nodes: np.ndarray
    pull_ids: np.ndarray  # the non-hit inputs in input order, then the extra insert ids
    pull_pos: np.ndarray  # input position of each non-hit input
    hit_pos: np.ndarray
    hit_slots: np.ndarray
    replacement: ReplacementPlan | None
    insert_src: np.ndarray
    counts: FetchCounts


class OldEngine(BufferEngine):
    """prepare / complete as before issue 16 (the scoring and planning are shared, unchanged)."""

    def prepare(self, input_nodes, replace, upcoming=()):
        ids = as_ids(input_nodes)
        remote_pos = np.flatnonzero((ids < self.local_lo) | (ids >= self.local_hi))
        remote_pos = remote_pos[np.argsort(ids[remote_pos], kind="stable")]
        buf = self.buffer
        slots = buf.lookup(ids[remote_pos])
        hit = slots >= 0
        hit_pos, hit_slots = remote_pos[hit], slots[hit]
        miss_pos = remote_pos[~hit]
        miss_ids = ids[miss_pos]
        stale = self.keep.round(buf, hit_slots, miss_ids, ids[remote_pos], upcoming, (self.local_lo, self.local_hi))
        replacement = self.keep.plan(buf) if replace else None

        pulled = np.ones(ids.shape[0], dtype=np.bool_)
        pulled[hit_pos] = False
        pull_pos = np.flatnonzero(pulled)
        base = ids[pull_pos]
        insert_src, extra = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if replacement is not None and len(replacement):
            miss_rank = np.searchsorted(pull_pos, miss_pos)
            insert_src = IdTable.of(miss_ids, miss_rank).lookup(replacement.insert_ids)
            new = insert_src < 0
            extra = replacement.insert_ids[new]
            insert_src[new] = base.shape[0] + np.arange(extra.shape[0])
        pull_ids = np.concatenate((base, extra)) if extra.shape[0] else base
        misses, replace_rows = miss_ids.shape[0], extra.shape[0]
        counts = FetchCounts(ids.shape[0], remote_pos.shape[0], hit_pos.shape[0], misses, replace_rows,
                             misses + replace_rows, stale, buf.occupancy, buf.capacity)
        return OldPlan(ids, pull_ids, pull_pos, hit_pos, hit_slots, replacement, insert_src, counts)

    def assemble(self, plan, pulled_rows):
        buf, n = self.buffer, plan.input_nodes.shape[0]
        if not plan.hit_pos.shape[0]:
            return pulled_rows[:n]
        out = torch.empty((n, pulled_rows.shape[1]), dtype=pulled_rows.dtype)
        out.index_copy_(0, torch.from_numpy(plan.hit_pos), buf.gather(plan.hit_slots).to(pulled_rows.dtype))
        out.index_copy_(0, torch.from_numpy(plan.pull_pos), pulled_rows[: plan.pull_pos.shape[0]])
        return out

    def write_replacement(self, plan, pulled_rows):
        rows = pulled_rows.index_select(0, torch.from_numpy(plan.insert_src)) if len(plan.replacement) else None
        self.buffer.apply_replacement(plan.replacement, rows)


# ---- the synthetic world ---------------------------------------------------------------------------------


class World:
    """Our partition's ids, a popularity-weighted halo and the feature matrix standing in for the DistTensor."""

    def __init__(self, args: argparse.Namespace, rng: np.random.Generator):
        self.args, self.rng = args, rng
        half = args.nodes // 2
        self.bounds = np.array([half, args.nodes], dtype=np.int64)
        self.local = np.arange(half)
        self.halo = rng.choice(np.arange(half, args.nodes), size=args.halo, replace=False)
        self.popularity = np.zeros(args.nodes)
        self.popularity[self.halo] = 1.0 / np.arange(1, args.halo + 1) ** 0.8  # halo[0] most popular
        self.table = torch.randn(args.nodes, args.dim, generator=torch.Generator().manual_seed(args.seed))
        self.capacity = math.ceil(args.fraction * args.halo)

    def engines(self) -> tuple[OldEngine, BufferEngine]:
        """Old and new engine, each on a buffer warm-loaded with the same (least popular) halo rows."""
        warm = self.halo[-self.capacity:]
        out = []
        for cls in (OldEngine, BufferEngine):
            buf = PersistentBuffer(self.capacity, self.args.dim, ScoringPolicy())
            buf.warm_load(warm, self.table[torch.from_numpy(warm)])
            out.append(cls(buf, self.bounds, 0, keep_policy(self.args.policy).build(0)))
        return out[0], out[1]

    def minibatch(self, buf: PersistentBuffer, hit_rate: float) -> np.ndarray:
        """Unique input ids in random order: ``remote`` of them remote, ``hit_rate`` of those buffered."""
        a, rng = self.args, self.rng
        n_remote = round(a.remote * a.inputs)
        n_hit = round(hit_rate * n_remote)
        held = buf.slot_ids[buf.slot_ids >= 0]
        missable = np.setdiff1d(self.halo, held, assume_unique=True)
        hits = self._draw(held, n_hit)
        misses = self._draw(missable, n_remote - n_hit)
        local = rng.choice(self.local, size=a.inputs - n_remote, replace=False)
        return rng.permutation(np.concatenate((local, hits, misses)))

    def _draw(self, pool: np.ndarray, k: int) -> np.ndarray:
        p = self.popularity[pool]
        return self.rng.choice(pool, size=min(k, pool.shape[0]), replace=False, p=p / p.sum())


# ---- timing ----------------------------------------------------------------------------------------------


def cpu() -> float:
    return time.process_time()


def write_replacement(engine, plan, rows: torch.Tensor) -> None:
    """The replacement (ids and scores, then rows), as the engine's complete() applies it after assembling."""
    if isinstance(engine, OldEngine):
        engine.write_replacement(plan, rows)
        return
    engine.commit(plan)
    if len(plan.replacement):
        engine.buffer.write_rows(plan.replacement, rows, take=plan.insert_src)


def run_one(engine, ids: np.ndarray, replace: bool, table: torch.Tensor) -> tuple[dict, torch.Tensor, object]:
    """One minibatch through ``engine``, stage by stage; returns CPU seconds per stage, the features, the plan."""
    t = {}
    t0 = cpu()
    plan = engine.prepare(ids, replace)
    t1 = cpu()
    rows = table[torch.from_numpy(plan.pull_ids)]
    t2 = cpu()
    x = engine.assemble(plan, rows)
    t3 = cpu()
    if plan.replacement is not None:
        write_replacement(engine, plan, rows)
    t4 = cpu()
    t["prepare"], t["read"], t["assemble"] = t1 - t0, t2 - t1, t3 - t2
    if plan.replacement is not None and len(plan.replacement):
        t["replace"] = t4 - t3
    return t, x, plan


def allocations(engine, world: World, hit_rate: float, k: int) -> float:
    """Mean tensor allocations (aten::empty / empty_strided) per minibatch in assemble + replace."""
    count = 0
    for i in range(k):
        ids = world.minibatch(engine.buffer, hit_rate)
        plan = engine.prepare(ids, replace=i % 2 == 0)
        rows = world.table[torch.from_numpy(plan.pull_ids)]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            engine.assemble(plan, rows)
            if plan.replacement is not None:
                write_replacement(engine, plan, rows)
        count += sum(e.name in ("aten::empty", "aten::empty_strided") for e in prof.events())
    return count / k


def stream(args: argparse.Namespace, hit_rate: float) -> dict:
    """Both engines over one stream; per stage and engine the list of CPU seconds, plus stream facts."""
    rng = np.random.default_rng(args.seed)
    world = World(args, rng)
    old, new = world.engines()
    times = {name: {s: [] for s in STAGES} for name in ("old", "new")}
    inserted, none_read, hits, remote = [], [], 0, 0
    for step in range(args.warmup + args.minibatches):
        ids = world.minibatch(new.buffer, hit_rate)
        replace = step % args.replace_every == args.replace_every - 1
        order = (("old", old), ("new", new)) if step % 2 else (("new", new), ("old", old))
        results = {}
        for name, engine in order:
            results[name] = run_one(engine, ids, replace, world.table)
        t0 = cpu()
        truth = world.table[torch.from_numpy(ids)]  # also what `none` (no buffer) reads: every input
        t_none = cpu() - t0
        for name, (t, x, plan) in results.items():
            if not torch.equal(x, truth):
                raise AssertionError(f"{name} path served a wrong row at minibatch {step}")
        (_, _, po), (_, _, pn) = results["old"], results["new"]
        if po.counts != pn.counts or not np.array_equal(old.buffer.slot_ids, new.buffer.slot_ids):
            raise AssertionError(f"old and new engines diverged at minibatch {step}")
        if step < args.warmup:
            continue
        none_read.append(t_none)
        for name, (t, _, _) in results.items():
            for s, v in t.items():
                times[name][s].append(v)
        hits, remote = hits + pn.counts.hits, remote + pn.counts.remote_inputs
        if pn.replacement is not None:
            inserted.append(len(pn.replacement))
    allocs = {name: allocations(e, world, hit_rate, args.alloc_minibatches) for name, e in (("old", old), ("new", new))}
    return {"times": times, "none_read": none_read, "hit_share": hits / max(1, remote), "inserted": inserted,
            "allocs": allocs, "inputs": args.inputs, "remote": round(args.remote * args.inputs),
            "capacity": world.capacity}


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    ms = [1e3 * v for v in values]
    return f"{statistics.median(ms):6.2f} [{min(ms):5.2f}-{max(ms):6.2f}]"


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    print(f"CPU ms per minibatch: median [min-max] over {args.minibatches} minibatches after {args.warmup} warm-up "
          f"(replace: over the replacing ones); torch threads {torch.get_num_threads()}, policy {args.policy}")
    w = 24
    for rate in (float(r) for r in args.hit_rates.split(",")):
        r = stream(args, rate)
        ins = r["inserted"]
        print(f"\nhit rate {r['hit_share']:.2f}: {r['inputs']} inputs, {r['remote']} remote, capacity {r['capacity']},"
              f" {len(ins)} replacements of {statistics.mean(ins) if ins else 0:.0f} rows (mean)")
        print(f"{'stage':<10}{'old':>{w}}{'new':>{w}}{'new/old':>9}")
        totals = {}
        for s in (*STAGES, "total"):
            if s == "total":
                vals = {k: [sum(x) for x in zip(*(r["times"][k][st] for st in STAGES[:3]))] for k in ("old", "new")}
                label = "total*"
            else:
                vals, label = {k: r["times"][k][s] for k in ("old", "new")}, s
            totals[s] = vals
            ratio = (statistics.median(vals["new"]) / statistics.median(vals["old"])
                     if vals["old"] and vals["new"] and statistics.median(vals["old"]) > 0 else float("nan"))
            print(f"{label:<10}{cell(vals['old']):>{w}}{cell(vals['new']):>{w}}{ratio:>9.2f}")
        a = r["allocs"]
        print(f"{'allocs/mb':<10}{a['old']:>{w}.1f}{a['new']:>{w}.1f}   tensor allocations in assemble + replace")
        print(f"{'none':<10}{'':>{w}}{cell(r['none_read']):>{w}}   reference: no buffer, one read of every input")
    print("\n* total = prepare + read + assemble per minibatch (replace is paid on replacing minibatches only)")


if __name__ == "__main__":
    main()
