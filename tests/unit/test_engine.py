"""The minibatch engine: exact features, consistent row accounting, replay parity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.buffer.policy import ScoringPolicy

NUM_NODES, DIM = 3000, 6
BOUNDS = np.array([700, 1500, 2300, 3000])  # 4 partitions, contiguous id ranges
MY_PART = 1
TABLE = torch.randn(NUM_NODES, DIM, generator=torch.Generator().manual_seed(0))


def access_stream(n_batches: int, seed: int = 0):
    """Skewed minibatches of unique ids whose hot set drifts, with replace on ~1 in 3."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, NUM_NODES) + 1e-3
    for b in range(n_batches):
        w = np.roll(weights, 40 * (b // 100))
        ids = rng.choice(NUM_NODES, size=int(rng.integers(1, 250)), replace=False, p=w / w.sum())
        yield ids.astype(np.int64), bool(rng.random() < 0.35)


def pull(ids: np.ndarray) -> torch.Tensor:
    """The fake DistTensor read."""
    return TABLE[torch.from_numpy(ids)]


def is_remote(ids: np.ndarray) -> np.ndarray:
    return np.searchsorted(BOUNDS, ids, side="right") != MY_PART


@pytest.mark.parametrize("capacity", [1, 60, 400])
def test_features_are_exact_and_rows_are_accounted(capacity):
    buf = PersistentBuffer(capacity, DIM, ScoringPolicy(gamma=0.8))
    engine = BufferEngine(buf, BOUNDS, MY_PART)
    replay = BufferEngine(PersistentBuffer(capacity, 0, ScoringPolicy(gamma=0.8)), BOUNDS, MY_PART)
    total_hits = total_replace_rows = 0
    for ids, replace in access_stream(400):
        plan = engine.prepare(torch.from_numpy(ids), replace)
        c = plan.counts
        out = engine.complete(plan, pull(plan.pull_ids))
        assert torch.equal(out, TABLE[torch.from_numpy(ids)])

        local = int((~is_remote(ids)).sum())
        assert c.input_nodes == len(ids) and c.remote_inputs == len(ids) - local
        assert c.hits + c.misses == c.remote_inputs
        assert c.comm_rows == c.misses + c.replace_rows
        assert len(plan.pull_ids) == len(ids) + c.replace_rows  # row i is input i, then the extra inserts
        remote_pulled = plan.pull_ids[is_remote(plan.pull_ids)]
        assert remote_pulled.shape[0] == c.comm_rows, "every remote row pulled is counted, hits are read locally"
        assert np.unique(remote_pulled).shape[0] == c.comm_rows, "a remote row is pulled twice"
        assert int(is_remote(plan.pull_ids[: len(ids)]).sum()) == c.misses
        assert c.occupancy <= c.capacity == capacity and 0 <= c.stale <= capacity
        if not replace:
            assert c.replace_rows == 0

        rp = replay.prepare(ids, replace)
        assert rp.counts == c, "replay (no features) must count exactly like the live engine"
        assert replay.complete(rp, None) is None
        total_hits += c.hits
        total_replace_rows += c.replace_rows

        held = buf.slot_ids >= 0
        assert torch.equal(buf.gather(np.flatnonzero(held)), pull(buf.slot_ids[held]))
        assert not np.any(~is_remote(buf.slot_ids[held])), "only remote nodes are buffered"
    assert total_hits > 0 and (total_replace_rows > 0 or capacity == 1)


def test_never_replacing_an_empty_buffer_never_hits():
    engine = BufferEngine(PersistentBuffer(100, DIM), BOUNDS, MY_PART)
    for ids, _ in access_stream(150, seed=1):
        plan = engine.prepare(ids, replace=False)
        assert plan.counts.hits == 0 and plan.counts.comm_rows == plan.counts.remote_inputs
        assert torch.equal(engine.complete(plan, pull(plan.pull_ids)), pull(ids))


def test_without_a_buffer_every_remote_row_is_fetched():
    engine = BufferEngine(None, BOUNDS, MY_PART)
    for ids, replace in access_stream(100, seed=2):
        plan = engine.prepare(ids, replace)
        c = plan.counts
        assert c.comm_rows == c.misses == c.remote_inputs == int(is_remote(ids).sum())
        assert c.hits == c.replace_rows == c.occupancy == c.capacity == 0
        np.testing.assert_array_equal(plan.pull_ids, ids)
        assert torch.equal(engine.complete(plan, pull(plan.pull_ids)), pull(ids))
        assert engine.complete(engine.prepare(ids, replace), None) is None


def test_replacement_serves_later_minibatches_only():
    engine = BufferEngine(PersistentBuffer(10, DIM), BOUNDS, MY_PART)
    ids = np.array([1, 2, 800, 2400])  # 1, 2, 2400 are remote for partition 1
    first = engine.prepare(ids, replace=True)
    assert (first.counts.hits, first.counts.misses, first.counts.replace_rows) == (0, 3, 0)
    assert sorted(first.replacement.insert_ids.tolist()) == [1, 2, 2400]
    engine.complete(first, pull(first.pull_ids))
    second = engine.prepare(ids, replace=False)
    assert (second.counts.hits, second.counts.misses, second.counts.comm_rows) == (3, 0, 0)
    np.testing.assert_array_equal(second.pull_ids, [700, 700, 800, 700])  # hits read partition 1's first id
    assert torch.equal(engine.complete(second, pull(second.pull_ids)), pull(ids))


def test_inserting_earlier_misses_pulls_extra_rows_once():
    engine = BufferEngine(PersistentBuffer(4, DIM), BOUNDS, MY_PART)
    warmup = engine.prepare(np.array([5, 6]), replace=False)
    engine.complete(warmup, pull(warmup.pull_ids))
    plan = engine.prepare(np.array([6, 900, 7]), replace=True)  # 5 was missed before, 6 and 7 now
    assert plan.counts.replace_rows == 1 and plan.counts.comm_rows == 3
    np.testing.assert_array_equal(plan.pull_ids, [6, 900, 7, 5])
    engine.complete(plan, pull(plan.pull_ids))
    assert sorted(engine.buffer.slot_ids[engine.buffer.slot_ids >= 0].tolist()) == [5, 6, 7]


def test_prepare_and_complete_must_alternate():
    engine = BufferEngine(PersistentBuffer(4, DIM), BOUNDS, MY_PART)
    stale = engine.prepare(np.array([5, 6]), replace=True)
    engine.prepare(np.array([7]), replace=False)
    with pytest.raises(RuntimeError, match="stale ReplacementPlan"):
        engine.complete(stale, pull(stale.pull_ids))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        BufferEngine(None, BOUNDS, 4)
    with pytest.raises(ValueError):
        BufferEngine(None, np.array([5, 3]), 0)
    engine = BufferEngine(PersistentBuffer(4, DIM), BOUNDS, MY_PART)
    plan = engine.prepare(np.array([5, 800]), replace=True)
    with pytest.raises(ValueError):
        engine.complete(plan, pull(plan.pull_ids)[:1])
    with pytest.raises(ValueError, match="keeps features"):
        engine.complete(plan, None)


def test_an_empty_minibatch_still_plays_a_round_and_can_replace():
    engine = BufferEngine(PersistentBuffer(4, DIM), BOUNDS, MY_PART)
    first = engine.prepare(np.array([5, 6]), replace=False)
    engine.complete(first, pull(first.pull_ids))
    plan = engine.prepare(np.empty(0, dtype=np.int64), replace=True)
    assert plan.counts.replace_rows == plan.counts.comm_rows == 2
    out = engine.complete(plan, pull(plan.pull_ids))
    assert out.shape == (0, DIM) and engine.buffer.occupancy == 2


def test_the_buffer_package_does_not_import_dgl():
    code = "import sys, rudder_agent.buffer; sys.exit('dgl' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


@pytest.mark.parametrize("policy", ["decay", "lookahead"])
def test_warm_up_compiles_every_kernel_of_a_minibatch_step_before_training(policy):
    """In a fresh process, warm_up leaves no kernel of the step to compile at minibatch 0."""
    import subprocess
    import sys

    script = f"""
import numba
from rudder_agent.buffer import engine, idtable, keep, persistent, candidates
from rudder_agent.settings.keep import keep_policy
engine.warm_up(lambda: keep_policy({policy!r}).build(3), 3)
kernels = {{f"{{m.__name__.rsplit('.', 1)[-1]}}.{{k}}": v for m in (idtable, keep, persistent, candidates) for k, v in vars(m).items()
           if isinstance(v, numba.core.registry.CPUDispatcher)}}
used = {{"decay": ["persistent._score_round", "persistent._replace", "persistent._copy_rows", "idtable._lookup_many"],
        "lookahead": ["keep._access", "keep._enter", "keep._follow", "keep._weak_held", "keep._ranks",
                      "persistent._replace", "persistent._copy_rows", "idtable._lookup_many"]}}[{policy!r}]
print(sorted(k for k in used if not kernels[k].signatures))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
