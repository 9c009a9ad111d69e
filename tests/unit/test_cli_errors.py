"""User errors through the real `rudder` app: one clear line, no traceback, nothing started or partitioned.

Each run gets a private, empty RUDDER_CACHE: if it stays empty, nothing was partitioned; if the run
directory is absent (or untouched), no server or trainer was started (the launcher writes its logs
there before it starts anything). Bad settings of every kind: test_preflight.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rudder_agent.cli import app
from tests.integration.helpers import TINY


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def untouched_cache(cache: Path) -> bool:
    return not cache.exists() or not any(cache.iterdir())


def test_an_existing_run_is_refused_and_left_untouched(tmp_path: Path) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    (out / "logs").mkdir(parents=True)
    (out / "summary.json").write_text('{"epochs": 3}\n')
    (out / "logs" / "trainer-0.log").write_text("an earlier run\n")
    before = snapshot(out)
    result = CliRunner().invoke(app, ["train", *TINY, "--epochs", "1", "--out", str(out)],
                                env={"RUDDER_CACHE": str(cache)})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {out} already holds a run; pass --overwrite or choose another --out"]
    assert snapshot(out) == before
    assert untouched_cache(cache)


@pytest.mark.parametrize("fanouts", ["10,x", "0,25", "10,-1", ","])
def test_bad_fanouts_exit_2_with_one_line_before_any_work(tmp_path: Path, fanouts: str) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = CliRunner().invoke(app, ["train", *TINY, "--fanouts", fanouts, "--out", str(out)],
                                env={"RUDDER_CACHE": str(cache), "COLUMNS": "200"}, prog_name="rudder")
    assert result.exit_code == 2
    message = f"Invalid value for '--fanouts': expected comma-separated positive integers like 10,25, got {fanouts!r}"
    assert result.stderr.strip().splitlines() == [f"error: {message} (see `rudder train --help`)"], result.stderr
    assert not out.exists()
    assert untouched_cache(cache)
