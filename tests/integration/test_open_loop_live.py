"""`rudder replay-metrics` on a real run recorded WITHOUT --trace: every recorded decision window is replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rudder_agent.records.stream import read_jsonl
from rudder_agent.replay.open_loop.scoring import AGREE_SOURCES
from tests.integration.helpers import rudder

pytestmark = pytest.mark.integration


def test_open_loop_replays_every_recorded_window_with_v1_and_v2(tmp_path, reference):
    run = reference("llm-scripted-sync")  # the session's agent run with scripted answers
    script = json.loads((run / "config.json").read_text())["buffer"]["controller"]["model"].removeprefix("scripted:")
    assert not list(run.glob("trace-rank*")), "the run must have no trace"
    recorded = {r: read_jsonl(run / f"metrics-rank{r}.jsonl", kind="decision") for r in (0, 1)}
    assert all(recorded.values())
    for r in (0, 1):  # the live run records what the agent was told, so the replay tells it the same
        (controller,) = read_jsonl(run / f"metrics-rank{r}.jsonl", kind="controller")
        assert controller["facts"]["partition"] == r and controller["facts"]["capacity"] == controller["capacity"]

    for version in ("v1", "v2"):
        out = tmp_path / f"open-{version}"
        proc = rudder("replay-metrics", str(run), "--prompt-version", version, "--out", str(out))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
        summary = json.loads((out / "summary.json").read_text())
        # every recorded window, in order, with its window, buffer state, recorded answer and live what-if
        assert [(r["rank"], r["request_step"]) for r in rows] == [
            (rank, d["request_step"]) for rank in (0, 1) for d in recorded[rank]]
        expected = [d for rank in (0, 1) for d in recorded[rank]]
        assert [(r["first_step"], r["last_step"], r["minibatches"], r["stale"], r["occupancy"]) for r in rows] == [
            (d["first_step"], d["last_step"], d["minibatches"], d["stale"], d["occupancy"]) for d in expected]
        assert [(r["recorded_decision"], r["recorded_source"], r["whatif"]) for r in rows] == [
            (d["outcome"]["decision"], d["outcome"]["source"], d["outcome"]["whatif"]) for d in expected]
        assert all(r["missing_minibatches"] == 0 for r in rows)
        # counts match
        assert summary["windows"] == len(rows) == sum(map(len, recorded.values()))
        for rank in (0, 1):
            s = summary["per_rank"][str(rank)]
            assert s["windows"] == s["recorded_decisions"] == len(recorded[rank]) and not s["reconstructed"]
        assert sum(summary["sources"].values()) == summary["windows"]
        assert summary["model_calls"] == sum(r["source"] in ("model", "fallback") for r in rows)
        assert summary["agree_recorded"]["n"] == sum(d["outcome"]["source"] in AGREE_SOURCES for d in expected)
        assert summary["agent"]["prompt_version"] == version and summary["agent"]["model"] == f"scripted:{script}"
        assert "graph facts unknown" not in proc.stderr and "reconstructed" not in proc.stderr
        table = proc.stdout
        n0, n1 = len(recorded[0]), len(recorded[1])
        assert f"| windows | {n0} | {n1} | {n0 + n1} |" in table, table
        print(f"--- prompt {version}\n{table}")
        if version == "v2":  # the recorded settings (the default prompt): rank 0 (first, so the script starts where it did live) repeats
            live = [(d["outcome"]["decision"], d["outcome"]["source"]) for d in recorded[0]]
            assert [(r["decision"], r["source"]) for r in rows if r["rank"] == 0] == live
    assert summary["model_calls"] > 0, "the run should have asked the model at least once"


def test_no_output_without_a_run(tmp_path: Path):
    proc = rudder("replay-metrics", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
