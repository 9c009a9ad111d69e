"""The launcher under failure: a dying server, its run timeout, Ctrl-C inside network namespaces.

Each ends `rudder train` with a clear message and a non-zero exit, and leaves no process, shared
memory or namespace behind. Waiting for a file is a hang guard only; no elapsed time is asserted.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rudder_agent.cluster.netns import availability
from tests.integration.helpers import (ROLES, STOPPED, TINY, assert_no_leftovers, cluster_record, finish, links,
                                       namespaces, rudder, start_rudder, wait_for_file)

pytestmark = pytest.mark.integration


def test_a_killed_server_fails_the_run_and_names_it(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "server-dies"
    proc = start_rudder("train", *TINY, "--epochs", "50", "--out", str(out))
    wait_for_file(out / "metrics-rank0.jsonl", proc)  # training is under way
    os.kill(cluster_record(out)["pids"]["server-0"], signal.SIGKILL)
    _, err = finish(proc)
    assert proc.returncode == 1
    assert "error: server-0 failed (exit code -9)" in err
    cluster = assert_no_leftovers(out)
    assert cluster["exit_codes"]["server-0"] == -signal.SIGKILL
    assert "server-0" not in cluster["stopped_by_launcher"]
    assert cluster["exit_codes"]["server-1"] in STOPPED and "server-1" in cluster["stopped_by_launcher"]
    assert not (out / "summary.json").exists()


def test_the_run_timeout_stops_everything_with_a_clear_error(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "timeout"
    proc = rudder("train", *TINY, "--epochs", "50", "--timeout", "1", "--out", str(out), timeout=180)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        "error: the run did not finish within 1 s (--timeout); every process was stopped"
    cluster = assert_no_leftovers(out)
    # 50 epochs cannot end within 1 s: every process was still running and the launcher ended each one
    assert set(cluster["stopped_by_launcher"]) == ROLES
    assert set(cluster["exit_codes"].values()) <= STOPPED
    assert not (out / "summary.json").exists()


@pytest.mark.skipif(availability() is not None, reason=str(availability()))
def test_ctrl_c_inside_namespaces_removes_them(tmp_path: Path, isolated_cache) -> None:
    ns_before, links_before = namespaces(), links()
    out = tmp_path / "netns-interrupted"
    proc = start_rudder("train", *TINY, "--epochs", "50", "--network", "netns", "--out", str(out))
    wait_for_file(out / "metrics-rank0.jsonl", proc)
    made = namespaces() - ns_before
    assert len(made) == 2, made  # one per machine, up while training runs
    tag = next(iter(made))[:-2]  # "<tag>m0" -> "<tag>"
    assert {f"{tag}br"} <= links() - links_before
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc)
    assert proc.returncode == 130
    assert "interrupted: every process was stopped" in err
    cluster = assert_no_leftovers(out)
    assert set(cluster["stopped_by_launcher"]) == ROLES
    assert namespaces() == ns_before
    assert links() == links_before
