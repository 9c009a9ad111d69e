"""Where data and caches are found: the environment first, then the checkout, then the per-user folders."""

from __future__ import annotations

from pathlib import Path

from rudder_agent import paths


def test_cache_defaults_to_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RUDDER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "xdg" / "rudder" and (tmp_path / "xdg" / "rudder").is_dir()
    monkeypatch.setenv("RUDDER_CACHE", str(tmp_path / "mine"))
    assert paths.cache_dir() == tmp_path / "mine"


def test_shared_data_beside_a_checkout_or_in_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RUDDER_DATA", raising=False)
    assert paths.checkout_root() == paths.PROJECT_ROOT  # these tests run from a checkout
    assert paths.shared_data_dir() == paths.PROJECT_ROOT.parent / "shared" / "data"
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path / "site-packages")  # what an installed wheel sees
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.checkout_root() is None
    assert paths.shared_data_dir() == tmp_path / "xdg" / "rudder" / "data"
    monkeypatch.setenv("RUDDER_DATA", str(tmp_path / "data"))
    assert paths.shared_data_dir() == Path(tmp_path / "data")


def test_the_prompt_templates_live_in_the_package():
    assert paths.PROMPTS_DIR == paths.PACKAGE_DIR / "prompts"
    assert sorted(p.name for p in (paths.PROMPTS_DIR / "decision" / "v1").iterdir()) == ["system.md", "user.md"]
    assert not (paths.PROJECT_ROOT / "prompts").exists() and not (paths.PROJECT_ROOT / "graphs").exists()  # one copy
