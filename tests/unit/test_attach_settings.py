"""What an attached trainer runs with: keyword settings, or the run `rudder train` started it in, never both
disagreeing."""

from __future__ import annotations

from pathlib import Path

import pytest

from rudder_agent.attach_settings import AttachSettings
from rudder_agent.config import GraphSource, TrainConfig
from rudder_agent.errors import RudderError
from rudder_agent.paths import RUN_CONFIG_ENV
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.controllers import FixedSettings, MassiveGNNSettings
from rudder_agent.settings.keep import Lfu


@pytest.fixture(autouse=True)
def outside_any_run(monkeypatch):
    for name in (RUN_CONFIG_ENV, "RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


def launched(monkeypatch, tmp_path: Path, rank: int = 1, **settings) -> TrainConfig:
    """This process as `rudder train` starts a trainer: the run's config.json named in the environment."""
    cfg = TrainConfig(out_dir=tmp_path, part_config=tmp_path / "g.json", graph_name="g", seed=5, verify=True,
                      trainers_per_machine=2, **settings)
    (tmp_path / "config.json").write_text(cfg.model_dump_json())
    monkeypatch.setenv(RUN_CONFIG_ENV, str(tmp_path / "config.json"))
    monkeypatch.setenv("RANK", str(rank))
    return cfg


def test_names_and_typed_settings_both_pick_a_variant() -> None:
    s = AttachSettings.resolve(controller="massivegnn", policy="lfu")
    assert s.buffer.controller == MassiveGNNSettings() and s.buffer.policy == Lfu()
    s = AttachSettings.resolve(controller=MassiveGNNSettings(period=7))
    assert s.buffer.controller.period == 7 and s.buffer.policy == BufferConfig().policy
    assert AttachSettings.resolve().buffer == BufferConfig()


def test_outside_a_run_the_defaults_come_from_the_launch_tools_environment(monkeypatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    s = AttachSettings.resolve()
    assert (s.rank, s.trainers_per_machine, s.verify, s.feat, s.seed, s.record, s.run) == (3, 4, False, "feat", None,
                                                                                           False, None)


def test_the_buffer_is_given_once() -> None:
    with pytest.raises(RudderError, match="give the buffer's settings once"):
        AttachSettings.resolve(buffer=BufferConfig(), controller="fixed")


def test_under_rudder_train_every_setting_not_given_is_the_runs(monkeypatch, tmp_path: Path) -> None:
    cfg = launched(monkeypatch, tmp_path, buffer=BufferConfig(controller=FixedSettings(), fraction=0.1),
                   own_graph=GraphSource(part_config=tmp_path / "theirs.json", feat_key="features"))
    s = AttachSettings.resolve()
    assert s.buffer == cfg.buffer and s.run == cfg
    assert (s.rank, s.trainers_per_machine, s.verify, s.seed, s.record, s.feat) == (1, 2, True, 5, True, "features")
    assert AttachSettings.resolve(feat="x", record=False).feat == "x"  # the script's own names win


def test_a_script_setting_that_differs_from_the_runs_is_refused_naming_both(monkeypatch, tmp_path: Path) -> None:
    launched(monkeypatch, tmp_path, buffer=BufferConfig(controller=FixedSettings()))
    assert AttachSettings.resolve(controller="fixed").buffer.controller == FixedSettings()  # agreeing is fine
    with pytest.raises(RudderError, match=r"sets the buffer's settings \(controller=llm\) .* sets controller=fixed"):
        AttachSettings.resolve(controller="llm")
    with pytest.raises(RudderError, match="trainers_per_machine=1 .* trainers_per_machine=2"):
        AttachSettings.resolve(trainers_per_machine=1)


def test_recording_needs_a_run() -> None:
    with pytest.raises(RudderError, match="record=True needs the run"):
        AttachSettings.resolve(record=True)
