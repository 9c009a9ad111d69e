"""`rudder compare --controllers`: controllers, NAME@POLICY and the paper preset become the runs' settings; a
finished run is reused only if it ran with the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rudder_agent import compare
from rudder_agent.cli import app as rudder_app
from rudder_agent.compare import parse_variants, run_or_reuse, variants
from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.errors import RudderError
from rudder_agent.records.run_summary import RunSummary


GIVEN = {"gamma": 0.9, "timeout_s": 7.0}
"""Buffer settings given on the command line: every variant's base."""


def base(tmp_path: Path) -> TrainConfig:
    return TrainConfig(dataset="synthetic:1000", graph_name="g", part_config=tmp_path / "p.json",
                       out_dir=tmp_path / "cmp", buffer=BufferConfig.from_values(GIVEN))


def test_each_variant_runs_with_its_controller_policy_and_the_shared_settings(tmp_path):
    specs = parse_variants("paper,fixed@decay,llm")
    assert [v.label for v in specs] == ["none", "paper", "fixed@decay", "llm"]  # none first, always
    runs = {cfg.out_dir.name: cfg.buffer for _, cfg in variants(base(tmp_path), GIVEN, specs, [0.05, 0.25])}
    assert sorted(runs) == ["fixed@decay-0.05", "fixed@decay-0.25", "llm-0.05", "llm-0.25", "none",
                            "paper-0.05", "paper-0.25"]
    paper, fixed, llm = runs["paper-0.25"], runs["fixed@decay-0.05"], runs["llm-0.25"]
    assert (paper.controller.name, paper.policy.name, paper.controller.prompt_version, paper.controller.whatif) == (
        "llm", "decay", "v1", False)
    assert (fixed.controller.name, fixed.policy.name, fixed.fraction) == ("fixed", "decay", 0.05)
    assert (llm.controller.name, llm.policy.name, llm.controller.prompt_version, llm.controller.whatif) == (
        "llm", "lookahead", "v2", True)
    assert {b.scoring.gamma for b in runs.values()} == {0.9}
    assert paper.controller.timeout_s == llm.controller.timeout_s == 7.0


@pytest.mark.parametrize("spec, message", [
    ("none,bogus", "unknown: bogus"),
    ("fixed@sometimes", "fixed@sometimes: Input should be 'decay', 'lfu' or 'lookahead'"),
    (" , ", "comma-separated list of NAME or NAME@POLICY"),
])
def test_a_bad_variant_is_named_before_anything_runs(spec, message, tmp_path):
    result = CliRunner().invoke(rudder_app, ["compare", "--controllers", spec, "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "cmp").exists()


def finished(cfg: TrainConfig) -> None:
    cfg.out_dir.mkdir(parents=True)
    (cfg.out_dir / "config.json").write_text(cfg.model_dump_json())
    (cfg.out_dir / "summary.json").write_text('{"epochs": 3}')


def test_a_finished_run_is_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "run_training", lambda *a: pytest.fail("a finished run was trained again"))
    cfg = base(tmp_path)
    finished(cfg)
    assert run_or_reuse(cfg) == RunSummary(epochs=3)
    other = cfg.model_copy(update={"epochs": 5, "buffer": cfg.buffer.with_values({"gamma": 0.5})})
    with pytest.raises(RudderError, match=r"holds a finished run with other settings \(epochs, buffer\); pass "
                                          r"--overwrite to run it again or choose another --out"):
        run_or_reuse(other)
    assert (cfg.out_dir / "summary.json").read_text() == '{"epochs": 3}'  # refused, not replaced
