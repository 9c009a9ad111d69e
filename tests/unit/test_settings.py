"""Every setting has one name and one default: the CLI, the agent, replay and Studio take them from the tree."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from types import SimpleNamespace

import pytest
import typer
import typer.main
from pydantic import ValidationError
from typer.testing import CliRunner

from rudder_agent.settings.agent import SWAP_TEST_TOP_LOGPROBS, AgentConfig
from rudder_agent.config import BufferConfig, GNNConfig, TrainConfig, TrainSettings, read_run_config
from rudder_agent.llm.backends import BackendOptions
from rudder_agent.llm.output import answer_schema
from rudder_agent.options import field_default
from rudder_agent.settings.buffer import settings_fields
from rudder_agent.settings.flags import flag_of
from rudder_agent.settings.upgrade import CONFIG_VERSION, current_values, upgrade
from rudder_agent.records.trace import read_trace_meta

RUN_FIELDS = {"method": "part_method", "out_dir": "out_dir"}
"""CLI parameters of the run (not the buffer) whose name differs from the field they set."""


def rudder_app() -> typer.Typer:
    """The `rudder` app, imported late: importing it wraps the classifiers sub-app's commands for every test."""
    from rudder_agent.cli import app

    return app


def params(command: str) -> dict:
    """The click parameters of a `rudder` command, by name."""
    cmd = typer.main.get_command(rudder_app()).commands[command]
    return {p.name: p for p in cmd.params}


def flagged() -> dict:
    """Every buffer setting a command line sets: name -> field."""
    return {name: info for name, info, _ in settings_fields(BufferConfig) if flag_of(info) is not None}


def test_every_setting_has_one_name_in_the_tree():
    names = [name for name, _, _ in settings_fields(BufferConfig)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("command", ["train", "compare"])
def test_cli_flags_defaults_and_help_are_the_fields(command):
    got = params(command)
    skipped = {"controller", "fraction"} if command == "compare" else set()
    for name, info in flagged().items():
        if name in skipped:
            assert name not in got
            continue
        p = got[name]
        default = info.get_default(call_default_factory=True)
        assert p.default == getattr(default, "name", default), (command, name)
        assert p.help.startswith(info.description), (command, name)
        assert p.opts[0] == "--" + name.replace("_", "-"), (command, name)  # the rule; older flags follow
        assert set(flag_of(info)["aliases"]) <= set(p.opts) | {f"{o}/--no-{o[2:]}" for o in p.opts}
    for name, model in (("hidden", GNNConfig), ("lr", GNNConfig), ("epochs", TrainSettings), ("seed", TrainSettings)):
        assert got[name].default == field_default(model, name)


def test_every_flag_users_know_still_sets_its_setting():
    train = params("train")
    opts = {o: p.name for p in train.values() for o in [*p.opts, *p.secondary_opts]}
    assert {flag: opts[flag] for flag in (
        "--model", "--prompt-version", "--cot", "--fallback", "--llm-threads", "--llm-timeout", "--llm-min-difference",
        "--llm-whatif", "--no-llm-whatif", "--llm-duty-cycle", "--llm-swap-test", "--policy", "--lookahead",
        "--delta", "--gamma", "--tau", "--period", "--sync", "--classifier-path", "--finetune-every",
        "--buffer-fraction", "--controller", "--method", "--out")} == {
        "--model": "model", "--prompt-version": "prompt_version", "--cot": "cot", "--fallback": "fallback",
        "--llm-threads": "n_threads", "--llm-timeout": "timeout_s", "--llm-min-difference": "min_difference_pct",
        "--llm-whatif": "whatif", "--no-llm-whatif": "whatif", "--llm-duty-cycle": "duty_cycle",
        "--llm-swap-test": "swap_test", "--policy": "policy", "--lookahead": "lookahead", "--delta": "delta",
        "--gamma": "gamma", "--tau": "tau", "--period": "period", "--sync": "sync",
        "--classifier-path": "classifier_path", "--finetune-every": "finetune_every", "--buffer-fraction": "fraction",
        "--controller": "controller", "--method": "part_method", "--out": "out_dir"}


def test_replay_options_default_to_the_recording_with_the_fields_help():
    replay = params("replay")
    for name, info in flagged().items():
        if name == "controller":  # replay's own --controller also names recorded and oracle
            continue
        assert replay[name].default is None, name
        assert replay[name].help.startswith(info.description), name


def test_cli_bounds_are_the_fields():
    train = params("train")
    assert (train["n_threads"].min, train["gamma"].min, train["gamma"].max) == (1, 0.0, 1.0)
    assert params("replay")["n_threads"].min == 1


@pytest.fixture
def launched(monkeypatch, tmp_path):
    """`train` and `compare` up to the launch: the TrainConfig each would run, nothing started."""
    import rudder_agent.cluster.partition as partition
    import rudder_agent.cluster.training as training
    import rudder_agent.compare as compare

    seen: list = []
    monkeypatch.setattr(partition, "partition_dataset", lambda dataset, parts, method: SimpleNamespace(
        config_path=tmp_path / f"{dataset}-{parts}-{method}.json", graph_name=dataset))
    monkeypatch.setattr(training, "run_training", lambda cfg, timeout, trainer=None, trainer_args=None: seen.append(cfg))
    monkeypatch.setattr(compare, "compare", lambda base, values, *args: seen.append((base, values)) or [])
    monkeypatch.setattr(compare, "write_comparison", lambda out, summaries, twins=None: "")
    return seen


def test_train_without_options_runs_the_default_settings(launched, tmp_path):
    result = CliRunner().invoke(rudder_app(), ["train", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    (cfg,) = launched
    defaults = TrainSettings(out_dir=tmp_path / "run")
    assert cfg.buffer == BufferConfig() and cfg.gnn == GNNConfig() and cfg.version == CONFIG_VERSION
    assert {k: getattr(cfg, k) for k in TrainSettings.model_fields} == {
        **dict(defaults), "out_dir": (tmp_path / "run").resolve()}


def test_train_gives_the_agent_every_setting_by_its_flag(launched, tmp_path, monkeypatch):
    from rudder_agent import preflight

    monkeypatch.setattr(preflight, "controller", lambda cfg: None)  # no Ollama server here
    result = CliRunner().invoke(rudder_app(), [
        "train", "--out", str(tmp_path / "run"), "--controller", "llm", "--model", "ollama:m", "--cot",
        "--fallback", "rule", "--llm-threads", "3", "--llm-timeout", "7.5", "--llm-duty-cycle", "0.25",
        "--llm-swap-test", "off", "--no-llm-whatif", "--sync", "--policy", "decay", "--gamma", "0.9"])
    assert result.exit_code == 0, result.output
    (cfg,) = launched
    assert cfg.buffer.controller == AgentConfig(model="ollama:m", cot=True, fallback="rule", n_threads=3,
                                                timeout_s=7.5, duty_cycle=0.25, swap_test="off", whatif=False)
    assert (cfg.buffer.mode, cfg.buffer.policy.name, cfg.buffer.scoring.gamma) == ("sync", "decay", 0.9)


def test_a_bad_value_is_refused_whichever_controller_runs(launched, tmp_path):
    result = CliRunner().invoke(rudder_app(), ["train", "--out", str(tmp_path / "run"), "--controller", "fixed",
                                               "--llm-swap-test", "sometimes"])
    assert result.exit_code == 2 and "error: --llm-swap-test: Input should be 'auto', 'on' or 'off'" in result.output
    assert launched == []


def test_compare_passes_gnn_and_agent_settings_by_name(launched, tmp_path):
    result = CliRunner().invoke(rudder_app(), ["compare", "--out", str(tmp_path / "cmp"), "--hidden", "64",
                                               "--lr", "0.01", "--fallback", "rule", "--llm-threads", "3",
                                               "--epochs", "2"])
    assert result.exit_code == 0, result.output
    ((base, values),) = launched
    assert base.gnn == GNNConfig(hidden=64, lr=0.01) and base.epochs == 2
    assert BufferConfig.from_values({**values, "controller": "llm"}).controller == AgentConfig(fallback="rule",
                                                                                             n_threads=3)


def test_the_llm_variant_is_the_agents_configuration():
    cfg = BufferConfig.from_values({"controller": "llm", "model": "ollama:m", "guard": False})
    assert type(cfg.controller) is AgentConfig and cfg.controller.guard is False
    assert BufferConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_values_round_trip_and_a_tag_picks_another_variant():
    cfg = BufferConfig.from_values({"controller": "massivegnn", "period": 4, "policy": "lfu", "delta": 2.0})
    assert BufferConfig.from_values(cfg.values()) == cfg
    llm = cfg.with_values({"controller": "llm", "model": "ollama:m"})
    assert (llm.controller.model, llm.policy.name, llm.scoring.delta) == ("ollama:m", "lfu", 2.0)
    assert llm.with_values({"controller": "massivegnn"}).controller.period == 32  # the variant's own default


def test_studio_reads_each_flagged_agent_setting_from_its_variable():
    environ = {"RUDDER_AGENT_MODEL": "ollama:m", "RUDDER_AGENT_PROMPT": "v1", "RUDDER_AGENT_COT": "1",
               "RUDDER_AGENT_N_THREADS": "2", "RUDDER_AGENT_GUARD": "0"}  # the guard has no flag: not read
    assert AgentConfig.from_environ(environ) == AgentConfig(model="ollama:m", prompt_version="v1", cot=True,
                                                            n_threads=2)
    assert AgentConfig.from_environ({}) == AgentConfig()


def test_backend_options_come_from_the_agent_config():
    agent = AgentConfig(cot=True, n_threads=4, timeout_s=9.0, seed=7, retries=2, ollama_host="box", swap_test="on")
    options = agent.backend_options()
    assert {f.name: getattr(options, f.name) for f in fields(BackendOptions)} == {
        "schema": answer_schema(True), "timeout_s": 9.0, "retries": 2, "seed": 7, "max_tokens": agent.answer_tokens,
        "n_threads": 4, "ollama_host": "box", "top_logprobs": SWAP_TEST_TOP_LOGPROBS}
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(BackendOptions))  # no defaults


RUN = {"dataset": "cora", "parts": 2, "part_method": "metis", "part_config": "/p/cora.json", "graph_name": "cora",
       "epochs": 3, "batch_size": 1000, "fanouts": [10, 25], "eval_batch_size": 2000, "seed": 0, "trace": True,
       "trace_only": False, "out_dir": "/runs/old", "network": "loopback", "link_rate": "1gbit", "verify": False}
FLAT = {"controller": "llm", "fraction": 0.25, "delta": 1.0, "gamma": 0.95, "tau": None, "period": 32,
        "mode": "async", "prompt_version": "v1", "cot": False, "fallback": "skip", "llm_threads": 1,
        "llm_timeout_s": 30.0, "classifier_path": None, "finetune_every": 0}
OLDER_SHAPES = {  # config.json as each earlier version of rudder wrote it (version 1: no version key)
    "flat buffer": {**RUN, "gnn": {"hidden": 128, "dropout": 0.5, "lr": 0.01}, "fail_at_step": None,
                    "buffer": {**FLAT, "policy": "lfu", "lookahead": 4, "llm_model": "scripted:answers.jsonl",
                               "llm_whatif": False, "llm_min_difference_pct": 1.0, "llm_duty_cycle": 0.5,
                               "llm_swap_test": "on"}},
    "before the keep policy, swap test a flag": {
        **RUN, "gnn": {"hidden": 128, "dropout": 0.5, "lr": 0.01}, "fail_at_step": None,
        "buffer": {**FLAT, "llm_model": "scripted:answers.jsonl", "llm_swap_test": True}},
    "model for gnn and llm_model": {**RUN, "model": {"hidden": 128, "dropout": 0.5, "lr": 0.01}, "fail_at_step": 3,
                                    "buffer": {**FLAT, "model": "scripted:answers.jsonl"}},
}


@pytest.mark.parametrize("shape", sorted(OLDER_SHAPES))
def test_a_config_file_of_each_older_shape_loads_as_it_ran(shape, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(OLDER_SHAPES[shape]))
    cfg = read_run_config(path)
    llm = cfg.buffer.controller
    assert cfg.gnn == GNNConfig(hidden=128, lr=0.01) and cfg.version == CONFIG_VERSION
    assert (llm.model, llm.prompt_version, llm.timeout_s) == ("scripted:answers.jsonl", "v1", 30.0)
    if shape == "flat buffer":
        assert (cfg.buffer.policy.name, cfg.buffer.lookahead) == ("lfu", 4)
        assert (llm.whatif, llm.min_difference_pct, llm.duty_cycle, llm.swap_test) == (False, 1.0, 0.5, "on")
    else:
        assert cfg.buffer.policy.name == "decay"  # runs recorded before there was a keep policy used decay
    if shape.startswith("before"):
        assert llm.swap_test == "on"
    dumped = json.loads(cfg.model_dump_json())
    assert dumped["version"] == CONFIG_VERSION and "fail_at_step" not in dumped and "model" not in dumped
    assert TrainConfig.model_validate(dumped) == cfg and upgrade(dumped) == dumped  # written now, read as is


def test_an_old_trace_meta_loads(tmp_path):
    facts = {"dataset": "cora", "num_nodes": 10, "num_edges": 20, "num_parts": 2, "partition": 0, "local_nodes": 5,
             "halo_nodes": 5, "capacity": 2, "total_minibatches": 4, "feature_dim": 4}
    meta = {"rank": 0, "partition": 0, "part_bounds": [0, 5, 10], "capacity": 2, "halo_nodes": 5, "feature_dim": 4,
            "row_bytes": 16, "minibatches_per_epoch": 4, "facts": facts,
            "config": OLDER_SHAPES["model for gnn and llm_model"], "warm_ids": [1, 2]}
    path = tmp_path / "trace-rank0.meta.json"
    path.write_text(json.dumps(meta))
    loaded = read_trace_meta(path)
    assert loaded.config.gnn.hidden == 128 and loaded.config.buffer.controller.model == "scripted:answers.jsonl"


def test_old_and_new_name_together_is_an_error_not_a_silent_choice():
    with pytest.raises(ValueError, match="model"):
        upgrade({**RUN, "buffer": {"llm_model": "ollama:a", "model": "ollama:b"}})
    with pytest.raises(ValueError, match="gnn"):
        upgrade({**RUN, "gnn": {}, "model": {}})


def test_a_newer_config_is_refused_not_misread():
    with pytest.raises(ValueError, match="newer"):
        upgrade({**RUN, "version": CONFIG_VERSION + 1})


def test_old_override_names_are_read_under_the_new_ones():
    assert current_values({"llm_model": "ollama:m", "period": 4, "llm_swap_test": False}) == {
        "model": "ollama:m", "period": 4, "swap_test": "off"}
    assert current_values({"model": "ollama:m"}) == {"model": "ollama:m"}
    with pytest.raises(ValidationError):
        BufferConfig.from_values({"controller": "llm", "timeout_s": 0})


def test_a_shared_buffer_refuses_a_window_its_trainers_cannot_share_at_the_top():
    """The trainers sharing a machine's buffer look ahead together: W x T positions, at most 32. Without a buffer
    (`none`) or with a buffer per trainer, any T is fine."""
    import pytest as _pytest
    from pydantic import ValidationError

    from rudder_agent.config import TrainSettings
    from rudder_agent.settings.buffer import BufferConfig

    fixed = BufferConfig.from_values({"controller": "fixed"})
    assert TrainSettings(out_dir="x", trainers_per_machine=4, buffer=fixed).shares_buffer
    with _pytest.raises(ValidationError, match="--lookahead .8. x --trainers-per-machine .5. must be at most 32"):
        TrainSettings(out_dir="x", trainers_per_machine=5, buffer=fixed)
    assert not TrainSettings(out_dir="x", trainers_per_machine=5).shares_buffer  # `none`: no buffer
    own = fixed.with_values({"scope": "trainer"})
    assert not TrainSettings(out_dir="x", trainers_per_machine=5, buffer=own).shares_buffer
