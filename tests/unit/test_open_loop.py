"""Open-loop replay of a recorded metric stream (`rudder replay-metrics`), on hand-made runs without a trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rudder_agent.cli import app
from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.decision import DecisionOutcome, DecisionRecord, WhatIf
from rudder_agent.errors import InputError
from rudder_agent.llm.backends import ScriptedBackend
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.replay.open_loop import open_loop
from rudder_agent.replay.open_loop.facts import run_facts
from rudder_agent.replay.open_loop.scoring import summarize_rows
from rudder_agent.replay.open_loop.stream import load_stream
from rudder_agent.replay.open_loop.windows import rebuild_windows, windows_from_minibatches

REPLACE = {"decision": "replace", "hits": "increase", "comm": "increase", "reason": "stale rows to refresh"}
SKIP = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "steady"}
CAPACITY = 50
WHATIF = WhatIf(source="window", minibatches=8, remote_inputs=4321, replace_rows=1234, skip_rows=2345,
                replace_hits=3087, skip_hits=1976)
"""Replace fetches 1,111 fewer rows: far above the 1% no-difference threshold, so the model is asked."""


def minibatch(step: int, hits: int = 40, applied: str | None = None, source: str | None = None,
              expected: str | None = None, stale: int = 10) -> dict:
    """A full buffer with stale slots: the guard lets the model decide."""
    return MinibatchMetrics(rank=0, epoch=step // 10, step=step, input_nodes=300, remote_inputs=100, hits=hits,
                            misses=100 - hits, comm_rows=100 - hits, comm_bytes=16 * (100 - hits), stale=stale,
                            occupancy=CAPACITY, capacity=CAPACITY, decision_requested=True,
                            decision_applied=applied, decision_source=source,
                            decision_valid=None if applied is None else source != "fallback",
                            expected_hits=expected, expected_comm=expected).model_dump()


def decision(request_step: int, first: int, decision_: str, source: str, whatif: WhatIf | None = None,
             stale: int = 10) -> dict:
    return DecisionRecord(rank=0, request_step=request_step, first_step=first, last_step=request_step,
                          minibatches=request_step - first + 1, stale=stale, occupancy=CAPACITY, capacity=CAPACITY,
                          outcome=DecisionOutcome(request_step=request_step, decision=decision_, source=source,
                                                  valid=source != "fallback", whatif=whatif)).model_dump()


def stream_rows() -> list[tuple[dict, str]]:
    """20 minibatches (2 epochs of 10), four answered requests; the run writes decisions after the minibatch."""
    rows: list[tuple[dict, str]] = []
    applied = {3: ("replace", "model"), 6: ("skip", "no-difference"), 11: ("skip", "fallback"),
               15: ("replace", "guard")}
    answers = {2: decision(2, 0, "replace", "model", WHATIF), 5: decision(5, 3, "skip", "no-difference", WHATIF),
               9: decision(9, 6, "skip", "fallback"), 14: decision(14, 10, "replace", "guard")}
    for s in range(20):
        a, src = applied.get(s, (None, None))
        rows.append((minibatch(s, hits=40 if s < 3 else 70, applied=a, source=src,
                               expected="increase" if src == "model" else None), "minibatch"))
        if s in answers:
            rows.append((answers[s], "decision"))
    return rows


def make_run(run: Path, rows: list[tuple[dict, str]], *, meta: bool = True, controller: str = "llm",
             ranks: tuple[int, ...] = (0,)) -> Path:
    """A run directory as `rudder train` (without --trace) leaves it; every rank gets the same rows."""
    run.mkdir(parents=True, exist_ok=True)
    parts = run / "partition"
    parts.mkdir(exist_ok=True)
    if meta:
        (parts / "rudder_meta.json").write_text(json.dumps({
            "num_nodes": 4000, "num_edges": 36064, "parts": 2, "feat_dim": 128,
            "partitions": [{"part_id": 0, "node_start": 0, "node_end": 2036, "halo_nodes": 200},
                           {"part_id": 1, "node_start": 2036, "node_end": 4000, "halo_nodes": 210}]}))
    cfg = TrainConfig(dataset="synthetic:4000", parts=2, epochs=2, part_config=parts / "g.json", graph_name="g",
                      out_dir=run, buffer=BufferConfig.from_values(
                          {"controller": controller, "model": "scripted:/nowhere.jsonl"}))
    (run / "config.json").write_text(cfg.model_dump_json())
    for rank in ranks:
        writer = MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        for record, kind in rows:
            writer.write({**record, "rank": rank}, kind)
        writer.close()
    return run


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(a) for a in [REPLACE, SKIP]) + "\n")
    return path


@pytest.fixture
def prompts(monkeypatch) -> list[tuple[str, str]]:
    """The (system, user) messages the scripted model is sent."""
    seen: list[tuple[str, str]] = []
    invoke = ScriptedBackend.invoke

    def spy(self, messages):
        seen.append((messages[0].content, messages[-1].content))
        return invoke(self, messages)

    monkeypatch.setattr(ScriptedBackend, "invoke", spy)
    return seen


def test_requests_are_the_recorded_windows_with_their_whatif(tmp_path):
    stream = load_stream(make_run(tmp_path / "run", stream_rows()), 0)
    windows, reconstructed = rebuild_windows(stream)
    assert not reconstructed
    assert [w.request.step for w in windows] == [2, 5, 9, 14]
    assert [[m.step for m in w.request.window] for w in windows] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9],
                                                                       [10, 11, 12, 13, 14]]
    assert [w.request.whatif for w in windows] == [WHATIF, WHATIF, None, None]
    assert all((w.request.stale, w.request.occupancy, w.request.capacity) == (10, CAPACITY, CAPACITY) for w in windows)
    # the k-th answer is the k-th applied decision, applied after its request
    assert [w.applied_step for w in windows] == [3, 6, 11, 15]
    assert [(w.recorded.decision, w.recorded.source) for w in windows] == [
        ("replace", "model"), ("skip", "no-difference"), ("skip", "fallback"), ("replace", "guard")]


def test_facts_come_from_the_partition_meta_without_a_trace(tmp_path):
    facts, note = run_facts(load_stream(make_run(tmp_path / "run", stream_rows()), 0))
    assert note is None
    assert (facts.num_nodes, facts.num_edges, facts.partition, facts.local_nodes, facts.halo_nodes) == (
        4000, 36064, 0, 2036, 200)
    assert (facts.capacity, facts.total_minibatches, facts.feature_dim) == (CAPACITY, 20, 128)  # 2 epochs x 10
    facts, note = run_facts(load_stream(make_run(tmp_path / "bare", stream_rows(), meta=False), 0))
    assert "graph facts unknown" in note and facts.num_nodes == 0 and facts.total_minibatches == 20


def test_recorded_whatif_reaches_the_v2_prompt(tmp_path, script, prompts):
    run = make_run(tmp_path / "run", stream_rows())
    rows, summary = open_loop(run, limit=2, model=f"scripted:{script}", prompt_version="v2", progress=False)
    assert [r["source"] for r in rows] == ["model", "model"] and len(prompts) == 2
    users = [user for _, user in prompts]
    for text in users:  # the figures of the what-if recorded live, as prompts/decision/v2/user.md renders {whatif}
        assert "replace now: 1,234 rows fetched, %-Hits 71.4" in text
        assert "skip now: 2,345 rows fetched, %-Hits 45.7" in text
        assert "replace fetches 1,111 fewer rows than skip" in text
    assert "Minibatch 3 of 20" in users[0] and "minibatches 0-2" in users[0]
    assert "0-2 | 40.0" in users[1]  # history carried: the first window and its answer
    assert summary["agent"]["prompt_version"] == "v2"


def test_each_rank_gets_its_own_facts_and_a_fresh_history(tmp_path, script, prompts):
    run = make_run(tmp_path / "run", stream_rows(), ranks=(0, 1))
    rows, summary = open_loop(run, limit=2, model=f"scripted:{script}", prompt_version="v1", progress=False)
    assert [(r["rank"], r["request_step"]) for r in rows] == [(0, 2), (0, 5), (1, 2), (1, 5)]
    assert [("partition 0 has 2,036 local" in system, "(no decisions yet)" in user) for system, user in prompts] == [
        (True, True), (True, False), (False, True), (False, False)]
    assert "partition 1 has 1,964 local" in prompts[2][0]
    assert summary["windows"] == 4 and [s["windows"] for s in summary["per_rank"].values()] == [2, 2]


def test_agreement_with_recorded_oracle_and_whatif(tmp_path, script):
    rows = stream_rows()
    # oracle labels of the recorded trajectory, judged where each answer was applied (3, 6, 11, 15)
    rows += [({"rank": 0, "step": s, "horizon": 8, "replace_comm": 0, "skip_comm": 0, "label": lab}, "oracle")
             for s, lab in [(3, "replace"), (6, "replace"), (11, "skip"), (15, "skip"), (2, "skip")]]
    run = make_run(tmp_path / "run", rows)
    # scripted answers cycle replace, skip; windows 9 and 14 are not guarded (stale 10, full buffer)
    out, summary = open_loop(run, model=f"scripted:{script}", prompt_version="v1", progress=False)
    assert [(r["decision"], r["source"]) for r in out] == [("replace", "model"), ("skip", "model"),
                                                           ("replace", "model"), ("skip", "model")]
    assert [r["agrees_recorded"] for r in out] == [True, True, None, False]  # a recorded fallback is not compared
    assert summary["agree_recorded"] == {"pct": pytest.approx(200 / 3), "agreed": 2, "n": 3,
                                         "lo": pytest.approx(summary["agree_recorded"]["lo"]),
                                         "hi": pytest.approx(summary["agree_recorded"]["hi"])}
    by = summary["agree_recorded_by_source"]
    assert [(by[s]["agreed"], by[s]["n"]) for s in ("model", "no-difference", "guard")] == [(1, 1), (1, 1), (0, 1)]
    assert [r["oracle_label"] for r in out] == ["replace", "replace", "skip", "skip"]
    assert (summary["agree_oracle"]["agreed"], summary["agree_oracle"]["n"]) == (2, 4)
    assert [r["agrees_whatif"] for r in out] == [True, False, None, None]  # the what-if favours replace
    assert (summary["agree_whatif"]["agreed"], summary["agree_whatif"]["n"]) == (1, 2)
    # Pass@1 only where the replay agrees with the recorded model decision: the stream shows that decision's effect
    # step 3: %-Hits 40 -> 70, predicted increase; step 6: 58 -> 70, predicted unchanged
    assert [r["pass1_hits"] for r in out] == [True, False, None, None]
    assert [r["pass1_comm"] for r in out] == [False, False, None, None]  # comm fell at both
    assert (summary["model_calls"], summary["valid_pct"], summary["decisions"]) == (4, 100.0,
                                                                                    {"replace": 2, "skip": 2})


def test_summary_counts_validity_latency_and_sources():
    row = {"agrees_recorded": None, "recorded_source": None, "agrees_oracle": None, "agrees_whatif": None,
           "pass1_hits": None, "pass1_comm": None, "decision": "skip"}
    rows = [{**row, "source": "model", "valid": True, "latency_s": 1.0},
            {**row, "source": "fallback", "valid": False, "latency_s": 3.0},
            {**row, "source": "guard", "valid": True, "latency_s": 0.0},
            {**row, "source": "model", "valid": True, "latency_s": 2.0, "decision": "replace"}]
    s = summarize_rows(rows)
    assert (s["windows"], s["model_calls"], s["valid_pct"]) == (4, 3, pytest.approx(200 / 3))
    assert (s["latency_mean_s"], s["latency_median_s"], s["latency_p95_s"]) == (2.0, 2.0, pytest.approx(2.9))  # model calls only: the guard is free
    assert s["sources"] == {"model": 2, "guard": 1, "no-difference": 0, "fallback": 1}
    assert s["agree_oracle"] == {"pct": None, "agreed": 0, "n": 0, "lo": None, "hi": None}


def test_old_runs_without_decision_records_are_reconstructed(tmp_path, script):
    old = [(r, k) for r, k in stream_rows() if k == "minibatch"]
    windows = windows_from_minibatches([MinibatchMetrics.model_validate(r) for r, _ in old])
    assert [[m.step for m in w.request.window] for w in windows] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 10],
                                                                       [11, 12, 13, 14]]
    assert [w.applied_step for w in windows] == [3, 6, 11, 15] and all(w.request.whatif is None for w in windows)
    assert [w.recorded.decision for w in windows] == ["replace", "skip", "skip", "replace"]
    run = make_run(tmp_path / "old", old)
    result = CliRunner().invoke(app, ["replay-metrics", str(run), "--model", f"scripted:{script}",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "4 windows reconstructed from the minibatch records (approximate)" in result.output


def test_cli_writes_rows_summary_and_table_and_refuses_to_overwrite(tmp_path, script):
    run, out = make_run(tmp_path / "run", stream_rows()), tmp_path / "out"
    args = ["replay-metrics", str(run), "--model", f"scripted:{script}", "--prompt-version", "v2", "--limit", "3",
            "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    assert [r["request_step"] for r in rows] == [2, 5, 9]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"] == 3 and summary["agent"]["prompt_version"] == "v2" and summary["limit"] == 3
    assert "| windows | 3 |" in result.output and "the decisions do not change the stream" in result.output
    assert "no oracle labels" in result.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize("case, message", [
    ("missing", "is not a directory"),
    ("rank", "no metric stream for rank 3 (ranks present: 0)"),
    ("prompt", "prompt version 'v9' not found"),
    ("model", "cannot start model 'scripted:"),
    ("none", "without a buffer (controller none)"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, script, case, message):
    unbuffered = [({**m, "capacity": 0, "occupancy": 0, "stale": 0, "decision_applied": None}, k)
                  for m, k in stream_rows() if k == "minibatch"]
    run = make_run(tmp_path / "run", unbuffered if case == "none" else stream_rows(),
                   controller="none" if case == "none" else "llm")
    args = {"missing": [str(tmp_path / "nowhere")], "rank": [str(run), "--rank", "3"],
            "prompt": [str(run), "--prompt-version", "v9"], "model": [str(run), "--model", "scripted:/no/such.jsonl"],
            "none": [str(run)]}[case]
    model = [] if case == "model" else ["--model", f"scripted:{script}"]
    result = CliRunner().invoke(app, ["replay-metrics", *args, *model, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_missing_rank_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="ranks present: 0"):
        load_stream(make_run(tmp_path / "run", stream_rows()), 1)


def test_oracle_labels_from_a_labels_dir_or_computed_from_the_trace(tmp_path, script):
    from rudder_agent.replay.simulator import replay_run
    from tests.unit.test_replay import make_run as make_traced_run, random_inputs

    run = make_run(tmp_path / "run", stream_rows())
    labels = make_run(tmp_path / "labelled", [({"rank": 0, "step": s, "horizon": 8, "replace_comm": 0,
                                                "skip_comm": 0, "label": "skip"}, "oracle") for s in range(20)])
    out, summary = open_loop(run, labels_dir=labels, model=f"scripted:{script}", progress=False)
    assert [r["oracle_label"] for r in out] == ["skip"] * 4 and summary["agree_oracle"]["n"] == 4
    with pytest.raises(InputError, match="no kind=oracle records"):
        open_loop(run, labels_dir=tmp_path / "run", model=f"scripted:{script}", progress=False)

    # a live run with a trace (here: fixed, replayed to stand in for its live metric stream)
    traced = make_traced_run(tmp_path / "traced", random_inputs(6), controller="fixed")
    replay_run(traced, 0, "fixed", out_dir=tmp_path / "fixed", progress=False)
    (traced / "metrics-rank0.jsonl").write_text((tmp_path / "fixed" / "metrics-rank0.jsonl").read_text())
    notes: list[str] = []
    out, summary = open_loop(traced, horizon=2, notes=notes, model=f"scripted:{script}", progress=False)
    assert "rank 0: oracle labels: computed from the trace (H=2)" in notes
    assert any("reconstructed" in n for n in notes)  # fixed is asked inline: no decision records
    assert summary["agree_oracle"]["n"] == len(out) > 0 and all(r["oracle_label"] for r in out)
    _, summary = open_loop(traced, compute_labels=False, model=f"scripted:{script}", progress=False)
    assert summary["agree_oracle"]["n"] == 0


def test_no_guard_asks_the_model_in_windows_the_guard_settles(tmp_path, script, prompts):
    # nothing stale, a full buffer and no what-if (a stream of the paper's agent): the guard answers skip
    settled = [({**r, "stale": 0}, k) for r, k in stream_rows() if k == "minibatch"]
    run = make_run(tmp_path / "run", settled)
    rows, summary = open_loop(run, model=f"scripted:{script}", prompt_version="v1", progress=False)
    assert [r["source"] for r in rows] == ["guard"] * 4 and not prompts and summary["agent"]["guard"] is True
    rows, summary = open_loop(run, model=f"scripted:{script}", prompt_version="v1", progress=False, guard=False)
    assert [(r["source"], r["decision"]) for r in rows] == [("model", "replace"), ("model", "skip")] * 2
    assert len(prompts) == 4 and summary["agent"]["guard"] is False
    result = CliRunner().invoke(app, ["replay-metrics", str(run), "--model", f"scripted:{script}", "--no-guard",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "no guard]" in result.output and "| windows | 4 |" in result.output
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["agent"]["guard"] is False
