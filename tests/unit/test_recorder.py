"""An attached trainer under `rudder train` records what the built-in trainer records: each minibatch (with the
loss the loop sets on it), the controller's decisions, each epoch, the controller's summary, the trace; the run's
summary is computed from them. BufferedFeatures runs over the in-memory stand-in of test_verify.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rudder_agent.attach import BufferedFeatures
from rudder_agent.config import TrainConfig
from rudder_agent.paths import RUN_CONFIG_ENV
from rudder_agent.records.stream import read_jsonl
from rudder_agent.records.summary import summarize
from rudder_agent.records.trace import read_trace, read_trace_meta
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.controllers import FixedSettings
from rudder_agent.settings.keep import Lfu
from tests.unit.test_verify import FakeDistGraph

MINIBATCHES = [[0, 1, 20, 21], [2, 21, 22], [20, 22, 23]]  # (partition 0 owns 0..19)


@pytest.fixture
def run(monkeypatch, tmp_path: Path) -> TrainConfig:
    cfg = TrainConfig(out_dir=tmp_path, part_config=tmp_path / "g.json", graph_name="g", parts=1, trace=True,
                      buffer=BufferConfig(controller=FixedSettings(), policy=Lfu(), fraction=0.5))
    (tmp_path / "config.json").write_text(cfg.model_dump_json())
    monkeypatch.setenv(RUN_CONFIG_ENV, str(tmp_path / "config.json"))
    monkeypatch.setenv("RANK", "0")
    return cfg


def loader(batches):
    return [(torch.tensor(ids), torch.tensor(ids[:1]), ["blocks"]) for ids in batches]


def test_a_loop_over_iterate_is_recorded_epoch_by_epoch(run: TrainConfig) -> None:
    features = BufferedFeatures(FakeDistGraph(), total_minibatches=6)
    for epoch in range(2):
        for i, (input_nodes, seeds, blocks, x, m) in enumerate(features.iterate(loader(MINIBATCHES), epoch)):
            m.loss = 10.0 * epoch + i  # set by the loop after the fetch: recorded all the same
    features.close()
    stream = run.out_dir / "metrics-rank0.jsonl"
    rows = read_jsonl(stream, kind="minibatch")
    assert [(r["epoch"], r["step"], r["loss"]) for r in rows] == [(e, 3 * e + i, 10.0 * e + i)
                                                               for e in range(2) for i in range(3)]
    assert all(r["t_train"] >= 0 and r["t_sample"] >= 0 for r in rows)
    epochs = read_jsonl(stream, kind="epoch")
    assert [(e["epoch"], e["minibatches"], e["comm_rows"]) for e in epochs] == [
        (e, 3, sum(r["comm_rows"] for r in rows if r["epoch"] == e)) for e in range(2)]
    (controller,) = read_jsonl(stream, kind="controller")
    assert (controller["controller"], controller["rank"], controller["requests"]) == ("fixed", 0, 6)
    # the trace and its meta, as a replay reads them
    assert [sorted(ids.tolist()) for _, ids in read_trace(run.out_dir / "trace-rank0.rtf")] == MINIBATCHES * 2
    assert read_trace_meta(run.out_dir / "trace-rank0.json").minibatches_per_epoch == 3
    s = summarize(run.out_dir)
    assert (s.minibatches, s.epochs, s.controller, s.hits) == (6, 2, "fixed", sum(r["hits"] for r in rows))


def test_fetch_alone_is_recorded_too_the_last_minibatch_and_epoch_at_close(run: TrainConfig) -> None:
    features = BufferedFeatures(FakeDistGraph(), total_minibatches=3)
    for ids in MINIBATCHES:
        features.fetch(torch.tensor(ids), epoch=4)
    stream = run.out_dir / "metrics-rank0.jsonl"
    assert len(read_jsonl(stream, kind="minibatch")) == 2  # the last one waits for its loss
    features.close()
    assert len(read_jsonl(stream, kind="minibatch")) == 3
    assert [(e["epoch"], e["minibatches"]) for e in read_jsonl(stream, kind="epoch")] == [(4, 3)]


def test_the_built_in_trainers_features_record_nothing_themselves(run: TrainConfig) -> None:
    features = BufferedFeatures(FakeDistGraph(), run.buffer, total_minibatches=3, record=False)
    features.fetch(torch.tensor(MINIBATCHES[0]))
    features.close()
    assert not (run.out_dir / "metrics-rank0.jsonl").exists()
