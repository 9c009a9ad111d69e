"""A run directory read as typed records: every kind, older shapes, replays' settings and traces, the decision rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.decisions import applied_outcome, decided
from rudder_agent.records.epoch import roll_up
from rudder_agent.records.run import read_run
from rudder_agent.records.stream import MetricsWriter


def mb(step: int, **fields) -> MinibatchMetrics:
    return MinibatchMetrics(rank=0, epoch=step // 2, step=step, input_nodes=10, remote_inputs=4, hits=1, misses=3,
                            comm_rows=3, comm_bytes=24, **fields)


def make_run(run: Path, summary: dict | None = None) -> Path:
    run.mkdir(parents=True)
    cfg = TrainConfig(dataset="cora", parts=1, part_config=run / "p.json", graph_name="g", out_dir=run,
                      buffer=BufferConfig.from_values({"controller": "llm", "model": "scripted:/a.jsonl"}))
    (run / "config.json").write_text(cfg.model_dump_json())
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_every_kind_is_typed_and_a_torn_last_line_is_left_out(tmp_path):
    run = make_run(tmp_path / "run")
    writer = MetricsWriter(run / "metrics-rank0.jsonl")
    writer.write(mb(1, decision_applied="skip", decision_source="model"), "minibatch")
    writer.write(mb(0), "minibatch")
    writer.write({"rank": 0, "request_step": 0, "first_step": 0, "last_step": 0, "minibatches": 1, "stale": 2,
                  "occupancy": 3, "capacity": 4, "outcome": {"request_step": 0, "decision": "skip"}}, "decision")
    writer.write(roll_up(0, 0, [mb(0), mb(1)], 1.5), "epoch")
    writer.write({"rank": 0, "val_acc": 0.5, "test_acc": 0.25, "majority_test_acc": 0.1}, "eval")
    writer.write({"rank": 0, "step": 1, "horizon": 2, "replace_comm": 1, "skip_comm": 2, "label": "replace"}, "oracle")
    writer.write({"rank": 0, "warm_rows": 1}, "controller")
    writer.write({"rank": 0, "warm_rows": 2}, "controller")
    writer.close()
    with (run / "metrics-rank0.jsonl").open("a") as fh:
        fh.write('{"kind": "minibatch", "rank": 0, "ep')  # a run killed mid-line
    records = read_run(run)
    s = records.streams[0]
    assert [m.step for m in s.minibatches] == [1, 0] and [m.step for m in s.by_step()] == [0, 1]
    assert s.decisions[0].outcome.decision == "skip" and s.decisions[0].capacity == 4
    assert (s.epochs[0].minibatches, s.epochs[0].hits, s.epochs[0].epoch_time_s) == (2, 2, 1.5)
    assert s.evals[0].test_acc == 0.25 and s.labels == {1: "replace"}
    assert s.controller == {"kind": "controller", "rank": 0, "warm_rows": 2} and len(s.controllers) == 2
    assert records.summary is None and records.replay is None


def test_records_of_an_older_shape_take_the_defaults(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "metrics-rank3.jsonl").write_text(
        json.dumps({"kind": "minibatch", "rank": 3, "epoch": 0, "step": 0, "input_nodes": 5, "remote_inputs": 2,
                    "comm_rows": 2, "comm_bytes": 16}) + "\n"
        + json.dumps({"kind": "epoch", "rank": 3, "epoch": 0, "epoch_time_s": 2.0}) + "\n")
    s = read_run(run).streams[3]
    assert (s.minibatches[0].t_keep, s.minibatches[0].decision_applied, s.minibatches[0].capacity) == (0.0, None, 0)
    assert (s.epochs[0].minibatches, s.epochs[0].mean_loss, s.epochs[0].wire_rx_bytes) == (0, None, None)


def test_the_epoch_record_is_written_in_its_historical_field_order():
    record = roll_up(0, 1, [mb(2, loss=1.0), mb(3)], 0.5, wire_rx_bytes=7)
    assert list(record.model_dump()) == ["rank", "epoch", "minibatches", "epoch_time_s", "remote_inputs", "comm_rows",
                                         "comm_bytes", "hits", "mean_loss", "wire_rx_bytes", "wire_tx_bytes"]
    assert (record.comm_rows, record.mean_loss, record.wire_rx_bytes) == (6, 1.0, 7)
    assert roll_up(0, 1, [mb(2)], 0.5).mean_loss is None


def test_a_replay_runs_with_its_overrides_older_names_included(tmp_path):
    live = make_run(tmp_path / "live")
    assert read_run(live).settings().controller.model == "scripted:/a.jsonl"
    replayed = make_run(tmp_path / "replay", {"replay": {"of": str(live), "overrides": {
        "llm_model": "scripted:/b.jsonl", "horizon": 3, "cot": True}}})
    records = read_run(replayed)
    settings = records.settings()
    assert (settings.controller.model, settings.controller.cot) == ("scripted:/b.jsonl", True)  # llm_model: older
    assert records.replay.overrides["horizon"] == 3 and records.replay.mode is None
    assert read_run(live).replay is None


def test_a_replay_finds_the_trace_of_the_run_it_replayed(tmp_path):
    live = make_run(tmp_path / "live")
    replayed = make_run(tmp_path / "replay", {"replay": {"of": str(live)}})
    assert read_run(replayed).trace_dir() is None
    (live / "trace-rank1.json").write_text("{}")
    assert read_run(replayed).trace_dir() == live and read_run(live).trace_dir(1) == live
    assert read_run(replayed).trace_dir(0) is None
    (replayed / "trace-rank1.json").write_text("{}")
    assert read_run(replayed).trace_dir(1) == replayed


@pytest.mark.parametrize(("fields", "is_decision"), [
    ({}, False), ({"decision_applied": "skip"}, True),
    ({"decision_applied": "replace", "decision_source": "model"}, True),
    ({"decision_applied": "replace", "decision_source": "idle"}, False)])
def test_an_idle_replacement_is_applied_but_nobodys_decision(fields, is_decision):
    m = mb(0, **fields)
    assert decided(m) is is_decision
    assert (applied_outcome(m, 0) is None) is ("decision_applied" not in fields)


def test_the_applied_outcome_reads_missing_fields_as_a_valid_rule_answer():
    outcome = applied_outcome(mb(4, decision_applied="skip"), 3)
    assert (outcome.request_step, outcome.decision, outcome.source, outcome.valid) == (3, "skip", "rule", True)
    assert applied_outcome(mb(4, decision_applied="skip", decision_valid=False), 3).valid is False
    full = applied_outcome(mb(4, decision_applied="replace", decision_source="model", expected_hits="increase"), 4)
    assert (full.source, full.expected_hits, full.reason) == ("model", "increase", "recorded")
