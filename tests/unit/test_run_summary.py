"""summary.json as a typed record: written in its fixed key order and format, read back from older shapes."""

from __future__ import annotations

import json

from rudder_agent.records.replayed import ReplayBlock
from rudder_agent.records.run_summary import RunSummary, read_summary

KEYS = ["dataset", "parts", "trainers_per_machine", "buffer_scope", "share_cost", "part_method", "epochs", "batch_size", "fanouts", "network", "controller",
        "buffer_fraction", "policy", "window", "minibatches", "input_nodes", "remote_inputs", "remote_share", "hits",
        "hit_pct", "miss_rows", "replace_rows", "warm_rows", "comm_rows", "comm_bytes", "comm_rows_per_epoch",
        "wire_bytes_per_epoch", "link_bytes_per_epoch", "link_rate_bytes_s", "epoch_time_s", "epoch_times_s",
        "agent_wait_s", "window_ids_bytes",
        "keep_ms_median", "val_acc", "test_acc", "majority_test_acc", "capacity", "machines", "decisions", "model_share", "requests",
        "dropped_requests", "unanswered", "agent_cpu_s", "latency_p50_s", "latency_p95_s", "replacement_interval",
        "applied", "verified_rows", "keep_memory_bytes", "agent"]


def written(summary: RunSummary, tmp_path) -> str:
    summary.write(tmp_path)
    return (tmp_path / "summary.json").read_text()


def test_a_live_summary_is_written_in_its_key_order_with_nulls_and_without_a_replay_block(tmp_path):
    text = written(RunSummary(dataset="cora", epochs=2, fanouts=[5, 5], val_acc=None, epoch_time_s=1.5), tmp_path)
    assert list(json.loads(text)) == KEYS
    assert text.startswith('{\n  "dataset": "cora",\n  "parts": null,') and '"fanouts": [\n    5,\n    5\n  ]' in text


def test_what_is_read_is_written_back_byte_for_byte(tmp_path):
    values = {key: None for key in KEYS} | {
        "dataset": "cora", "parts": 2, "fanouts": [10, 25], "controller": "fixed", "buffer_fraction": 0.25,
        "remote_share": 0.5, "hit_pct": 50.0, "comm_rows_per_epoch": 12.0, "epoch_times_s": [2.0, 1.25],
        "capacity": [3, 4], "machines": [], "decisions": {"replace": 1},
        "model_share": {"requests": 5, "asked": 2, "answered": 1, "valid": 1, "decided": {"model": 1}},
        "unanswered": {"timeout": 2}, "applied": {"model:skip": 3}, "agent": {"model": "m", "cot": False},
        "replay": {"of": "runs/a", "mode": "async", "latency_minibatches": 2, "overrides": {"horizon": 3}}}
    original = json.dumps(values, indent=2)
    (tmp_path / "summary.json").write_text(original)
    summary = read_summary(tmp_path)
    assert summary.replay == ReplayBlock(of="runs/a", mode="async", latency_minibatches=2, overrides={"horizon": 3})
    assert written(summary, tmp_path) == original


def test_an_older_summary_reads_with_the_newer_fields_defaulted(tmp_path):
    (tmp_path / "summary.json").write_text('{"epochs": 3, "controller": "none", "hit_pct": 0.0}')
    summary = read_summary(tmp_path)
    assert (summary.epochs, summary.controller, summary.hit_pct) == (3, "none", 0.0)
    assert (summary.keep_memory_bytes, summary.replacement_interval, summary.replay) == (None, None, None)
    assert (summary.applied, summary.agent, summary.capacity) == ({}, {}, [])
    assert read_summary(tmp_path / "killed") is None
