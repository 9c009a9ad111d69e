"""`replay` and `bounds` as commands, through the real `rudder` app: what a user sees, errors included."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rudder_agent.cli import app
from tests.unit.test_replay import make_run, random_inputs


def test_replay_every_rank_then_refuse_to_overwrite(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(6))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["replay", str(run), "--controller", "fixed", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "replay [fixed, inline]: 6 minibatches" in result.output
    assert json.loads((out / "summary.json").read_text())["minibatches"] == 6
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = CliRunner().invoke(app, ["replay", str(run), "--out", str(out)])
    assert (again.exit_code, again.stdout) == (1, "")
    assert again.stderr.splitlines() == [f"error: {out} is not empty; pass --overwrite or choose another --out"]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing replaced


def test_bounds_writes_every_figure(tmp_path):
    run = make_run(tmp_path / "run", random_inputs(6))
    result = CliRunner().invoke(app, ["bounds", str(run), "--horizon", "2", "--out", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    (b,) = json.loads((tmp_path / "b.json").read_text())
    assert b["compulsory"]["comm_rows"] <= b["belady"]["comm_rows"] <= b["oracle"]["comm_rows"]
    assert "recorded" not in b  # the hand-made run has no metric stream
