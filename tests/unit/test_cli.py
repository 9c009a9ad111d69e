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


def test_an_option_group_reaches_the_command_as_one_dict() -> None:
    import json

    import pytest
    import typer
    from typer.testing import CliRunner

    from rudder_agent.options import option_group

    app = typer.Typer()

    @app.command()
    @option_group("shared", {"alpha": (int, typer.Option(1, help="a shared count")),
                             "beta": (str, typer.Option("b", "--beta-name"))})
    def cmd(x: int = typer.Option(0), shared: dict = None) -> None:
        typer.echo(json.dumps({"x": x, **shared}))

    result = CliRunner().invoke(app, ["--x", "2", "--beta-name", "c"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"x": 2, "alpha": 1, "beta": "c"}
    assert "a shared count" in CliRunner().invoke(app, ["--help"]).output
    with pytest.raises(TypeError, match="must take `shared` as its last parameter"):
        option_group("shared", {})(lambda shared, x=0: None)


def test_train_and_compare_take_the_same_shared_options() -> None:
    """Declared once (cli.RUN, the settings tree, OWN_GRAPH): both commands list every one of them."""
    from typer.main import get_command

    from rudder_agent.cli import COMPARED, OWN_GRAPH, RUN, app
    from rudder_agent.options import setting_options

    group = get_command(app)
    shared = {**RUN, **setting_options(skip=COMPARED), **OWN_GRAPH}
    for name in ("train", "compare"):
        params = {p.name: p for p in group.commands[name].params}
        assert set(shared) <= set(params), set(shared) - set(params)
        assert params["swap_test"].default == "auto" and params["fanouts"].default == "10,25"


def test_replay_and_replay_metrics_take_the_same_model_options() -> None:
    """Declared once (replay.cli.MODEL); unset, each keeps the recorded run's value (None here)."""
    from typer.main import get_command

    from rudder_agent.cli import app
    from rudder_agent.replay.cli import MODEL

    group = get_command(app)
    for name in ("replay", "replay-metrics"):
        params = {p.name: p for p in group.commands[name].params}
        assert set(MODEL) <= set(params) and all(params[k].default is None for k in MODEL)
        assert "--model" in params["model"].opts and "--llm-timeout" in params["timeout_s"].opts
