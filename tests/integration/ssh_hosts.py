"""Hosts reached over a real ssh: one emulated machine (network namespace, own address, own ``/dev/shm``) per host,
each with its own OpenSSH server, keys made for the test, and an ssh_config that reaches them without touching
the user's ``~/.ssh``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rudder_agent.cluster.netns import EmulatedNetwork

SSHD = Path("/usr/sbin/sshd")
SSH_PORT = 2222


def unavailable() -> str | None:
    """Why ssh hosts cannot be made here (None: they can)."""
    if not SSHD.exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "OpenSSH is not installed (make test installs openssh-server and openssh-client as root)"
    return None


@dataclass
class SshHosts:
    """``machines`` hosts; ``sshd_env[k]`` sets variables in every session of host k (sshd's SetEnv: a host
    that differs from the others); ``down`` hosts get no sshd (a host that cannot be reached)."""

    root: Path
    machines: int = 2
    sshd_env: dict[int, dict[str, str]] = field(default_factory=dict)
    down: frozenset[int] = frozenset()
    network: EmulatedNetwork = field(init=False)
    _sshd: list[subprocess.Popen] = field(default_factory=list)

    @property
    def hosts_file(self) -> Path:
        return self.root / "hosts.txt"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    def shm(self, k: int) -> list[Path]:
        """What is in host k's ``/dev/shm``."""
        return sorted(self.network.shm_dir(k).iterdir())

    def __enter__(self) -> SshHosts:
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        key, host_key = self.root / "id_ed25519", self.root / "host_ed25519"
        for k in (key, host_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
        (self.root / "authorized_keys").write_text((self.root / "id_ed25519.pub").read_text())
        self.network = EmulatedNetwork(self.machines, rate=None)
        self.network.setup()
        try:
            for k in range(self.machines):
                if k not in self.down:
                    self._start_sshd(k, host_key)
        except BaseException:
            self.__exit__()
            raise
        self.hosts_file.write_text("".join(f"{self.network.ip(k)}\n" for k in range(self.machines)))
        self.ssh_config.write_text("".join(
            f"Host {self.network.ip(k)}\n  User root\n  Port {SSH_PORT}\n  IdentityFile {key}\n"
            f"  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile {self.root / 'known_hosts'}\n"
            f"  LogLevel ERROR\n" for k in range(self.machines)))
        return self

    def _start_sshd(self, k: int, host_key: Path) -> None:
        config = self.root / f"sshd_config-{k}"
        setenv = " ".join(f"{name}={value}" for name, value in self.sshd_env.get(k, {}).items())
        config.write_text(
            f"Port {SSH_PORT}\nListenAddress {self.network.ip(k)}\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\nPasswordAuthentication no\n"
            f"PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPidFile {self.root / f'sshd-{k}.pid'}\n"
            + (f"SetEnv {setenv}\n" if setenv else ""))
        # -D: stays in the foreground as our child; the namespace's /dev/shm reaches every session it opens
        proc = subprocess.Popen([*self.network.exec_prefix(k), str(SSHD), "-D", "-f", str(config),
                                 "-E", str(self.root / f"sshd-{k}.log")], stdin=subprocess.DEVNULL)
        self._sshd.append(proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe = subprocess.run([*self.network.exec_prefix(k), "bash", "-c",
                                    f"exec 3<>/dev/tcp/{self.network.ip(k)}/{SSH_PORT}"],
                                   capture_output=True)
            if probe.returncode == 0:
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        log = (self.root / f"sshd-{k}.log").read_text() if (self.root / f"sshd-{k}.log").exists() else ""
        raise RuntimeError(f"sshd on host {k} did not start: {log}")

    def __exit__(self, *exc) -> None:
        for proc in self._sshd:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._sshd.clear()
        self.network.close()
