"""`rudder report` on synthetic run directories: rows, ratio to none, tables, figures, bounds (no DistDGL)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.passk import PassOptions
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.records.summary import write_summary
from rudder_agent.replay.simulator import replay_run
from rudder_agent.report.build import write_report
from rudder_agent.report.cli import report_command
from rudder_agent.report.figures import run_row
from rudder_agent.report.runs import load_runs
from tests.unit.test_replay import make_run, random_inputs

PER_EPOCH = 4


def write_run(run: Path, controller: str, rows: list[dict], fraction: float = 0.25, dataset: str = "cora",
              ranks: int = 2, warm_rows: int = 0) -> Path:
    """A live run directory: config.json, one metric stream per rank (the same rows), summary.json."""
    run.mkdir(parents=True)
    cfg = TrainConfig(dataset=dataset, parts=ranks, part_config=run / "p.json", graph_name="g", out_dir=run,
                      buffer=BufferConfig.from_values(dict(controller=controller, fraction=fraction)))
    (run / "config.json").write_text(cfg.model_dump_json())
    for rank in range(ranks):
        writer = MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        for step, row in enumerate(rows):
            comm = row.get("comm_rows", row["remote_inputs"] - row["hits"])
            writer.write(MinibatchMetrics(rank=rank, epoch=step // PER_EPOCH, step=step, input_nodes=100, misses=comm,
                                          comm_rows=comm, comm_bytes=8 * comm, decision_requested=controller != "none",
                                          **row), "minibatch")
        for epoch in range(-(-len(rows) // PER_EPOCH)):
            writer.write({"rank": rank, "epoch": epoch, "epoch_time_s": 1.0}, "epoch")  # what summary.json reads
        writer.write({"rank": rank, "capacity": 10, "warm_rows": warm_rows, "decisions": {}}, "controller")
        writer.close()
    write_summary(run)
    return run


def llm_rows(n: int = 12) -> list[dict]:
    """%-Hits rises from 0 to 50 at step 4; the agent predicts it right at step 4 and wrong at step 8."""
    rows = [{"remote_inputs": 10, "hits": 0 if s < 4 else 5} for s in range(n)]
    rows[4] |= {"decision_applied": "replace", "decision_source": "model", "decision_valid": True,
                "expected_hits": "increase", "expected_comm": "decrease"}
    rows[8] |= {"decision_applied": "replace", "decision_source": "model", "decision_valid": True,
                "expected_hits": "increase", "expected_comm": "increase"}
    rows[6] |= {"decision_applied": "skip", "decision_source": "fallback", "decision_valid": False}
    rows[10] |= {"decision_applied": "skip", "decision_source": "guard", "decision_valid": True}
    return rows


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    none = write_run(tmp_path / "none", "none", [{"remote_inputs": 10, "hits": 0}] * 12)
    llm = write_run(tmp_path / "llm", "llm", llm_rows(), warm_rows=0)
    rule = {"remote_inputs": 10, "hits": 5, "decision_applied": "replace", "decision_source": "rule",
            "decision_valid": True}
    other = write_run(tmp_path / "arxiv-fixed", "fixed", [rule] * 12, dataset="ogbn-arxiv", fraction=0.05)
    return [none, llm, other]


def test_run_row_figures(runs):
    row = run_row(load_runs(runs)[1], {}, PassOptions(k=4))
    assert row["controller"] == "llm (llamacpp:smollm2-135m, prompt v2)" and row["mode"] == "async"
    assert row["hit_pct"] == pytest.approx(100 * 8 * 5 / (12 * 10))
    assert row["decisions"] == 8 and row["replace_pct"] == 50 and row["guarded_pct"] == 25
    assert (row["valid_pct"], row["invalid_pct"]) == (pytest.approx(200 / 3), pytest.approx(100 / 3))
    # per rank: step 4 passes (0 -> 50 %), step 8 fails (50 -> 50 %); two ranks pooled
    assert (row["pass1_hits"], row["pass1_hits_n"]) == (50, 4)
    assert row["pass1_hits_lo"] < 50 < row["pass1_hits_hi"]
    # comm rows 10 -> 5 at step 4 (decrease: pass), 5 -> 5 at step 8 (unchanged, predicted increase: fail)
    assert (row["pass1_comm"], row["pass1_comm_n"]) == (50, 4)
    assert row["oracle_agree"] is None


def test_report_tables_ratio_and_figures(runs, tmp_path):
    out = tmp_path / "report"
    report = write_report(runs, out, opts=PassOptions(k=4))
    by_run = {r["run"]: r for r in report.runs}
    assert by_run["none"]["comm_ratio_none"] == 1.0
    assert by_run["llm"]["comm_ratio_none"] == pytest.approx((12 * 10 - 8 * 5) / (12 * 10))
    assert by_run["arxiv-fixed"]["comm_ratio_none"] is None  # its dataset has no `none` run
    assert any("arxiv-fixed" in n and "vs none" in n for n in report.notes)
    assert len(report.ranks) == 6 and {r["rank"] for r in report.ranks} == {0, 1}
    md = (out / "report.md").read_text()
    assert "| run | rank | controller |" in md and "0.67x" in md and "50 (-" in md
    assert "## Pass@1 %-Hits by dataset" in md
    with (out / "runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == ["none", "llm", "arxiv-fixed"] and rows[2]["comm_ratio_none"] == ""
    pngs = {p.name: p.stat().st_size for p in out.glob("*.png")}
    assert set(pngs) == {"trajectory-none.png", "trajectory-llm.png", "trajectory-arxiv-fixed.png", "trajectories.png",
                         "tradeoff-cora-x2.png", "tradeoff-ogbn-arxiv-x2.png"}
    assert min(pngs.values()) > 10_000


def test_clashing_names_and_missing_predictions(runs, tmp_path):
    copy = tmp_path / "elsewhere" / "llm"
    shutil.copytree(runs[1], copy)
    for path in copy.glob("metrics-rank*.jsonl"):  # an older stream: no prediction fields at all
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if not k.startswith(("expected", "decision_s",
                                                                                            "decision_v"))}) + "\n"
                                for r in lines))
    names = [r.name for r in load_runs([runs[1], copy])]
    assert names[0] != names[1] and all(n.endswith("llm") for n in names)
    row = run_row(load_runs([copy])[0], {}, PassOptions())
    assert row["pass1_hits"] is None and row["valid_pct"] is None and row["guarded_pct"] is None
    assert row["replace_pct"] == 50


def test_bounds_and_oracle_agreement_from_a_trace(tmp_path):
    run = make_run(tmp_path / "live", random_inputs(8))
    replayed = tmp_path / "replayed"
    replay_run(run, 0, "fixed", out_dir=replayed, progress=False)
    shutil.copy(replayed / "metrics-rank0.jsonl", run / "metrics-rank0.jsonl")  # as a live fixed run records it
    write_summary(run)
    report = write_report([run, replayed], tmp_path / "out", with_bounds=True, horizon=2, figures=False)
    live = report.runs[0]
    assert live["oracle_agree_n"] == 8 and report.runs[1]["oracle_agree"] is None
    assert any("replayed" in n and "--labels" in n for n in report.notes)
    assert len(report.bounds) == 2
    for b in report.bounds:
        assert b["compulsory_comm_rows"] <= b["belady_comm_rows"] <= b["comm_rows"]
        assert b["belady_hit_gap"] >= 0 and b["belady_comm_ratio"] >= 1
    assert "## Distance to bounds" in (tmp_path / "out" / "report.md").read_text()


def test_command(runs, tmp_path):
    app = typer.Typer()
    app.command("report")(report_command)
    app.command("noop")(lambda: None)  # keeps `report` a subcommand
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--out", str(tmp_path / "r"), "--window", "4",
                                      "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "| llm | llm (llamacpp:smollm2-135m, prompt v2) | async | 25 |" in result.output
    assert not list((tmp_path / "r").glob("*.png")) and (tmp_path / "r" / "report.md").exists()
