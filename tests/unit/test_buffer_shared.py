"""A machine's trainers sharing one buffer in shared memory: exact rows, one fetch per machine, the order replayable,
and a trainer's death leaves neither a lock held nor a file behind."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest
import torch

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.shared import MachineSegment, SharedEngine
from rudder_agent.settings.keep import keep_policy

BOUNDS = np.array([1000, 3000])  # this machine owns [0, 1000); remote ids are 1000..2999
DIM = 4


def row_of(ids: np.ndarray) -> torch.Tensor:
    """The 'DistTensor': every id's row is a function of the id, so any wrong row shows."""
    ids = torch.as_tensor(ids, dtype=torch.float32)[:, None]
    return torch.cat([ids, ids * 0.5, -ids, ids + 0.25], dim=1)


def stream(seed: int, n: int = 40, size: int = 60) -> list[np.ndarray]:
    """Minibatches from one partition's halo: a hot set every trainer draws from, and a cold tail."""
    rng = np.random.default_rng(seed)
    hot = np.arange(1000, 1080)
    out = []
    for _ in range(n):
        ids = np.concatenate((rng.choice(hot, size // 2, replace=False), rng.integers(1000, 3000, size // 2),
                              rng.integers(0, 1000, 10)))
        out.append(np.unique(ids))
    return out


def shared_engine(base, capacity, lane, lanes, policy="lookahead", window=4, wait_s=None) -> SharedEngine:
    keep = keep_policy(policy).build(window, lanes)
    engine = BufferEngine(PersistentBuffer(capacity, 0), BOUNDS, 0, keep, lane=lane)
    return SharedEngine(engine, MachineSegment(base, capacity, DIM, torch.float32), wait_s=wait_s)


def run_trainer(*args, **kwargs):
    out = args[7]
    try:
        out.put(trainer_loop(*args, **kwargs))
    except BaseException as exc:  # the test reads it instead of waiting for a result that never comes
        out.put((-1, repr(exc), 0, 0, []))
        raise


def trainer_loop(base, capacity, lane, lanes, seed, policy, window, out, delay=0.0, stop_after=None):
    """One trainer's loop: prepare, read (with a delay that lets the others run), complete, check every row."""
    torch.set_num_threads(1)
    eng = shared_engine(base, capacity, lane, lanes, policy, window)
    batches = stream(seed)
    rng = np.random.default_rng(100 + lane)
    rows = waited = refetched = 0
    ops = []
    for i, ids in enumerate(batches):
        plan = eng.prepare(ids, replace=True, upcoming=batches[i + 1: i + 1 + window])
        if stop_after is not None and i == stop_after:
            os.kill(os.getpid(), signal.SIGKILL)  # dies with rows it promised still pending
        time.sleep(delay * rng.random())
        x = eng.complete(plan, row_of(plan.pull_ids))
        assert torch.equal(x, row_of(ids)), f"trainer {lane} minibatch {i}: a served row is wrong"
        rows += plan.counts.comm_rows
        waited += plan.share.waited_rows
        refetched += plan.share.refetched_rows
        ops.append(plan.share.machine_op)
    eng.close()
    return lane, rows, waited, refetched, ops


def run_machine(base, lanes, capacity, policy="lookahead", window=4, delay=0.002):
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=run_trainer, args=(base, capacity, j, lanes, j, policy, window, out, delay))
             for j in range(lanes)]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=120) for _ in procs)
    assert all(r[0] >= 0 for r in results), results
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def separate_rows(lanes, capacity, policy="lookahead", window=4) -> int:
    """The same streams, each trainer with its own buffer of ``capacity``."""
    total = 0
    for j in range(lanes):
        e = BufferEngine(PersistentBuffer(capacity, 0), BOUNDS, 0, keep_policy(policy).build(window))
        batches = stream(j)
        for i, ids in enumerate(batches):
            plan = e.prepare(ids, replace=True, upcoming=batches[i + 1: i + 1 + window])
            e.complete(plan, None)
            total += plan.counts.comm_rows
    return total


@pytest.fixture(autouse=True)
def arrays_in_files(monkeypatch):
    """Every state array in a file of the segment, as the large ones are on a real graph (forked children inherit)."""
    from rudder_agent.buffer import shared

    monkeypatch.setattr(shared, "SHARE_BYTES", 1)


@pytest.mark.parametrize("policy", ["lookahead", "lfu", "decay"])
def test_every_row_is_exact_and_the_machine_fetches_less_than_its_trainers_apart(tmp_path, policy):
    lanes, per_trainer = 2, 40
    results = run_machine(tmp_path / "m0_buffer", lanes, lanes * per_trainer, policy)
    shared = sum(r[1] for r in results)
    assert shared < 0.85 * separate_rows(lanes, per_trainer, policy)  # sequential interleaving: 0.67-0.77
    assert not list(tmp_path.iterdir())  # the last trainer removed the files


def test_rows_other_trainers_are_fetching_are_waited_for_and_the_order_replays_to_the_same_rows(tmp_path):
    lanes, capacity, window = 2, 80, 4
    results = run_machine(tmp_path / "m0_buffer", lanes, capacity, window=window, delay=0.01)
    waited = sum(r[2] for r in results)
    refetched = sum(r[3] for r in results)
    assert waited > 0  # the trainers did hit rows the other was still fetching ...
    assert refetched == 0, (refetched, waited)  # ... and got every one: nobody died, nothing was read twice
    # ... and in the machine's order (machine_op), one engine with a lane per trainer fetches what they did
    ops = sorted((op, lane, i) for lane, _, _, _, lane_ops in results for i, op in enumerate(lane_ops))
    assert [o[0] for o in ops] == sorted(set(o[0] for o in ops))  # one place in the order per minibatch
    keep = keep_policy("lookahead").build(window, lanes)
    engines = {}
    replica = PersistentBuffer(capacity, 0)
    rows = 0
    for _, lane, i in ops:
        e = engines.setdefault(lane, BufferEngine(replica, BOUNDS, 0, keep, lane=lane))
        batches = stream(lane)
        plan = e.prepare(batches[i], replace=True, upcoming=batches[i + 1: i + 1 + window])
        e.complete(plan, None)
        rows += plan.counts.comm_rows
    assert rows + refetched == sum(r[1] for r in results)


def test_a_trainer_that_dies_mid_minibatch_holds_no_lock_and_the_others_go_on(tmp_path):
    base = tmp_path / "m0_buffer"
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    victim = ctx.Process(target=run_trainer, args=(base, 80, 0, 2, 0, "lookahead", 4, out, 0.0, 5))
    victim.start()
    victim.join(timeout=60)
    assert victim.exitcode == -signal.SIGKILL
    t = ctx.Process(target=run_trainer, args=(base, 80, 1, 2, 1, "lookahead", 4, out, 0.0))
    t.start()
    lane, rows, waited, refetched, _ = out.get(timeout=120)  # took the lock: the kernel released the dead one's
    t.join(timeout=30)
    assert t.exitcode == 0 and lane == 1 and rows > 0
    seg = MachineSegment(base, 80, DIM, torch.float32)  # the dead trainer's slots stay pending: never served
    pending = (seg.assigned != -1) & (seg.ready != seg.assigned)
    assert pending.any()
    seg.close()


def test_a_segment_of_another_shape_is_refused(tmp_path):
    seg = MachineSegment(tmp_path / "b", 10, DIM, torch.float32)
    with pytest.raises(RuntimeError, match="another shape"):
        MachineSegment(tmp_path / "b", 12, DIM, torch.float32)
    seg.close()


def test_each_trainer_decides_for_its_own_minibatches_on_the_one_shared_state(tmp_path):
    """The documented rule: a trainer's controller answers for its own minibatches; a replacement it applies
    changes the machine's buffer for every trainer, and a skip changes nothing for anyone."""
    a = shared_engine(tmp_path / "m0_buffer", 8, 0, 2, policy="lfu", window=0)
    b = shared_engine(tmp_path / "m0_buffer", 8, 1, 2, policy="lfu", window=0)
    first, second = np.array([1001, 1002, 1003]), np.array([1004, 1005])
    plan = a.prepare(first, replace=False)  # trainer 0 skips: its misses stay out
    a.complete(plan, row_of(plan.pull_ids))
    plan = b.prepare(first, replace=True)  # trainer 1 replaces: the rows it fetched enter the machine's buffer
    b.complete(plan, row_of(plan.pull_ids))
    assert plan.counts.hits == 0 and b.buffer.occupancy == 3
    plan = a.prepare(np.concatenate((first, second)), replace=False)  # trainer 0 hits what trainer 1 fetched
    x = a.complete(plan, row_of(plan.pull_ids))
    assert plan.counts.hits == 3 and plan.counts.comm_rows == 2 and a.buffer.occupancy == 3
    assert torch.equal(x, row_of(np.concatenate((first, second))))
    a.close()
    b.close()
