"""The stage timers (rudder_agent/stages.py, the pull timer of rudder_agent/step.py): what each one includes.

The all-reduce wait is checked under DDP itself: one gloo process group of one trainer, whose gradient all-reduce
is made slow by a communication hook that completes each bucket's future only after DELAY seconds.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.persistent import PersistentBuffer
from rudder_agent.link_gate import LinkGate
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.stages import TrainStages, wall
from rudder_agent.step import MinibatchStep

DELAY = 0.3
COMPUTE = 0.1


def blank(step: int = 0) -> MinibatchMetrics:
    return MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=1, remote_inputs=0, comm_rows=0, comm_bytes=0)


def slowly(items, seconds: float):
    """The items, each after ``seconds`` (a prefetcher that is behind)."""
    for item in items:
        time.sleep(seconds)
        yield item


@pytest.fixture(scope="module")
def ddp_group(tmp_path_factory):
    """A gloo process group of one trainer (the DDP the built-in trainer runs, without the other trainers)."""
    store = tmp_path_factory.mktemp("gloo") / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


class SlowGradient(torch.autograd.Function):
    """The identity, whose backward takes COMPUTE seconds (a backward computation long enough to measure)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        time.sleep(COMPUTE)
        return grad


class Slow(torch.nn.Module):
    def forward(self, x):
        return SlowGradient.apply(x)


def model(slow_backward: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = [torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)]
    return torch.nn.Sequential(*layers, *([Slow()] if slow_backward else []))


def late_allreduce(state, bucket):  # no annotations: DDP checks them, and this module's are strings
    """A communication hook whose all-reduce (of one trainer: the identity) completes DELAY seconds after launch."""
    fut: torch.futures.Future = torch.futures.Future()
    buffer = bucket.buffer()
    threading.Timer(DELAY, fut.set_result, args=(buffer,)).start()
    return fut


def train(net: torch.nn.Module, minibatches, stages: TrainStages, gate: LinkGate | None = None) -> list[MinibatchMetrics]:
    """The built-in trainer's loop (rudder_agent/cluster/trainer.py) over (x, y, metrics) minibatches."""
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    out = []
    for x, y, metrics in stages.timed(minibatches):
        with stages.forward():
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
        with stages.backward(loss, gate=gate):
            loss.backward()
        with stages.optimizer():
            optimizer.step()
        metrics.loss = float(loss)
        stages.record(metrics)
        out.append(metrics)
    return out


def batches(n: int):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 16, generator=g), torch.randint(0, 4, (8,), generator=g), blank(i)) for i in range(n)]


def assert_contiguous(m: MinibatchMetrics) -> None:
    """The training stages lie end to end within t_train; the stamps are t_train apart."""
    stages = m.t_forward + m.t_backward + m.t_allreduce_wait + m.t_optimizer
    assert 0 < stages <= m.t_train and m.t_train - stages < 0.1
    assert m.ts_train_end - m.ts_train_start == pytest.approx(m.t_train, abs=1e-5)
    assert min(m.t_forward, m.t_backward, m.t_optimizer) > 0 and m.t_allreduce_wait >= 0


def test_the_wait_for_a_late_minibatch_is_timed():
    stages = TrainStages()
    before = time.time()
    out = train(model(), slowly(batches(3), 0.1), stages)
    for m in out:
        assert 0.1 <= m.t_batch_wait < 1.0
        assert_contiguous(m)
        assert m.t_allreduce_wait < 0.1  # no DDP: nothing to wait for but the end of backward
    assert before + 0.1 < out[0].ts_train_start < out[0].ts_train_end <= out[1].ts_train_start - 0.1
    assert out[-1].ts_train_end <= time.time()


def test_the_wait_for_the_gradient_allreduce_is_split_off_backward(ddp_group):
    """Under DDP the wait for an all-reduce still running when backward's computation ends is t_allreduce_wait,
    the computation before it t_backward; with DDP's own all-reduce (one trainer) there is almost no wait."""
    slow = DistributedDataParallel(model(slow_backward=True))
    slow.register_comm_hook(None, late_allreduce)
    for m in train(slow, batches(3), TrainStages()):
        # the gradients are computed after COMPUTE, then their one bucket's all-reduce takes DELAY (upper bounds
        # loose: a busy machine stretches both)
        assert COMPUTE <= m.t_backward < m.t_allreduce_wait
        assert DELAY * 0.8 <= m.t_allreduce_wait < DELAY + 1.0
        assert_contiguous(m)
    for m in train(DistributedDataParallel(model()), batches(3), TrainStages()):
        assert m.t_allreduce_wait < DELAY * 0.5
        assert_contiguous(m)


def test_the_link_gate_is_closed_while_the_allreduce_is_in_flight_and_open_otherwise(ddp_group):
    """Pulls wait at the gate from the end of backward's computation to the end of DDP's wait (link_gate.py)."""
    gate, at_completion = LinkGate(), []

    def watched_allreduce(state, bucket):
        fut: torch.futures.Future = torch.futures.Future()

        def complete():
            at_completion.append(gate._open.is_set())
            fut.set_result(bucket.buffer())

        threading.Timer(DELAY, complete).start()
        return fut

    net = DistributedDataParallel(model())
    net.register_comm_hook(None, watched_allreduce)
    train(net, batches(3), TrainStages(), gate)
    assert at_completion == [False] * 3 and gate._open.is_set()


def test_the_timers_change_nothing_trained(ddp_group):
    """The same losses and weights with the timers as without (the hooks only read the clock)."""
    def plain(net, minibatches):
        optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
        losses = []
        for x, y, _ in minibatches:
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        return losses

    a, b = DistributedDataParallel(model()), DistributedDataParallel(model())
    assert [m.loss for m in train(a, batches(4), TrainStages())] == plain(b, batches(4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_wall_stamps_follow_the_wall_clock():
    assert abs(wall(time.perf_counter()) - time.time()) < 0.01


def test_the_pull_is_timed_inside_the_fetch():
    """t_pull is the one read of the rows the buffer does not serve; t_fetch holds it."""
    engine = BufferEngine(PersistentBuffer(4, 2), np.array([10, 20]), 0)
    table = torch.arange(40, dtype=torch.float32).reshape(20, 2)

    def read(ids: np.ndarray) -> torch.Tensor:
        time.sleep(0.05)
        return table[torch.from_numpy(ids)]

    step = MinibatchStep(engine, None, rank=0, row_bytes=8)
    x, m = step(np.array([1, 12, 15]), read, epoch=0, step=0)
    assert torch.equal(x, table[[1, 12, 15]])
    assert 0.05 <= m.t_pull <= m.t_fetch
    untimed = MinibatchStep(BufferEngine(PersistentBuffer(4, 2), np.array([10, 20]), 0), None, rank=0, row_bytes=8,
                            timed=False)
    assert untimed(np.array([1, 12]), read, epoch=0, step=0)[1].t_pull == 0.0
