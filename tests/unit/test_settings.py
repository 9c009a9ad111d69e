"""Every setting has one default: the CLI, the agent and the backends take theirs from the config fields."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from types import SimpleNamespace

import pytest
import typer
import typer.main
from pydantic import ValidationError
from typer.testing import CliRunner

from rudder_agent.agent.configuration import SWAP_TEST_TOP_LOGPROBS, FROM_BUFFER, AgentConfig
from rudder_agent.config import BufferConfig, GNNConfig, TrainConfig, TrainSettings, current_names
from rudder_agent.llm.backends import BackendOptions
from rudder_agent.llm.output import answer_schema
from rudder_agent.options import field_default
from rudder_agent.records.trace import read_trace_meta

FLAG_TO_FIELD = {"buffer_fraction": "fraction", "method": "part_method", "model": "llm_model",
                 "llm_timeout": "llm_timeout_s", "sync": "mode"}
"""CLI parameters whose name differs from the field they set."""

MODELS = (BufferConfig, GNNConfig, TrainSettings)


def rudder_app() -> typer.Typer:
    """The `rudder` app, imported late: importing it wraps the classifiers sub-app's commands for every test."""
    from rudder_agent.cli import app

    return app


def params(command: str) -> dict:
    """The click parameters of a `rudder` command, by field name."""
    cmd = typer.main.get_command(rudder_app()).commands[command]
    return {FLAG_TO_FIELD.get(p.name, p.name): p for p in cmd.params}


def owner(name: str):
    """The config class that declares a field."""
    (model,) = [m for m in MODELS if name in m.model_fields]
    return model


@pytest.mark.parametrize("command", ["train", "compare"])
def test_cli_defaults_and_help_are_the_fields(command):
    checked = 0
    for name, p in params(command).items():
        if not any(name in m.model_fields for m in MODELS):
            continue  # a command's own option (out, timeout, controllers, ...)
        model = owner(name)
        info = model.model_fields[name]
        default = field_default(model, name)
        assert p.default == (default == "sync" if name == "mode" else default), (command, name)
        assert p.help.startswith(info.description), (command, name)
        checked += 1
    buffer = set(BufferConfig.model_fields) - ({"controller", "fraction"} if command == "compare" else set())
    assert buffer | {"hidden", "lr", "epochs", "seed", "fanouts", "batch_size"} <= set(params(command))
    assert checked >= len(buffer) + 6


def test_replay_options_default_to_the_recording_with_the_fields_help():
    replay = params("replay")
    for name in set(BufferConfig.model_fields) - {"controller"}:
        assert replay[name].default is None, name
        assert replay[name].help.startswith(BufferConfig.model_fields[name].description), name


def test_cli_bounds_are_the_fields():
    train = params("train")
    assert (train["llm_threads"].min, train["gamma"].min, train["gamma"].max) == (1, 0.0, 1.0)
    assert params("replay")["llm_threads"].min == 1


@pytest.fixture
def launched(monkeypatch, tmp_path):
    """`train` and `compare` up to the launch: the TrainConfig each would run, nothing started."""
    import rudder_agent.cluster.partition as partition
    import rudder_agent.cluster.training as training
    import rudder_agent.compare as compare

    seen: list[TrainConfig] = []
    monkeypatch.setattr(partition, "partition_dataset", lambda dataset, parts, method: SimpleNamespace(
        config_path=tmp_path / f"{dataset}-{parts}-{method}.json", graph_name=dataset))
    monkeypatch.setattr(training, "run_training", lambda cfg, timeout, trainer=None: seen.append(cfg))
    monkeypatch.setattr(compare, "compare", lambda base, *args: seen.append(base) or [])
    monkeypatch.setattr(compare, "write_comparison", lambda out, summaries: "")
    return seen


def test_train_without_options_runs_the_default_settings(launched, tmp_path):
    result = CliRunner().invoke(rudder_app(), ["train", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    (cfg,) = launched
    defaults = TrainSettings(out_dir=tmp_path / "run")
    assert cfg.buffer == BufferConfig() and cfg.gnn == GNNConfig()
    assert {k: getattr(cfg, k) for k in TrainSettings.model_fields} == {
        **dict(defaults), "out_dir": (tmp_path / "run").resolve()}


def test_compare_passes_gnn_and_agent_settings_by_name(launched, tmp_path):
    result = CliRunner().invoke(rudder_app(), ["compare", "--out", str(tmp_path / "cmp"), "--hidden", "64",
                                               "--lr", "0.01", "--fallback", "rule", "--llm-threads", "3",
                                               "--epochs", "2"])
    assert result.exit_code == 0, result.output
    (base,) = launched
    assert base.gnn == GNNConfig(hidden=64, lr=0.01) and base.epochs == 2
    assert base.buffer == BufferConfig(fallback="rule", llm_threads=3)


def test_agent_settings_are_the_buffer_fields():
    agent, buffer = AgentConfig.model_fields, BufferConfig.model_fields
    for mine, theirs in FROM_BUFFER.items():
        assert agent[mine].default == buffer[theirs].default, mine
        assert agent[mine].description == buffer[theirs].description, mine
        assert agent[mine].metadata == buffer[theirs].metadata, mine
    assert AgentConfig().n_threads == BufferConfig().llm_threads == 1


def test_agent_from_buffer_carries_every_shared_setting():
    cfg = BufferConfig(controller="llm", llm_model="ollama:m", prompt_version="v2", cot=True, fallback="rule",
                       llm_threads=3, llm_timeout_s=7.5, llm_duty_cycle=0.25, llm_swap_test="on")
    agent = AgentConfig.from_buffer(cfg, guard=False)
    assert {mine: getattr(agent, mine) for mine in FROM_BUFFER} == {
        "model": "ollama:m", "prompt_version": "v2", "cot": True, "fallback": "rule", "n_threads": 3, "timeout_s": 7.5,
        "min_difference_pct": 0.5, "whatif": True, "duty_cycle": 0.25, "swap_test": "on"}
    assert agent.guard is False


def test_backend_options_come_from_the_agent_config():
    agent = AgentConfig(cot=True, n_threads=4, timeout_s=9.0, seed=7, retries=2, ollama_host="box", swap_test="on")
    options = agent.backend_options()
    assert {f.name: getattr(options, f.name) for f in fields(BackendOptions)} == {
        "schema": answer_schema(True), "timeout_s": 9.0, "retries": 2, "seed": 7, "max_tokens": agent.answer_tokens,
        "n_threads": 4, "ollama_host": "box", "top_logprobs": SWAP_TEST_TOP_LOGPROBS}
    assert AgentConfig().backend_options().n_threads == BufferConfig().llm_threads
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(BackendOptions))  # no defaults


OLD_CONFIG = {  # config.json as written before TrainConfig.model -> gnn and BufferConfig.model -> llm_model
    "dataset": "cora", "parts": 2, "part_method": "metis", "part_config": "/p/cora.json", "graph_name": "cora",
    "epochs": 3, "batch_size": 1000, "fanouts": [10, 25], "eval_batch_size": 2000, "seed": 0,
    "model": {"hidden": 128, "dropout": 0.5, "lr": 0.01},
    "buffer": {"controller": "llm", "fraction": 0.25, "delta": 1.0, "gamma": 0.95, "tau": None, "period": 32,
               "mode": "async", "model": "scripted:answers.jsonl", "prompt_version": "v1", "cot": False,
               "fallback": "skip", "llm_threads": 1, "llm_timeout_s": 30.0, "classifier_path": None,
               "finetune_every": 0},
    "trace": True, "trace_only": False, "out_dir": "/runs/old", "network": "loopback", "link_rate": "1gbit",
    "verify": False, "fail_at_step": None,
}


def test_an_old_config_loads_under_the_new_names():
    cfg = TrainConfig.model_validate_json(json.dumps(OLD_CONFIG))
    assert cfg.gnn == GNNConfig(hidden=128, lr=0.01) and cfg.buffer.llm_model == "scripted:answers.jsonl"
    dumped = json.loads(cfg.model_dump_json())
    assert "gnn" in dumped and "llm_model" in dumped["buffer"] and "model" not in dumped | dumped["buffer"]
    assert TrainConfig.model_validate(dumped) == cfg


def test_an_old_trace_meta_loads(tmp_path):
    facts = {"dataset": "cora", "num_nodes": 10, "num_edges": 20, "num_parts": 2, "partition": 0, "local_nodes": 5,
             "halo_nodes": 5, "capacity": 2, "total_minibatches": 4, "feature_dim": 4}
    meta = {"rank": 0, "partition": 0, "part_bounds": [0, 5, 10], "capacity": 2, "halo_nodes": 5, "feature_dim": 4,
            "row_bytes": 16, "minibatches_per_epoch": 4, "facts": facts, "config": OLD_CONFIG, "warm_ids": [1, 2]}
    path = tmp_path / "trace-rank0.meta.json"
    path.write_text(json.dumps(meta))
    loaded = read_trace_meta(path)
    assert loaded.config.gnn.hidden == 128 and loaded.config.buffer.llm_model == "scripted:answers.jsonl"


def test_old_and_new_name_together_is_an_error_not_a_silent_choice():
    with pytest.raises(ValidationError, match="model"):
        BufferConfig.model_validate({"llm_model": "ollama:a", "model": "ollama:b"})


def test_old_override_names_are_read_under_the_new_ones():
    assert current_names(BufferConfig, {"model": "ollama:m", "period": 4}) == {"llm_model": "ollama:m", "period": 4}
    assert current_names(TrainSettings, {"model": {"hidden": 8}}) == {"gnn": {"hidden": 8}}
