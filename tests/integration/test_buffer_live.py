"""The persistent buffer inside real DistDGL training: exact rows, same training, fewer rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy
from rudder_agent.cluster.fetch import CORRUPT_ENV
from rudder_agent.records.stream import read_jsonl
from rudder_agent.records.trace import read_trace, read_trace_meta
from tests.integration.reference import PERIOD, REFERENCE
from tests.integration.helpers import STOPPED, assert_no_leftovers, links, minibatches, namespaces, rudder

pytestmark = pytest.mark.integration

# The paper's decay policy: this file checks the live buffer against a hand-built decay replay, and
# W=0 keeps DistDGL's samples identical to `none` (the look-ahead policy: test_lookahead_live.py).
RUNS = {"none": "none", "fixed": "fixed-decay", "massivegnn": "massivegnn-decay"}
CORRUPT_STEP = 2


@pytest.fixture(scope="module")
def runs(reference) -> dict[str, Path]:
    return {controller: reference(name) for controller, name in RUNS.items()}


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def replayed_hits(run: Path, rank: int, replace_at) -> dict[int, int]:
    """Hits per step of the recorded input stream fed through a fresh buffer (ids only, no DistDGL)."""
    meta = read_trace_meta(run / f"trace-rank{rank}.json")
    b = meta.config.buffer
    policy = ScoringPolicy.from_settings(b.scoring)
    buf = PersistentBuffer(meta.capacity, 0, policy)
    if meta.warm_ids:
        buf.warm_load(np.asarray(meta.warm_ids, dtype=np.int64))
    engine = BufferEngine(buf, np.asarray(meta.part_bounds), meta.partition)
    hits = {}
    for step, ids in read_trace(run / f"trace-rank{rank}.rtf"):
        plan = engine.prepare(ids, replace=replace_at(step))
        engine.complete(plan, None)
        hits[step] = plan.counts.hits
    return hits


@pytest.mark.parametrize("controller", ["none", "fixed", "massivegnn"])
def test_every_served_row_is_exact(runs, controller) -> None:
    s = summary(runs[controller])
    mbs = [m for rank in (0, 1) for m in minibatches(runs[controller], rank)]
    assert s["input_nodes"] == sum(m["input_nodes"] for m in mbs) > 0
    assert s["verified_rows"] == s["input_nodes"]
    per_rank = [c["verified_rows"] for rank in (0, 1)
                for c in read_jsonl(runs[controller] / f"metrics-rank{rank}.jsonl", kind="controller")]
    assert per_rank == [sum(m["input_nodes"] for m in minibatches(runs[controller], rank)) for rank in (0, 1)]


def test_buffer_serves_hits_and_cuts_rows(runs) -> None:
    none, fixed = summary(runs["none"]), summary(runs["fixed"])
    assert none["hits"] == 0 and none["comm_rows"] == none["remote_inputs"]
    assert fixed["comm_rows"] == fixed["miss_rows"] + fixed["replace_rows"]
    assert fixed["comm_rows"] < none["comm_rows"]
    total = 0
    for rank in (0, 1):
        replay = replayed_hits(runs["fixed"], rank, lambda step: True)
        live = {m["step"]: m["hits"] for m in minibatches(runs["fixed"], rank)}
        assert live == replay
        total += sum(live.values())
        for m in minibatches(runs["fixed"], rank):
            assert m["hits"] + m["misses"] == m["remote_inputs"]
            assert m["occupancy"] <= m["capacity"]
    assert fixed["hits"] == total > 0


def test_same_minibatches_and_loss_with_and_without_buffer(runs) -> None:
    for rank in (0, 1):
        a = [(s, ids) for s, ids in read_trace(runs["none"] / f"trace-rank{rank}.rtf")]
        b = [(s, ids) for s, ids in read_trace(runs["fixed"] / f"trace-rank{rank}.rtf")]
        assert len(a) == len(b) == len(minibatches(runs["none"], rank)) > 0
        assert all(sa == sb and np.array_equal(ia, ib) for (sa, ia), (sb, ib) in zip(a, b))
        loss_a = [m["loss"] for m in minibatches(runs["none"], rank)]
        loss_b = [m["loss"] for m in minibatches(runs["fixed"], rank)]
        assert loss_a == loss_b


def test_trace_only_records_the_same_stream_without_training(reference) -> None:
    """``--trace-only``: the same minibatches, decisions and rows as the full run, with no loss: nothing was trained."""
    full, traced = reference("fixed-decay"), reference("fixed-decay-trace-only")
    for rank in (0, 1):
        a, b = list(read_trace(full / f"trace-rank{rank}.rtf")), list(read_trace(traced / f"trace-rank{rank}.rtf"))
        assert len(a) == len(b) > 3
        assert all(sa == sb and np.array_equal(ia, ib) for (sa, ia), (sb, ib) in zip(a, b))
        counts = lambda run: [(m["step"], m["hits"], m["comm_rows"]) for m in minibatches(run, rank)]  # noqa: E731
        assert counts(traced) == counts(full)
        assert all(m["loss"] is not None for m in minibatches(full, rank))
        assert [m["loss"] for m in minibatches(traced, rank)] == [None] * len(b)
    assert summary(traced)["epochs"] == summary(full)["epochs"] == 3


def test_a_corrupted_row_fails_the_verified_run_and_every_process_is_stopped(runs, tmp_path) -> None:
    """Trainer 0 corrupts its buffered rows before step 2: the checker names exactly that step's hits, the
    failing trainer ends the run (exit 1, named), and the launcher stops the rest: no process, shared-memory
    segment, network namespace or link is left behind (fixed-decay runs on the emulated network where it can)."""
    step = {m["step"]: m for m in minibatches(runs["fixed"], 0)}[CORRUPT_STEP]
    assert step["hits"] > 0, "the reference run must serve buffer hits at the corrupted step"
    ns_before, links_before = namespaces(), links()
    out = tmp_path / "corrupt"
    proc = rudder("train", *REFERENCE["fixed-decay"], "--out", str(out),
                  env={**os.environ, CORRUPT_ENV: str(CORRUPT_STEP)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: trainer-0 failed (exit code 1)" in proc.stderr
    assert (f"ServedRowMismatch: {step['hits']} of {step['input_nodes']} served feature rows differ from the "
            "DistTensor") in proc.stderr
    written = [m["step"] for m in minibatches(out, 0)]
    assert written == list(range(CORRUPT_STEP)) and not (out / "summary.json").exists()
    cluster = assert_no_leftovers(out)
    assert cluster["exit_codes"]["trainer-0"] == 1
    # the servers never end by themselves while a trainer is missing: the launcher stopped them
    for server in ("server-0", "server-1"):
        assert server in cluster["stopped_by_launcher"], cluster
        assert cluster["exit_codes"][server] in STOPPED, cluster
    assert namespaces() == ns_before and links() == links_before


def test_massivegnn_warm_rows_are_exact_and_serve_the_first_minibatch(runs) -> None:
    run = runs["massivegnn"]
    s = summary(run)
    controllers = {c["rank"]: c for rank in (0, 1) for c in read_jsonl(run / f"metrics-rank{rank}.jsonl",
                                                                        kind="controller")}
    total_warm = 0
    for rank in (0, 1):
        meta = read_trace_meta(run / f"trace-rank{rank}.json")
        warm = np.asarray(meta.warm_ids, dtype=np.int64)
        lo = meta.part_bounds[meta.partition - 1] if meta.partition else 0
        hi = meta.part_bounds[meta.partition]
        # a full buffer of distinct remote rows, loaded before the first minibatch
        assert meta.capacity == -(-meta.halo_nodes // 4)  # ceil(0.25 x halo)
        assert len(warm) == len(np.unique(warm)) == meta.capacity == controllers[rank]["warm_rows"]
        assert not np.any((warm >= lo) & (warm < hi))
        total_warm += len(warm)

        mbs = {m["step"]: m for m in minibatches(run, rank)}
        first_ids = dict(read_trace(run / f"trace-rank{rank}.rtf"))[0]
        from_warm = int(np.isin(first_ids, warm).sum())
        assert mbs[0]["decision_applied"] == "skip" and mbs[0]["replace_rows"] == 0
        assert mbs[0]["hits"] == from_warm > 0  # step 0's hits are exactly the warm rows it asked for
        assert mbs[0]["occupancy"] == meta.capacity

        replay = replayed_hits(run, rank, lambda step: step > 0 and step % PERIOD == 0)
        assert {k: m["hits"] for k, m in mbs.items()} == replay
        assert {k for k, m in mbs.items() if m["decision_applied"] == "replace"} == \
            {k for k in mbs if k > 0 and k % PERIOD == 0}
    assert s["warm_rows"] == total_warm == sum(s["capacity"])
    assert s["comm_rows"] == s["miss_rows"] + s["replace_rows"] + s["warm_rows"]
    assert s["verified_rows"] == s["input_nodes"]
