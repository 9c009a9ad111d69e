"""Each controller checks what it needs in its own ``preflight`` hook, naming the setting at fault."""

from __future__ import annotations

import subprocess
import threading

import pytest

from rudder_agent import preflight
from rudder_agent.config import BufferConfig
from rudder_agent.errors import SettingError
from rudder_agent.registry import LIVE, controller_class


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


def test_good_settings_pass_and_start_nothing(tmp_path, monkeypatch):
    """Preflight is a check, not a start: no process (the embedded model's server above all), no thread, no
    file, for every live controller that needs no trained artefact (the classifier's: test_preflight.py).
    Every process and thread start is recorded, so one started and stopped again within the call is seen too."""
    script = tmp_path / "answers.jsonl"
    script.write_text('"skip"\n')
    monkeypatch.chdir(tmp_path)
    started: list[str] = []
    popen_init, thread_start = subprocess.Popen.__init__, threading.Thread.start
    monkeypatch.setattr(subprocess.Popen, "__init__",
                        lambda self, args, *a, **k: started.append(f"process {args}") or popen_init(self, args, *a, **k))
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(f"thread {self.name}") or thread_start(self))
    files = sorted(tmp_path.rglob("*"))
    for cfg in (BufferConfig(controller="none"), BufferConfig(controller="fixed"), BufferConfig(controller="massivegnn"),
                BufferConfig(controller="llm", llm_model=f"scripted:{script}"),
                BufferConfig(controller="llm", llm_model="llamacpp:smollm2-135m")):
        assert controller_class(cfg.controller).preflight(cfg) is None
    assert started == []
    assert sorted(tmp_path.rglob("*")) == files


def test_replay_preflight_checks_the_merged_settings():
    recorded = BufferConfig(controller="fixed")
    with pytest.raises(ValueError, match="llm_timeout_s"):
        controller_class("llm").preflight_replay(recorded, llm_timeout_s=0)
    with pytest.raises(SettingError) as err:
        controller_class("oracle").preflight_replay(recorded, horizon=0)
    assert err.value.field == "horizon"
    controller_class("recorded").preflight_replay(recorded)


@pytest.mark.parametrize("name", LIVE)
def test_the_command_line_asks_each_controller_its_own_hook(name, monkeypatch):
    """`train` and `compare` check a controller through its class's hook, whichever controller it is."""
    seen = []
    cls = controller_class(name)
    monkeypatch.setattr(cls, "preflight", classmethod(lambda c, cfg: seen.append((c, cfg))))
    cfg = BufferConfig(controller=name)
    preflight.controller(cfg)
    assert seen == [(cls, cfg)]


def test_an_option_is_named_by_the_running_command():
    from rudder_agent.preflight import option_for

    assert option_for("llm_model") == "--llm-model"  # outside a command: the field's own spelling
    assert SettingError("llm_model", "bad").for_option("--model").args == ("--model: bad",)
