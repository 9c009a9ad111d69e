"""Replay of hand-made recorded runs (no DistDGL): counts, decision clock, recorded decisions, warm start."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.controllers.base import Controller
from rudder_agent.decision import DecisionOutcome, DecisionRequest, StaticFacts
from rudder_agent.errors import RudderError
from rudder_agent.records.replayed import ReplayBlock
from rudder_agent.records.run_summary import read_summary
from rudder_agent.records.stream import MetricsWriter, read_jsonl
from rudder_agent.records.trace import TraceMeta, TraceWriter, write_trace_meta
from rudder_agent.replay.recording import load_recording
from rudder_agent.replay.simulator import replay_run

BOUNDS = [100, 200]  # rank 0 owns ids 0..99; 100..199 are remote


def make_run(run: Path, inputs: list[list[int]], controller: str = "fixed", halo: int = 8, per_epoch: int = 2,
             warm_ids: tuple[int, ...] = (), rows: list[tuple[dict, str]] = (), policy: str = "decay") -> Path:
    """A recorded run directory as `rudder train --trace` leaves it, for rank 0 (hand-derived cases: decay)."""
    run.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(dataset="synthetic:200", parts=2, part_config=run / "p.json", graph_name="g", out_dir=run,
                      epochs=-(-len(inputs) // per_epoch),
                      buffer=BufferConfig.from_values({"controller": controller, "period": 2, "policy": policy}))
    capacity = math.ceil(cfg.buffer.fraction * halo) if controller != "none" else 0
    facts = StaticFacts(dataset=cfg.dataset, num_nodes=200, num_edges=1000, num_parts=2, partition=0, local_nodes=100,
                        halo_nodes=halo, capacity=capacity, total_minibatches=len(inputs), feature_dim=4)
    write_trace_meta(run / "trace-rank0.json", TraceMeta(
        rank=0, partition=0, part_bounds=BOUNDS, capacity=capacity, halo_nodes=halo, feature_dim=4, row_bytes=16,
        minibatches_per_epoch=per_epoch, facts=facts, config=cfg, warm_ids=list(warm_ids)))
    (run / "config.json").write_text(cfg.model_dump_json())
    writer = TraceWriter(run / "trace-rank0.rtf")
    for step, ids in enumerate(inputs):
        writer.write(step, np.array(ids, dtype=np.int64))
    writer.close()
    metrics = MetricsWriter(run / "metrics-rank0.jsonl")
    for record, kind in rows:
        metrics.write(record, kind)
    metrics.close()
    return run


def minibatches(out: Path) -> list[dict]:
    return read_jsonl(out / "metrics-rank0.jsonl", kind="minibatch")


def random_inputs(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(200, size=40, replace=False).tolist()) for _ in range(n)]


class Scripted(Controller):
    """A threaded-kind controller (not inline) that always replaces and remembers what it was shown."""

    name = "scripted"

    def __init__(self):
        self.windows: list[list[int]] = []

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        self.windows.append([m.step for m in request.window])
        return DecisionOutcome(request_step=request.step, decision="replace")


HAND = [[1, 100, 101], [2, 100, 101], [100, 102]]  # capacity ceil(0.25 x 8) = 2


def test_none_fetches_every_remote_row(tmp_path):
    inputs = random_inputs(6)
    run = make_run(tmp_path / "run", inputs)
    summary = replay_run(run, 0, "none", out_dir=tmp_path / "out", progress=False)
    rows = minibatches(tmp_path / "out")
    remote = [sum(i >= BOUNDS[0] for i in ids) for ids in inputs]  # ids rank 0 does not own
    assert [m["remote_inputs"] for m in rows] == remote and min(remote) > 0
    assert all(m["comm_rows"] == m["misses"] == m["remote_inputs"] and m["hits"] == 0 for m in rows)
    assert all(not m["decision_requested"] and m["decision_applied"] is None for m in rows)
    assert summary.comm_rows == summary.remote_inputs and summary.buffer_fraction == 0.0


def test_fixed_on_a_hand_stream(tmp_path):
    run = make_run(tmp_path / "run", HAND)
    summary = replay_run(run, 0, "fixed", out_dir=tmp_path / "out", progress=False)
    rows = minibatches(tmp_path / "out")
    # t0: 100,101 miss and are inserted (no extra rows); t1: both hit; t2: 100 hits, 102 misses
    assert [m["hits"] for m in rows] == [0, 2, 1]
    assert [m["comm_rows"] for m in rows] == [2, 0, 1]
    assert [m["replace_rows"] for m in rows] == [0, 0, 0]
    assert [m["occupancy"] for m in rows] == [0, 2, 2]
    assert [m["decision_applied"] for m in rows] == ["replace"] * 3
    assert [m["epoch"] for m in rows] == [0, 0, 1]
    assert summary.controller == "fixed" and summary.epochs == 2
    assert summary.comm_rows == 3 and summary.hit_pct == 50.0
    assert summary.replay == ReplayBlock(of=str(run), mode="inline")
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary.model_dump()


def test_async_answers_arrive_after_the_latency_and_busy_requests_are_carried(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(10))
    ctl = Scripted()
    summary = replay_run(run, 0, ctl, mode="async", latency_minibatches=3, out_dir=tmp_path / "out", progress=False)
    applied = [m["step"] for m in minibatches(tmp_path / "out") if m["decision_applied"]]
    assert applied == [3, 6, 9]
    assert ctl.windows == [[0], [1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert summary.requests == 10 and summary.dropped_requests == 6
    assert summary.replay.latency_minibatches == 3 and summary.replay.mode == "async"


def test_sync_applies_the_previous_minibatchs_answer(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(10))
    ctl = Scripted()
    summary = replay_run(run, 0, ctl, mode="sync", latency_minibatches=5, out_dir=tmp_path / "out", progress=False)
    assert [m["decision_applied"] for m in minibatches(tmp_path / "out")] == [None] + ["replace"] * 9
    assert ctl.windows == [[s] for s in range(10)]
    assert summary.dropped_requests == 0 and summary.replay.latency_minibatches == 1


def test_recorded_decisions_reproduce_a_run(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(12, seed=3))
    replay_run(run, 0, Scripted(), mode="async", latency_minibatches=2, out_dir=tmp_path / "live", progress=False)
    shutil.copy(tmp_path / "live" / "metrics-rank0.jsonl", run / "metrics-rank0.jsonl")  # as if recorded live
    summary = replay_run(run, 0, "recorded", out_dir=tmp_path / "again", progress=False)
    live, again = minibatches(tmp_path / "live"), minibatches(tmp_path / "again")
    keys = ("hits", "misses", "replace_rows", "comm_rows", "stale", "occupancy", "decision_applied")
    assert [[m[k] for k in keys] for m in again] == [[m[k] for k in keys] for m in live]
    assert any(m["decision_applied"] is None for m in live)
    assert summary.requests == 12 and summary.replay.mode == "recorded"


def test_recorded_needs_the_metric_stream(tmp_path):
    run = make_run(tmp_path / "run", HAND)
    with pytest.raises(RudderError, match="no recorded metrics"):
        replay_run(run, 0, "recorded", out_dir=tmp_path / "out", progress=False)


def test_measured_latency_is_controller_latency_over_minibatch_time(tmp_path):
    rows = [({"rank": 0, "epoch": s // 5, "step": s, "input_nodes": 1, "remote_inputs": 0, "comm_rows": 0,
              "comm_bytes": 0}, "minibatch") for s in range(10)]
    rows += [({"rank": 0, "epoch": e, "epoch_time_s": 0.5}, "epoch") for e in (0, 1)]
    rows += [({"rank": 0, "latencies_s": [0.2, 0.25, 0.3]}, "controller")]
    run = make_run(tmp_path / "run", random_inputs(10), rows=rows)
    assert load_recording(run, 0).latency_minibatches() == 3  # 0.25 s / 0.1 s per minibatch, rounded up


def test_massivegnn_warm_start_uses_the_recorded_ids_and_counts_them(tmp_path):
    run = make_run(tmp_path / "run", HAND, controller="massivegnn", warm_ids=(100, 101))
    summary = replay_run(run, 0, "massivegnn", out_dir=tmp_path / "out", progress=False)
    rows = minibatches(tmp_path / "out")
    assert rows[0]["hits"] == 2 and rows[0]["occupancy"] == 2
    assert summary.warm_rows == 2 and summary.comm_rows == sum(m["comm_rows"] for m in rows) + 2


def test_warm_start_without_recorded_ids_is_refused(tmp_path):
    run = make_run(tmp_path / "run", HAND, controller="fixed")
    with pytest.raises(RudderError, match="warm-start ids"):
        replay_run(run, 0, "massivegnn", out_dir=tmp_path / "out", progress=False)


def test_oracle_labels_and_a_second_replay_replaces_the_first(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(5))
    for _ in range(2):
        replay_run(run, 0, "fixed", out_dir=tmp_path / "out", label_horizon=2, progress=False)
    labels = read_jsonl(tmp_path / "out" / "metrics-rank0.jsonl", kind="oracle")
    assert [x["step"] for x in labels] == list(range(5)) and len(minibatches(tmp_path / "out")) == 5
    assert all(x["label"] in ("replace", "skip") and x["horizon"] == 2 for x in labels)


def test_fraction_override_resizes_the_buffer(tmp_path):
    run = make_run(tmp_path / "run", HAND, halo=8)
    summary = replay_run(run, 0, "fixed", out_dir=tmp_path / "out", fraction=0.125, progress=False)
    assert summary.capacity == [1] and summary.buffer_fraction == 0.125


SKIP_ANSWER = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "steady"}
REPLACE_ANSWER = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "stale entries"}


def test_replay_cli_passes_llm_threads_and_timeout_to_the_agent(tmp_path):
    from typer.testing import CliRunner

    from rudder_agent.cli import app

    # tau 0.99: an entry is stale after one idle minibatch, so after the guard has filled the buffer
    # (steps 0 and 1) the model decides every request; the last request's answer is never applied
    run = make_run(tmp_path / "run", random_inputs(8))
    answers = tmp_path / "answers.jsonl"
    answers.write_text(f"{json.dumps(SKIP_ANSWER)}\n{json.dumps(REPLACE_ANSWER)}\n")
    result = CliRunner().invoke(app, ["replay", str(run), "--controller", "llm", "--model", f"scripted:{answers}",
                                      "--llm-threads", "3", "--llm-timeout", "5", "--latency", "1", "--tau", "0.99",
                                      "--llm-min-difference", "0",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path / "out")
    assert summary.replay.overrides["n_threads"] == 3
    assert summary.replay.overrides["timeout_s"] == 5.0
    # every model answer is valid under the current schema (answers with old keys all count as invalid)
    # the opening fill, then the model for every request (each with a what-if; the last answer is never applied)
    assert summary.decisions == {"replace": 4, "skip": 4, "invalid": 0, "guarded": 1, "no-difference": 0}
    assert [(m["decision_source"], m["decision_applied"], m["decision_valid"], m["expected_hits"])
            for m in minibatches(tmp_path / "out")] == [
        ("guard", "replace", True, None), ("model", "skip", True, "unchanged"),
        ("model", "replace", True, "increase"), ("model", "skip", True, "unchanged"),
        ("model", "replace", True, "increase"), ("model", "skip", True, "unchanged"),
        ("model", "replace", True, "increase"), ("model", "skip", True, "unchanged")]
    bad = CliRunner().invoke(app, ["replay", str(run), "--llm-threads", "0", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_replay_cli_llm_timeout_reaches_the_http_client(tmp_path):
    """`--llm-timeout` bounds each call of the real HTTP client: a server that never answers costs
    0.5 s per attempt, and each model decision becomes a counted fallback."""
    from typer.testing import CliRunner

    from rudder_agent.cli import app
    from tests.loopback import OPENAI_MODELS, bounded, loopback_server, misbehaving

    run = make_run(tmp_path / "run", random_inputs(5))
    handler = misbehaving(OPENAI_MODELS, on_post="hang")
    with loopback_server(handler) as url:
        result = bounded(lambda: CliRunner().invoke(
            app, ["replay", str(run), "--controller", "llm", "--model", f"openai:m@{url}/v1", "--llm-timeout", "0.5",
                  "--latency", "1", "--tau", "0.99", "--llm-min-difference", "0", "--out", str(tmp_path / "out")]), 60)
        assert result.exit_code == 0, result.output
        summary = read_summary(tmp_path / "out")
        model_calls = summary.decisions["invalid"]
        for k in range(2 * (1 + model_calls)):  # warm-up and each call: one attempt and one retry
            assert handler.arrived.acquire(timeout=30), f"only {k} requests reached the server"
        posts = len(handler.bodies)
    # 5 requests and the opening fill; every request goes to the model (each with a what-if)
    assert summary.decisions == {"replace": 0, "skip": 0, "invalid": model_calls, "guarded": 6 - model_calls,
                                 "no-difference": 0}
    assert model_calls == 5
    assert posts == 2 * (1 + model_calls)
    rows = minibatches(tmp_path / "out")
    assert [m["decision_source"] for m in rows] == ["guard", "fallback", "fallback", "fallback", "fallback"]
    assert all(m["decision_valid"] is False for m in rows[1:])


class GuardThenModel(Scripted):
    """Answers from the guard (no model call) at even steps and from the model at odd ones."""

    def decide(self, request: DecisionRequest) -> DecisionOutcome:
        self.windows.append([m.step for m in request.window])
        source = "guard" if request.step % 2 == 0 else "model"
        return DecisionOutcome(request_step=request.step, decision="replace", source=source)


def test_async_replay_applies_guard_answers_at_once_and_model_answers_after_the_latency(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(10))
    replay_run(run, 0, GuardThenModel(), mode="async", latency_minibatches=3, out_dir=tmp_path / "out",
               progress=False)
    applied = [(m["step"], m["decision_source"]) for m in minibatches(tmp_path / "out") if m["decision_applied"]]
    # step 0: guard answer -> applied at 1; step 1: model answer -> applied at 4; step 4: guard -> 5; ...
    assert applied[:3] == [(1, "guard"), (4, "model"), (5, "guard")]


def test_scoring_policy_overrides_change_what_the_buffer_keeps(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(12, seed=5), halo=40)
    default = replay_run(run, 0, "fixed", out_dir=tmp_path / "default", progress=False)
    again = replay_run(run, 0, "fixed", out_dir=tmp_path / "again", progress=False, gamma=0.95)
    assert again.comm_rows == default.comm_rows  # the recorded policy (gamma 0.95, tau gamma**25)
    short = replay_run(run, 0, "fixed", out_dir=tmp_path / "short", progress=False, gamma=0.5, tau=0.5)
    stale = [m["stale"] for m in minibatches(tmp_path / "short")]
    assert stale != [m["stale"] for m in minibatches(tmp_path / "default")]
    assert short.replay.overrides == {"gamma": 0.5, "tau": 0.5}
    oracle = replay_run(run, 0, "oracle", out_dir=tmp_path / "oracle", progress=False, gamma=0.5, tau=0.5)
    assert oracle.controller == "oracle"


@pytest.mark.parametrize("window", [1, 3])
def test_a_lookahead_replay_sees_w_minibatches_ahead_and_never_past_the_epoch(tmp_path, window):
    from tests.unit.test_keep import model  # the plain-Python policy (ids >= 100 remote there too)

    inputs = random_inputs(12, seed=3)
    run = make_run(tmp_path / "run", inputs, halo=40, per_epoch=4, policy="lookahead")
    replay_run(run, 0, "fixed", out_dir=tmp_path / "out", progress=False, lookahead=window)
    got = [(m["hits"], m["comm_rows"]) for m in minibatches(tmp_path / "out")]
    capacity = math.ceil(0.25 * 40)
    assert got == model(inputs, capacity, window, epoch_length=4)
    assert got != model(inputs, capacity, window)  # a window crossing epochs would keep something else here
