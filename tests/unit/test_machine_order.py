"""A machine-shared run replays in its recorded order to the same comm rows, and Belady bounds it.

Two forked trainers play their minibatches on one real machine segment (the SharedEngine of a live run, built
as attach.py builds it) and record what they did as `rudder train --trace` does: a trace, a trace meta with the
run's config and the machine's capacity, and a metric stream with each minibatch's machine_op, waits and
refetches. The replay then has to account for every row the trainers read.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.buffer.shared import MachineSegment, SharedEngine
from rudder_agent.cli import app
from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.decision import StaticFacts
from rudder_agent.errors import InputError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.records.trace import TraceMeta, TraceWriter, write_trace_meta
from rudder_agent.replay.machine_order import recorded_scope, replay_machine
from tests.unit.test_buffer_shared import BOUNDS, DIM, row_of, stream

LANES, CAPACITY, WINDOW, MINIBATCHES = 2, 80, 4, 40


def config(run: Path, policy: str) -> TrainConfig:
    return TrainConfig(dataset="synthetic:3000", parts=2, trainers_per_machine=LANES, part_config=run / "p.json",
                       graph_name="g", out_dir=run, epochs=1,
                       buffer=BufferConfig.from_values({"controller": "fixed", "policy": policy,
                                                        "lookahead": WINDOW}))


def replaces(i: int) -> bool:
    """The controller's answers: replace, except every third minibatch (so the recorded flag matters)."""
    return i % 3 != 2


def record_trainer(run: Path, cfg: TrainConfig, rank: int, shared: bool, wait_s: float, out) -> None:
    """One trainer of machine 0 as a live run records it; ``shared=False``: with a buffer of its own."""
    try:
        torch.set_num_threads(1)
        b = cfg.buffer
        capacity = LANES * CAPACITY if shared else CAPACITY
        lanes = LANES if shared else 1
        engine = BufferEngine(PersistentBuffer(capacity, 0, ScoringPolicy.from_settings(b.scoring)), BOUNDS, 0,
                              b.policy.build(b.lookahead, lanes), lane=rank % lanes)
        if shared:
            engine = SharedEngine(engine, MachineSegment(run / "m0_buffer", capacity, DIM, torch.float32),
                                  wait_s=wait_s)
        trace, metrics = TraceWriter(run / f"trace-rank{rank}.rtf"), MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        batches = stream(rank, n=MINIBATCHES)
        rng = np.random.default_rng(100 + rank)
        for i, ids in enumerate(batches):
            plan = engine.prepare(ids, replace=replaces(i), upcoming=batches[i + 1: i + 1 + WINDOW])
            time.sleep(0.01 * rng.random())  # the read: lets the other trainer play meanwhile
            engine.complete(plan, row_of(plan.pull_ids) if shared else None)  # its own buffer: ids only
            c = plan.counts
            trace.write(i, ids)
            metrics.write(MinibatchMetrics(
                rank=rank, epoch=0, step=i, input_nodes=c.input_nodes, remote_inputs=c.remote_inputs, hits=c.hits,
                misses=c.misses, replace_rows=c.replace_rows, comm_rows=c.comm_rows, comm_bytes=c.comm_rows * 16,
                decision_applied="replace" if replaces(i) else "skip",
                **(plan.share.fields() if plan.share is not None else {})), "minibatch")
        trace.close()
        metrics.close()
        if shared:
            engine.close()
        out.put(rank)
    except BaseException as exc:  # the test reads it instead of waiting for a result that never comes
        out.put(repr(exc))
        raise


def record_machine(run: Path, policy: str = "lookahead", shared: bool = True, wait_s: float = 30.0) -> Path:
    """A traced run of machine 0's two trainers (ranks 0 and 1), played by two processes at once.

    ``wait_s``: how long a trainer waits for a row the other is fetching before reading it itself (refetched).
    """
    run.mkdir(parents=True, exist_ok=True)
    cfg = config(run, policy)
    for rank in range(LANES):
        facts = StaticFacts(dataset=cfg.dataset, num_nodes=3000, num_edges=10000, num_parts=2, partition=0,
                            local_nodes=1000, halo_nodes=2000, capacity=LANES * CAPACITY,
                            total_minibatches=MINIBATCHES, feature_dim=DIM)
        write_trace_meta(run / f"trace-rank{rank}.json", TraceMeta(
            rank=rank, partition=0, part_bounds=BOUNDS.tolist(), capacity=LANES * CAPACITY if shared else CAPACITY,
            halo_nodes=2000, feature_dim=DIM, row_bytes=4 * DIM, minibatches_per_epoch=MINIBATCHES, facts=facts,
            config=cfg))
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=record_trainer, args=(run, cfg, rank, shared, wait_s, out)) for rank in range(LANES)]
    for p in procs:
        p.start()
    done = sorted(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert done == list(range(LANES)), done
    return run


@pytest.mark.parametrize("policy", ["lookahead", "decay"])
def test_a_shared_machine_replays_in_its_order_to_the_rows_it_read(tmp_path, policy):
    m = replay_machine(record_machine(tmp_path / "run", policy), 0)
    assert (m.ranks, m.lanes, m.capacity, m.window, m.minibatches) == ([0, 1], LANES, LANES * CAPACITY, WINDOW,
                                                                       LANES * MINIBATCHES)
    assert m.waited_rows > 0  # the trainers did hit rows the other was still fetching
    assert m.replayed_rows + m.refetched_rows == m.live_rows and m.exact
    assert m.belady_rows <= m.replayed_rows
    assert recorded_scope(tmp_path / "run") == "machine"


def test_rows_read_again_after_a_wait_ran_out_are_the_live_rows_beyond_the_replay(tmp_path):
    m = replay_machine(record_machine(tmp_path / "run", wait_s=0.0), 0)  # every pending hit is read here instead
    assert 0 < m.refetched_rows <= m.waited_rows
    assert m.replayed_rows + m.refetched_rows == m.live_rows


def test_the_commands_print_the_machine_and_say_which_scope(tmp_path):
    run = record_machine(tmp_path / "run")
    replayed = CliRunner().invoke(app, ["replay", str(run), "--machine", "0"])
    assert replayed.exit_code == 0, replayed.output
    assert "live == replayed + refetched: yes" in replayed.output and "live/Belady" in replayed.output
    bounds = CliRunner().invoke(app, ["bounds", str(run), "--machine"])
    assert bounds.exit_code == 0, bounds.output
    assert bounds.output.startswith("scope: machine") and "Belady" in bounds.output
    mixed = CliRunner().invoke(app, ["replay", str(run), "--machine", "all", "--controller", "oracle"])
    assert mixed.exit_code != 0 and "drop --controller" in mixed.output


def test_a_run_with_a_buffer_per_trainer_is_refused_with_the_fix(tmp_path):
    run = record_machine(tmp_path / "run", shared=False)
    with pytest.raises(InputError, match="rudder bounds RUN --machine"):
        replay_machine(run, 0)
    assert recorded_scope(run) == "trainer"
