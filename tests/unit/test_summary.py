"""summary.json's epoch time, the figure behind every speed-up we report: per epoch the slowest trainer's time,
then the median over the epochs after the first (the first pays start-up: imports, JIT, warm caches)."""

from __future__ import annotations

import json
from pathlib import Path

from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.records.summary import write_summary

EPOCH_TIMES = {0: [10.0, 2.0, 3.0, 20.0], 1: [1.0, 7.0, 1.0, 1.0]}
"""Seconds per epoch of each trainer. Slowest per epoch: 10, 7, 3, 20; its median after the first is 7.
Each wrong rule gives another figure: the mean after the first 10, the median with the first 8.5,
the fastest trainer 1, trainer 0 alone 3, the median of all eight values 2.5."""


def write_run(run: Path, epoch_times: dict[int, list[float]]) -> dict:
    run.mkdir()
    cfg = TrainConfig(dataset="cora", parts=len(epoch_times), part_config=run / "p.json", graph_name="g",
                      out_dir=run, buffer=BufferConfig.from_values({"controller": "none"}))
    (run / "config.json").write_text(cfg.model_dump_json())
    for rank, times in epoch_times.items():
        writer = MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        for epoch, seconds in enumerate(times):
            writer.write(MinibatchMetrics(rank=rank, epoch=epoch, step=epoch, input_nodes=10, remote_inputs=4,
                                          misses=4, comm_rows=4, comm_bytes=32), "minibatch")
            writer.write({"rank": rank, "epoch": epoch, "epoch_time_s": seconds}, "epoch")
        writer.close()
    write_summary(run)
    return json.loads((run / "summary.json").read_text())


def test_epoch_time_is_the_median_after_the_first_of_the_slowest_trainer(tmp_path: Path) -> None:
    s = write_run(tmp_path / "run", EPOCH_TIMES)
    assert s["epoch_times_s"] == [10.0, 7.0, 3.0, 20.0]
    assert s["epoch_time_s"] == 7.0


def test_a_single_epoch_is_its_own_time(tmp_path: Path) -> None:
    s = write_run(tmp_path / "run", {0: [4.0], 1: [5.0]})
    assert (s["epoch_times_s"], s["epoch_time_s"]) == ([5.0], 5.0)


def test_trainers_are_pooled_in_the_order_of_their_file_names(tmp_path: Path) -> None:
    """The pooling order fixes float sums and which trainer's agent record is shown: rank 10 comes before rank 2."""
    run = tmp_path / "run"
    write_run(run, {2: [1.0], 10: [1.0]})
    for rank in (2, 10):
        writer = MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        writer.write({"rank": rank, "capacity": rank, "agent": {"rank": rank}}, "controller")
        writer.close()
    s = write_summary(run)
    assert s.agent == {"rank": 10} and s.capacity == [2, 10]


def test_machine_totals_sum_each_machines_consecutive_ranks_with_their_warm_rows(tmp_path: Path) -> None:
    """Two machines of two trainers: ranks 0,1 are machine 0 and ranks 2,3 machine 1, as the launcher starts them."""
    run = tmp_path / "run"
    run.mkdir()
    cfg = TrainConfig(dataset="cora", parts=2, trainers_per_machine=2, part_config=run / "p.json", graph_name="g",
                      out_dir=run, buffer=BufferConfig.from_values({"controller": "fixed"}))
    (run / "config.json").write_text(cfg.model_dump_json())
    for rank in range(4):
        writer = MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        for epoch in range(2):
            writer.write(MinibatchMetrics(rank=rank, epoch=epoch, step=epoch, input_nodes=10, remote_inputs=4 + rank,
                                          hits=rank, misses=4, comm_rows=4 + 10 * rank, comm_bytes=32), "minibatch")
            writer.write({"rank": rank, "epoch": epoch, "epoch_time_s": 1.0}, "epoch")
        writer.write({"rank": rank, "capacity": 5, "warm_rows": 100 * rank}, "controller")
        writer.close()
    s = write_summary(run)
    assert [(m.machine, m.ranks) for m in s.machines] == [(0, [0, 1]), (1, [2, 3])]
    assert [m.comm_rows for m in s.machines] == [2 * (4 + 14) + 100, 2 * (24 + 34) + 500]
    assert [m.hits for m in s.machines] == [2 * 1, 2 * 5]
    assert [m.comm_rows_per_epoch for m in s.machines] == [68.0, 308.0]
    assert sum(m.comm_rows for m in s.machines) == s.comm_rows


def test_a_machines_link_is_counted_once_however_many_trainers_read_it(tmp_path: Path) -> None:
    """Both trainers of a machine read the same link counter (at their own epoch ends): once per machine."""
    run = tmp_path / "run"
    run.mkdir()
    cfg = TrainConfig(dataset="cora", parts=2, trainers_per_machine=2, part_config=run / "p.json", graph_name="g",
                      out_dir=run, network="netns", buffer=BufferConfig.from_values({"controller": "none"}))
    (run / "config.json").write_text(cfg.model_dump_json())
    for rank, wire in enumerate([1000, 1010, 500, 490]):
        writer = MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        writer.write(MinibatchMetrics(rank=rank, epoch=0, step=0, input_nodes=10, remote_inputs=4, misses=4,
                                      comm_rows=4, comm_bytes=32), "minibatch")
        writer.write({"rank": rank, "epoch": 0, "epoch_time_s": 1.0, "wire_rx_bytes": wire}, "epoch")
        writer.close()
    assert write_summary(run).wire_bytes_per_epoch == 1010 + 500
