"""User errors through the real `rudder` command: one clear line, no traceback, nothing started or partitioned.

Each run gets a private, empty RUDDER_CACHE: if it stays empty, nothing was partitioned; if the run
directory is absent (or untouched), no server or trainer was started (the launcher writes its logs
there before it starts anything).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.integration.helpers import TINY, links, namespaces, rudder

pytestmark = pytest.mark.integration

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def untouched_cache(cache: Path) -> bool:
    return not cache.exists() or not any(cache.iterdir())


@pytest.fixture
def shared_dir():
    """A directory an unprivileged user may write to (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="rudder-cli-errors-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_an_existing_run_is_refused_and_left_untouched(tmp_path: Path) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    (out / "logs").mkdir(parents=True)
    (out / "summary.json").write_text('{"epochs": 3}\n')
    (out / "logs" / "trainer-0.log").write_text("an earlier run\n")
    before = snapshot(out)
    proc = rudder("train", *TINY, "--epochs", "1", "--out", str(out), env={**os.environ, "RUDDER_CACHE": str(cache)})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {out} already holds a run; pass --overwrite or choose another --out"]
    assert snapshot(out) == before
    assert untouched_cache(cache)


@pytest.mark.parametrize("fanouts", ["10,x", "0,25", "10,-1", ","])
def test_bad_fanouts_exit_2_with_one_line_before_any_work(tmp_path: Path, fanouts: str) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    proc = rudder("train", *TINY, "--fanouts", fanouts, "--out", str(out),
                  env={**os.environ, "RUDDER_CACHE": str(cache), "COLUMNS": "200"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    message = f"Invalid value for '--fanouts': expected comma-separated positive integers like 10,25, got {fanouts!r}"
    assert [line for line in proc.stderr.splitlines() if "Invalid value" in line] == \
        [line for line in proc.stderr.splitlines() if message in line]
    assert len([line for line in proc.stderr.splitlines() if message in line]) == 1
    assert not out.exists()
    assert untouched_cache(cache)


def test_runs_as_nobody_really_are_unprivileged(shared_dir: Path) -> None:
    proc = subprocess.run([*NOBODY, sys.executable, "-c", "import os; print(os.geteuid(), os.getegid())"],
                          capture_output=True, text=True)
    assert proc.stdout.split() == ["65534", "65534"], proc.stderr


@pytest.mark.parametrize("command", ["train", "compare"])
def test_netns_without_root_is_refused_before_anything_starts(shared_dir: Path, command: str) -> None:
    out, cache = shared_dir / "run", shared_dir / "cache"
    env = {**os.environ, "RUDDER_CACHE": str(cache), "NUMBA_CACHE_DIR": str(shared_dir / "numba"),
           "HOME": str(shared_dir)}
    ns_before, links_before = namespaces(), links()
    extra = ["--controllers", "none"] if command == "compare" else []
    proc = rudder(command, *TINY, "--epochs", "1", "--network", "netns", "--out", str(out), *extra,
                  env=env, prefix=NOBODY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: the emulated network needs root (network namespaces); run as root or use --network loopback"]
    assert not out.exists()
    assert untouched_cache(cache)
    assert namespaces() == ns_before and links() == links_before
