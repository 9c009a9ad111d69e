"""`rudder train --hosts`: every role started over a real ssh on its own host (an emulated machine with its own
OpenSSH server, address and /dev/shm), the same rows as the run launched locally, and every process on every host
stopped, with nothing left in any host's /dev/shm, however the run ends."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from rudder_agent.cluster.fetch import CORRUPT_ENV
from rudder_agent.cluster.isolation import live_prefixes
from rudder_agent.cluster.netns import availability
from rudder_agent.records.run_summary import read_summary
from rudder_agent.records.trace import read_trace
from tests.integration.helpers import alive, cluster_record, finish, minibatches, rudder, start_rudder, wait_for_file
from tests.integration.reference import T2_DECAY, THEIRS_SCRIPT_ARGS
from tests.integration.ssh_hosts import SshHosts, unavailable
from tests.integration.test_user_script import EXAMPLE, assert_same_rows, their_args

pytestmark = [pytest.mark.integration, pytest.mark.host_wide,
              pytest.mark.skipif(availability() is not None, reason=str(availability())),
              pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))]

ROLES = {"server-0", "server-1", "trainer-0", "trainer-1", "trainer-2", "trainer-3"}


def over_ssh(hosts: SshHosts, out: Path) -> list[str]:
    return ["train", *T2_DECAY, "--hosts", str(hosts.hosts_file), "--ssh-config", str(hosts.ssh_config),
            "--out", str(out)]


def assert_nothing_left(hosts: SshHosts, out: Path) -> dict:
    """No process of the run alive on any host, and every host's /dev/shm empty."""
    cluster = cluster_record(out)
    assert set(cluster["pids"]) == ROLES and set(cluster["exit_codes"]) == ROLES, cluster
    assert [role for role, pid in cluster["pids"].items() if alive(pid)] == []  # the local ssh clients
    assert cluster["shm_prefix"] not in live_prefixes()  # the remote roles carry the run's prefix in their env
    assert [hosts.shm(k) for k in range(hosts.machines)] == [[]] * hosts.machines
    return cluster


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    with SshHosts(tmp_path_factory.mktemp("ssh")) as made:
        yield made


def test_a_run_over_ssh_fetches_exactly_the_rows_of_the_same_run_launched_locally(reference, hosts, tmp_path):
    local = reference("fixed-decay-t2")
    proc = rudder(*over_ssh(hosts, tmp_path / "ssh"), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    remote = tmp_path / "ssh"
    for rank in range(4):
        a, b = list(read_trace(local / f"trace-rank{rank}.rtf")), list(read_trace(remote / f"trace-rank{rank}.rtf"))
        assert len(a) == len(b) == 10 and all(np.array_equal(ia, ib) for (_, ia), (_, ib) in zip(a, b))
        counts = lambda run: [(m["step"], m["hits"], m["comm_rows"], m["loss"]) for m in minibatches(run, rank)]  # noqa: E731
        assert counts(remote) == counts(local)
    s = read_summary(remote)
    assert s.network == "ssh" and s.verified_rows == s.input_nodes > 0
    assert s.comm_rows == read_summary(local).comm_rows
    assert "machine_id_from=address" in (remote / "logs" / "trainer-3.log").read_text()
    assert_nothing_left(hosts, remote)


def test_a_users_dgl_script_over_ssh_fetches_exactly_the_rows_of_the_builtin_trainer(reference, hosts, tmp_path):
    """examples/distdgl_graphsage.py (plain dgl.distributed.initialize, its own arguments) on each host over ssh."""
    run = tmp_path / "script"
    proc = rudder("train", *their_args(reference.theirs), "--hosts", str(hosts.hosts_file), "--ssh-config",
                  str(hosts.ssh_config), "--out", str(run), "--trainer", str(EXAMPLE), *THEIRS_SCRIPT_ARGS,
                  timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_same_rows(run, reference("builtin-theirs"))
    assert read_summary(run).network == "ssh"
    assert [hosts.shm(k) for k in range(hosts.machines)] == [[]] * hosts.machines


def test_ctrl_c_stops_every_process_on_every_host(hosts, tmp_path):
    out = tmp_path / "interrupted"
    proc = start_rudder(*over_ssh(hosts, out))
    wait_for_file(out / "metrics-rank3.jsonl", proc)
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc)
    assert proc.returncode == 130, err
    assert not (out / "summary.json").exists()
    assert_nothing_left(hosts, out)


def test_a_failing_host_stops_every_process_on_every_host_and_is_named(tmp_path):
    """Host 0 serves a corrupted row (its sshd sets the testing variable): its trainer fails mid-run."""
    with SshHosts(tmp_path / "hosts", sshd_env={0: {CORRUPT_ENV: "2"}}) as bad:
        out = tmp_path / "failed"
        proc = rudder(*over_ssh(bad, out), timeout=300)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"error: trainer-0 on host {bad.network.ip(0)} failed (exit code 1)" in proc.stderr
        assert "ServedRowMismatch" in proc.stderr
        cluster = assert_nothing_left(bad, out)
        assert cluster["exit_codes"]["trainer-0"] == 1
        assert {"server-0", "server-1"} <= set(cluster["stopped_by_launcher"])  # servers never end by themselves


def test_an_unreachable_host_is_named_and_the_others_are_stopped(tmp_path):
    with SshHosts(tmp_path / "hosts", down=frozenset({1})) as half:
        out = tmp_path / "unreachable"
        proc = rudder(*over_ssh(half, out), timeout=300)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"on host {half.network.ip(1)} failed (exit code 255)" in proc.stderr
        assert "Connection refused" in proc.stderr
        assert_nothing_left(half, out)
