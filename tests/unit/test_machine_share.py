"""The machine view of `rudder bounds`: a machine's trainers with separate buffers against one shared buffer.

Hand-made runs of 2 machines x T trainers (ids 0..99 on machine 0, 100..199 on machine 1), small enough
that every count is derived by hand in the test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rudder_agent.cli import app
from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.decision import StaticFacts
from rudder_agent.errors import InputError
from rudder_agent.records.trace import TraceMeta, TraceWriter, write_trace_meta
from rudder_agent.replay.machine_share import machine_ranks, machine_share, machine_view, merge
from rudder_agent.replay.recording import load_recording

BOUNDS = [100, 200]


def make_run(run: Path, streams: list[list[list[int]]], per_epoch: int, halo: int = 8, lookahead: int = 8) -> Path:
    """A traced run of 2 machines with len(streams) // 2 trainers each (rank r on machine r // T), as `rudder train` leaves it."""
    run.mkdir(parents=True, exist_ok=True)
    T = len(streams) // 2
    cfg = TrainConfig(dataset="synthetic:200", parts=2, trainers_per_machine=T, part_config=run / "p.json",
                      graph_name="g", out_dir=run, epochs=-(-len(streams[0]) // per_epoch),
                      buffer=BufferConfig.from_values({"controller": "none", "lookahead": lookahead}))
    capacity = math.ceil(cfg.buffer.fraction * halo)
    for rank, inputs in enumerate(streams):
        part = rank // T
        facts = StaticFacts(dataset=cfg.dataset, num_nodes=200, num_edges=1000, num_parts=2, partition=part,
                            local_nodes=100, halo_nodes=halo, capacity=capacity, total_minibatches=len(inputs),
                            feature_dim=4)
        write_trace_meta(run / f"trace-rank{rank}.json", TraceMeta(
            rank=rank, partition=part, part_bounds=BOUNDS, capacity=0, halo_nodes=halo, feature_dim=4, row_bytes=16,
            minibatches_per_epoch=per_epoch, facts=facts, config=cfg))
        writer = TraceWriter(run / f"trace-rank{rank}.rtf")
        for step, ids in enumerate(inputs):
            writer.write(step, np.array(ids, dtype=np.int64))
        writer.close()
    (run / "config.json").write_text(cfg.model_dump_json())
    return run


def remote(ids: list[int], machine: int) -> list[int]:
    """``ids`` made remote to ``machine`` (shifted into the other machine's range)."""
    return [i + 100 if machine == 0 else i for i in ids]


def twins(per_trainer: list[list[int]], T: int = 2) -> list[list[list[int]]]:
    """Every trainer of both machines requests the same remote rows in the same order."""
    return [[remote(ids, rank // T) for ids in per_trainer] for rank in range(2 * T)]


def test_ranks_are_grouped_by_their_machine(tmp_path):
    run = make_run(tmp_path / "run", twins([[1, 2]], T=3), per_epoch=1)
    assert machine_ranks(run) == {0: [0, 1, 2], 1: [3, 4, 5]}


def test_merge_takes_minibatch_i_of_every_trainer_then_i_plus_1_epoch_by_epoch(tmp_path):
    streams = [[[100 + 10 * t + s] for s in range(4)] for t in range(2)] + [[[0]] * 4] * 2
    run = make_run(tmp_path / "run", streams, per_epoch=2)
    shared = merge([load_recording(run, 0), load_recording(run, 1)])
    assert [int(ids[0]) for ids in shared.inputs] == [100, 110, 101, 111, 102, 112, 103, 113]
    assert shared.steps == list(range(8)) and shared.meta.minibatches_per_epoch == 4
    assert shared.window(1, 8) == shared.inputs[2:4]  # the look-ahead stops at the merged epoch's end


def test_trainers_requesting_the_same_rows_fetch_each_once_when_they_share(tmp_path):
    """Both trainers: {0, 1} then {2, 3}; C = ceil(0.25 x 8) = 2. Nothing is reused within a trainer, so
    separately each fetches its 4 rows (8 in all); shared, the second trainer's requests are all hits (4)."""
    run = make_run(tmp_path / "run", twins([[0, 1], [2, 3]]), per_epoch=2)
    (m0, m1) = machine_view(run)
    assert (m0.machine, m0.ranks, m0.capacity, m0.remote_inputs) == (0, [0, 1], 2, 8)
    for m in (m0, m1):
        assert m.separate == {"belady": 8, "lookahead": 8}
        assert m.shared == {"belady": 4, "lookahead": 4}
        assert m.ratios()["belady"] == m.ratios()["lookahead"] == 0.5
        assert m.shared_c == {"belady": 4}  # each pair is used back to back: C rows are enough


def test_trainers_with_disjoint_rows_gain_nothing_and_one_buffer_of_c_loses(tmp_path):
    """C = ceil(0.25 x 4) = 1. Trainer 0 asks a, a and trainer 1 b, b (a = id 0, b = id 1).

    Separate buffers of 1 row: each fetches its row once (2 in all). Merged: a b a b. One buffer of 2 rows
    also fetches each once (2: ratio 1). One buffer of 1 row keeps a (used sooner) and fetches b twice: 3.
    """
    streams = [[remote(ids, r // 2) for ids in s] for r, s in enumerate([[[0], [0]], [[1], [1]]] * 2)]
    run = make_run(tmp_path / "run", streams, per_epoch=2, halo=4)
    m = machine_share([load_recording(run, 0), load_recording(run, 1)], machine=0)
    assert m.capacity == 1
    assert m.separate == {"belady": 2, "lookahead": 2}
    assert m.shared == {"belady": 2, "lookahead": 2}
    assert m.shared_c == {"belady": 3}
    assert m.ratios() == {"belady": 1.0, "lookahead": 1.0, "shared_c_belady": 1.5}


def test_the_shared_buffer_looks_ahead_over_every_trainers_window(tmp_path):
    """T = 2, W = 1, C = 1: trainer 0 asks {a, b} then {c}; trainer 1 asks {x} then {x}. Merged: {a, b} {x} {c} {x}.

    Each trainer alone: 3 rows and 1 (x kept: its next use is in trainer 1's window). Shared (2 rows, window
    T x W = 2): after {x} the window holds {c} {x}, so x beats a and b (not used again) and {x} hits: 4 rows,
    as Belady. With a window of only W = 1 merged minibatches x would look no better than a and b: 5 rows.
    """
    t0, t1 = [[0, 1], [2]], [[3], [3]]
    streams = [[remote(ids, r // 2) for ids in s] for r, s in enumerate([t0, t1] * 2)]
    run = make_run(tmp_path / "run", streams, per_epoch=2, halo=4, lookahead=1)
    m = machine_share([load_recording(run, 0), load_recording(run, 1)], machine=0)
    assert (m.capacity, m.window) == (1, 1)
    assert m.separate == {"belady": 4, "lookahead": 4}
    assert m.shared == {"belady": 4, "lookahead": 4}


def test_fraction_and_window_are_the_recorded_ones_unless_given(tmp_path):
    run = make_run(tmp_path / "run", twins([[0, 1], [2, 3]]), per_epoch=2, halo=40, lookahead=4)
    recordings = [load_recording(run, 0), load_recording(run, 1)]
    assert (machine_share(recordings, 0).capacity, machine_share(recordings, 0).window) == (10, 4)
    assert (machine_share(recordings, 0, fraction=0.05, window=2).capacity,
            machine_share(recordings, 0, fraction=0.05, window=2).window) == (2, 2)


def test_a_shared_window_beyond_the_policys_reach_is_refused(tmp_path):
    run = make_run(tmp_path / "run", twins([[0, 1]], T=4), per_epoch=1)
    with pytest.raises(InputError, match="T x W = 4 x 16 = 64"):
        machine_view(run, window=16)


def test_bounds_machine_prints_a_table_per_machine_and_writes_json(tmp_path):
    run = make_run(tmp_path / "run", twins([[0, 1], [2, 3]]), per_epoch=2)
    result = CliRunner().invoke(app, ["bounds", str(run), "--machine", "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert "machine 0: trainers 0, 1 (T=2), C=2 rows each, W=8" in result.output
    assert "machine 1: trainers 2, 3 (T=2)" in result.output
    assert [line.split() for line in result.output.splitlines() if line.strip().startswith("belady")] == [
        ["belady", "8", "4", "0.500", "4", "0.500"]] * 2
    shares = json.loads((tmp_path / "m.json").read_text())
    assert [s["machine"] for s in shares] == [0, 1]
    assert shares[0]["ratios"] == {"belady": 0.5, "lookahead": 0.5, "shared_c_belady": 0.5}


def test_bounds_machine_refuses_a_run_with_one_trainer_per_machine(tmp_path):
    run = make_run(tmp_path / "run", [[[100]], [[0]]], per_epoch=1)
    result = CliRunner().invoke(app, ["bounds", str(run), "--machine"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {run} has one trainer per machine: nothing to share (shared = separate); record it with "
        "`rudder train --trainers-per-machine T --trace` for T >= 2"]
