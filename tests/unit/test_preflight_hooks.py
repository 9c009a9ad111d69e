"""Each controller checks what it needs in its own ``preflight`` hook, naming the setting at fault."""

from __future__ import annotations

import pytest

from rudder_agent.config import BufferConfig
from rudder_agent.errors import SettingError
from rudder_agent.registry import CONTROLLERS, controller_class


@pytest.mark.parametrize("settings, field", [
    ({"controller": "llm", "prompt_version": "v9"}, "prompt_version"),
    ({"controller": "llm", "llm_model": "ollama:"}, "llm_model"),
    ({"controller": "llm", "llm_model": "scripted:/nonexistent.jsonl"}, "llm_model"),
    ({"controller": "classifier"}, "classifier_path"),
])
def test_a_controller_names_the_setting_it_cannot_use(settings, field):
    cfg = BufferConfig(**settings)
    with pytest.raises(SettingError) as err:
        controller_class(cfg.controller).preflight(cfg)
    assert err.value.field == field and err.value.exit_code == 2


def test_good_settings_pass_and_start_nothing(tmp_path):
    script = tmp_path / "answers.jsonl"
    script.write_text('"skip"\n')
    for name in ("none", "fixed", "massivegnn"):
        controller_class(name).preflight(BufferConfig(controller=name))
    controller_class("llm").preflight(BufferConfig(controller="llm", llm_model=f"scripted:{script}"))


def test_replay_preflight_checks_the_merged_settings():
    recorded = BufferConfig(controller="fixed")
    with pytest.raises(ValueError, match="llm_timeout_s"):
        controller_class("llm").preflight_replay(recorded, llm_timeout_s=0)
    with pytest.raises(SettingError) as err:
        controller_class("oracle").preflight_replay(recorded, horizon=0)
    assert err.value.field == "horizon"
    controller_class("recorded").preflight_replay(recorded)


def test_every_controller_has_the_hooks():
    for name in CONTROLLERS:
        cls = controller_class(name)
        assert callable(cls.preflight) and callable(cls.preflight_replay)


def test_an_option_is_named_by_the_running_command():
    from rudder_agent.preflight import option_for

    assert option_for("llm_model") == "--llm-model"  # outside a command: the field's own spelling
    assert SettingError("llm_model", "bad").for_option("--model").args == ("--model: bad",)
