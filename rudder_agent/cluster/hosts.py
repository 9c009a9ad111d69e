"""The machines of a cluster reached over ssh: a hosts file in DGL's ip_config format, and ssh commands to them.

One line per machine, ``ADDRESS [PORT]`` (the port the machine's DistDGL server listens on; a free one is
chosen when it is left out), blank lines and ``#`` comments allowed. Line k is machine k: it serves partition
k, and DGL on that host finds its machine id by matching its own address against these lines, as DGL's
``tools/launch.py`` arranges it. Every host must see the run directory, the partition and this Python
environment at the same paths (a shared filesystem), as with DGL's launch tool.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from pathlib import Path

import psutil

from rudder_agent.errors import SettingError

SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5",
               "-o", "ServerAliveCountMax=3"]
"""Never prompt (a run has no terminal to answer on); give up on a dead host in seconds, not minutes."""


@dataclass(frozen=True)
class Host:
    """One machine: the address its server is reached at, and that server's port (None: choose one)."""

    address: str
    port: int | None = None


def read_hosts(path: Path) -> list[Host]:
    """The hosts of ``path``; a malformed line is a SettingError naming the file and line."""
    try:
        text = path.read_text()
    except OSError as e:
        raise SettingError("hosts", f"cannot read {path} ({e.strerror or e})") from None
    hosts = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = f"{path}, line {number} ({raw.strip()!r})"
        if len(fields) > 2:
            raise SettingError("hosts", f"{where}: expected ADDRESS [PORT]")
        try:
            address = str(ipaddress.ip_address(fields[0]))
        except ValueError:
            raise SettingError("hosts", f"{where}: {fields[0]!r} is not an IP address (DGL matches hosts by "
                                        "address)") from None
        port = None
        if len(fields) == 2:
            if not fields[1].isdigit() or not 0 < int(fields[1]) < 65536:
                raise SettingError("hosts", f"{where}: the port must be a number in 1-65535")
            port = int(fields[1])
        hosts.append(Host(address, port))
    if not hosts:
        raise SettingError("hosts", f"{path} names no host: write one ADDRESS [PORT] per line")
    if len({h.address for h in hosts}) < len(hosts):
        raise SettingError("hosts", f"{path} names an address twice: one line per machine (its trainers are "
                                    "--trainers-per-machine)")
    return hosts


def ssh_command(host: Host, command: list[str], env: dict[str, str], cwd: Path,
                ssh_config: Path | None = None) -> list[str]:
    """The local argv that runs ``command`` on ``host`` in ``cwd`` with exactly the variables ``env``."""
    remote = f"cd {shlex.quote(str(cwd))} && exec env " + " ".join(
        [*(shlex.quote(f"{k}={v}") for k, v in sorted(env.items())), *map(shlex.quote, command)])
    config = ["-F", str(ssh_config)] if ssh_config else []
    return ["ssh", *config, *SSH_OPTIONS, host.address, remote]


def cluster_interface(ip_config: Path) -> str | None:
    """The network interface holding this host's address in ``ip_config`` (None: loopback, or none here).

    gloo (the trainers' gradient all-reduce) otherwise binds the address the host name resolves to, which
    need not be the one the cluster is reached at (a host with several networks, a network namespace).
    """
    addresses = {line.split()[0] for line in ip_config.read_text().splitlines() if line.strip()}
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.address in addresses and not a.address.startswith("127.") for a in addrs):
            return name
    return None
