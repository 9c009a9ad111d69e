"""The command line: user errors print a clear message and a non-zero code, never a traceback."""

from __future__ import annotations

from pathlib import Path


def test_cli_reports_bad_settings_without_a_traceback(tmp_path) -> None:
    from typer.testing import CliRunner

    from rudder_agent.cli import app

    result = CliRunner().invoke(app, ["train", "--dataset", "cora", "--controller", "bogus", "--out",
                                      str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: --controller: Input should be 'none', 'fixed', 'massivegnn', 'llm' or 'classifier' (got 'bogus')"]


def test_every_test_gets_the_private_cache_without_asking(tmp_path_factory) -> None:
    # tests/conftest.py's isolated_cache is autouse: this test does not request it, whatever ran before it
    from rudder_agent.paths import PROJECT_ROOT, cache_dir

    cache = cache_dir()
    assert cache.is_relative_to(tmp_path_factory.getbasetemp()) and cache.name.startswith("rudder-cache")
    assert cache != PROJECT_ROOT / ".rudder-cache" and Path(cache).is_dir()
