"""The hosts file (DGL's ip_config format) and the ssh command lines built from it."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from rudder_agent.cluster.hosts import Host, cluster_interface, read_hosts, ssh_command
from rudder_agent.errors import SettingError


def test_one_machine_per_line_with_optional_ports_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("# two machines\n10.0.0.1 30050\n\n10.0.0.2   # no port: one is chosen\n")
    assert read_hosts(path) == [Host("10.0.0.1", 30050), Host("10.0.0.2", None)]


@pytest.mark.parametrize("text, words", [
    ("10.0.0.1 1 2\n", "line 1 ('10.0.0.1 1 2'): expected ADDRESS [PORT]"),
    ("10.0.0.1\nnode-b\n", "line 2 ('node-b'): 'node-b' is not an IP address"),
    ("10.0.0.1 99999\n", "the port must be a number in 1-65535"),
    ("# nothing\n\n", "names no host"),
    ("10.0.0.1\n10.0.0.1 4000\n", "names an address twice"),
])
def test_a_bad_hosts_file_names_its_line(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "hosts"
    path.write_text(text)
    with pytest.raises(SettingError) as err:
        read_hosts(path)
    assert err.value.field == "hosts" and words in err.value.message


def test_the_remote_command_runs_in_the_directory_with_exactly_the_given_variables(tmp_path: Path) -> None:
    """The remote shell receives one string: every argument and value survives its quoting, spaces and quotes too."""
    odd = tmp_path / "a dir 'quoted'"
    odd.mkdir()
    argv = ssh_command(Host("10.0.0.9"), ["python", "-c", "import os; print(os.getcwd(), os.environ['X'])"],
                       {"X": "it's a $value"}, odd, ssh_config=Path("/etc/cfg"))
    assert argv[:3] == ["ssh", "-F", "/etc/cfg"] and argv[-2] == "10.0.0.9" and "BatchMode=yes" in argv
    remote = argv[-1].replace("python", shlex.quote(__import__("sys").executable), 1)
    out = subprocess.run(["sh", "-c", remote], capture_output=True, text=True, check=True).stdout
    assert out == f"{odd} it's a $value\n"


def test_the_cluster_interface_is_the_one_holding_this_hosts_address(tmp_path: Path) -> None:
    ip_config = tmp_path / "ip_config.txt"
    ip_config.write_text("127.0.0.1 4000\n192.0.2.77 4000\n")  # loopback is never it; TEST-NET-1 is nobody's
    assert cluster_interface(ip_config) is None
