"""The command line: user errors print a clear message and a non-zero code, never a traceback."""

from __future__ import annotations


def test_cli_reports_bad_settings_without_a_traceback(tmp_path, isolated_cache) -> None:
    from typer.testing import CliRunner

    from rudder_agent.cli import app

    result = CliRunner().invoke(app, ["train", "--dataset", "cora", "--controller", "bogus", "--out",
                                      str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "invalid settings: controller" in result.output and "Traceback" not in result.output
