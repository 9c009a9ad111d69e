"""Each controller checks what it needs in its own ``preflight`` hook, naming the setting at fault."""

from __future__ import annotations

import subprocess
import threading

import pytest

from rudder_agent import preflight
from rudder_agent.config import BufferConfig
from rudder_agent.errors import SettingError
from rudder_agent import registry
from rudder_agent.registry import LIVE, controller_class, preflight_replay


@pytest.mark.parametrize("settings, field", [
    ({"controller": "llm", "prompt_version": "v9"}, "prompt_version"),
    ({"controller": "llm", "model": "ollama:"}, "model"),
    ({"controller": "llm", "model": "scripted:/nonexistent.jsonl"}, "model"),
    ({"controller": "classifier"}, "classifier_path"),
])
def test_a_controller_names_the_setting_it_cannot_use(settings, field):
    cfg = BufferConfig.from_values(settings)
    with pytest.raises(SettingError) as err:
        registry.preflight(cfg.controller)
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
    for values in ({"controller": "none"}, {"controller": "fixed"}, {"controller": "massivegnn"},
                   {"controller": "llm", "model": f"scripted:{script}"},
                   {"controller": "llm", "model": "llamacpp:smollm2-135m"}):
        cfg = BufferConfig.from_values(values)
        assert registry.preflight(cfg.controller) is None
    assert started == []
    assert sorted(tmp_path.rglob("*")) == files


def test_replay_preflight_checks_the_merged_settings():
    recorded = BufferConfig.from_values({"controller": "fixed"})
    with pytest.raises(ValueError, match="timeout_s"):
        preflight_replay(controller_class("llm"), recorded, timeout_s=0)
    with pytest.raises(SettingError) as err:
        preflight_replay(controller_class("oracle"), recorded, horizon=0)
    assert err.value.field == "horizon"
    preflight_replay(controller_class("recorded"), recorded)


@pytest.mark.parametrize("name", LIVE)
def test_the_command_line_asks_each_controller_its_own_hook(name, monkeypatch):
    """`train` and `compare` check a controller through its class's hook, whichever controller it is."""
    seen = []
    cls = controller_class(name)
    monkeypatch.setattr(cls, "preflight", classmethod(lambda c, cfg: seen.append((c, cfg))), raising=False)
    cfg = BufferConfig.from_values(dict(controller=name))
    preflight.controller(cfg)
    assert seen == [(cls, cfg.controller)]


def test_an_option_is_named_by_the_running_command():
    from rudder_agent.preflight import option_for

    assert option_for("timeout_s") == "--timeout-s"  # outside a command: the field's own spelling
    assert SettingError("timeout_s", "bad").for_option("--llm-timeout").args == ("--llm-timeout: bad",)
