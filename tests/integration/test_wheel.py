"""The installable wheel: built from the sources alone, installed without the checkout, it trains with the agent.

How the fresh environment is made, and why:
- The wheel is built from a copy of pyproject.toml, README.md and rudder_agent/ only, with
  `pip wheel --no-deps --no-build-isolation` (offline: the locked setuptools of this venv builds it),
  so nothing else in the checkout can leak into it and the checkout gets no build/ or egg-info.
- A new venv (`python -m venv --without-pip`) gets the wheel with `pip --python <venv> install --no-deps
  --no-index`: this pip installs into that interpreter, whose console script `rudder` then starts it.
- Only then is one `.pth` line added there naming this venv's site-packages, so the locked packages
  (torch, dgl, langgraph, ...) are importable without a second install. The line is a plain path: the
  .pth files of that folder (this checkout's editable install) are not run, and the venv's own
  site-packages comes first, so `rudder_agent` is the wheel's. The test asserts all of this.
- `rudder train` runs from a temporary directory with no PYTHONPATH and no RUDDER_CACHE, so the
  cache must come from platformdirs ($XDG_CACHE_HOME here) and the prompt templates from the wheel.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from rudder_agent.paths import PROJECT_ROOT, shared_data_dir

pytestmark = pytest.mark.integration

REPLACE = {"decision": "replace", "hits": "increase", "comm": "decrease", "reason": "stale entries"}
SKIP = {"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "stable"}
PACKAGED = ["rudder_agent/prompts/decision/v1/system.md", "rudder_agent/prompts/decision/v1/user.md",
            "rudder_agent/prompts/decision/v2/system.md", "rudder_agent/prompts/decision/v2/user.md",
            "rudder_agent/prompts/README.md", "rudder_agent/agent/decision_graph.py", "rudder_agent/llm/serve_gguf.py"]


def run(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, src / name)
    shutil.copytree(PROJECT_ROOT / "rudder_agent", src / "rudder_agent",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
        "-w", dist, src, timeout=300)
    (path,) = dist.glob("rudder_agent-*.whl")
    return path


def test_the_wheel_holds_the_templates_and_the_graph(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGED) <= names
    assert not any(n.startswith(("prompts/", "graphs/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "rudder = rudder_agent.cli:app" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_wheel_trains_with_the_agent_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel,
        timeout=300)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "locked_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUDDER_CACHE", "VIRTUAL_ENV")}
    env.update(RUDDER_DATA=str(shared_data_dir()), XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
               XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    where = json.loads(run(python, "-c", "import json, rudder_agent.paths as p; print(json.dumps("
                                         "[p.__file__, str(p.PROMPTS_DIR), str(p.cache_dir()), p.checkout_root()]))",
                           cwd=work, env=env).stdout)
    module, prompts, cache, checkout = where
    assert Path(module).is_relative_to(venv) and Path(prompts) == site / "rudder_agent" / "prompts"
    assert checkout is None and Path(cache) == tmp_path / "xdg-cache" / "rudder"

    answers = work / "answers.jsonl"
    answers.write_text(f"{json.dumps(REPLACE)}\n{json.dumps(SKIP)}\n")
    proc = subprocess.run([str(venv / "bin" / "rudder"), "train", "--controller", "llm", "--dataset", "cora",
                           "--parts", "2", "--epochs", "1", "--model", f"scripted:{answers}", "--out", "run"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    run_dir = work / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["controller"] == "llm" and summary["epochs"] == 1 and summary["minibatches"] > 0
    folder = site / "rudder_agent" / "prompts" / "decision" / "v2"  # the default prompt
    packaged = hashlib.sha256((folder / "system.md").read_bytes() + b"\0" + (folder / "user.md").read_bytes())
    assert summary["agent"]["prompt_version"] == "v2" and summary["agent"]["prompt_sha256"] == packaged.hexdigest()
    for rank in (0, 1):  # each trainer loaded the wheel's templates
        assert f"prompts={folder}" in (run_dir / "logs" / f"trainer-{rank}.log").read_text()
    assert list((tmp_path / "xdg-cache" / "rudder" / "partitions").glob("cora-2p-metis/*.json"))
    assert not (work / ".rudder-cache").exists() and not (PROJECT_ROOT / "run").exists()
