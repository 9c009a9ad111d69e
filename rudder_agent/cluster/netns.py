"""An emulated cluster interconnect: one network namespace per machine, rate-limited links.

Machine k lives in namespace ``<tag>k`` with one veth link to a bridge in the root
namespace; every address is on a private /24 that only these namespaces use. With a rate
(``tc tbf``, both directions of every link), feature traffic costs what it would on a real
network. ``netem`` delays are not available in this kernel, so only bandwidth is limited.
Each machine also has a ``/dev/shm`` of its own (a tmpfs bind-mounted over it in every
process started there), as separate hosts have: DistDGL's shared-memory segments of one
machine are invisible to the others and to the host, and DGL finds each machine's id from
its address, with no shim. Needs root and iproute2; :func:`availability` says why not otherwise.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rudder_agent.errors import RudderError
from rudder_agent.link import INNER_IF
from rudder_agent.log import get_logger

log = get_logger(__name__)

SHM_ROOT = Path("/run/rudder-shm")
"""Where each emulated machine's own ``/dev/shm`` (a tmpfs) is mounted on the host."""
PRIVATE_SHM = 'mount --bind "$0" /dev/shm && exec "$@"'
"""Run inside the namespace's own mount namespace (``ip netns exec`` makes one per command, a slave of the
host's): the machine's tmpfs replaces ``/dev/shm`` for this process and everything it starts."""


def availability() -> str | None:
    """None when namespaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "the emulated network needs root (network namespaces); run as root or use --network loopback"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"the emulated network needs iproute2 ({', '.join(missing)} not found)"
    return None


def _sh(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RudderError(f"network set-up failed: {' '.join(cmd)}: {proc.stderr.strip()}")


@dataclass
class EmulatedNetwork:
    """Namespaces, veths, a bridge and tbf shaping for ``machines`` machines; torn down by close()."""

    machines: int
    rate: str | None = "1gbit"
    tag: str = field(default_factory=lambda: f"rd{random.randrange(16**4):04x}")
    subnet: int = field(default_factory=lambda: random.randrange(10, 250))
    _made: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    @property
    def host_ip(self) -> str:
        """The root namespace's address on the bridge (reachable from every machine)."""
        return f"10.77.{self.subnet}.1"

    def ip(self, k: int) -> str:
        return f"10.77.{self.subnet}.{k + 2}"

    def namespace(self, k: int) -> str:
        return f"{self.tag}m{k}"

    def shm_dir(self, k: int) -> Path:
        """Machine k's own ``/dev/shm``, as the host sees it."""
        return SHM_ROOT / self.namespace(k)

    def exec_prefix(self, k: int) -> list[str]:
        """Prepend to a command to run it on machine k: its network, its ``/dev/shm``."""
        return ["ip", "netns", "exec", self.namespace(k), "sh", "-c", PRIVATE_SHM, str(self.shm_dir(k))]

    def setup(self) -> None:
        """Create the bridge, one namespace and shaped link per machine."""
        reason = availability()
        if reason:
            raise RudderError(reason)
        try:
            _sh("ip", "link", "add", self.bridge, "type", "bridge")
            self._made.append(("ip", "link", "del", self.bridge))
            _sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
            _sh("ip", "link", "set", self.bridge, "up")
            for k in range(self.machines):
                ns, outer = self.namespace(k), f"{self.tag}v{k}"
                _sh("ip", "netns", "add", ns)
                self._made.append(("ip", "netns", "del", ns))
                _sh("ip", "link", "add", outer, "type", "veth", "peer", "name", INNER_IF, "netns", ns)
                self._made.append(("ip", "link", "del", outer))  # at once; a deleted namespace frees it later
                _sh("ip", "link", "set", outer, "master", self.bridge, "up")
                _sh("ip", "-n", ns, "addr", "add", f"{self.ip(k)}/24", "dev", INNER_IF)
                _sh("ip", "-n", ns, "link", "set", INNER_IF, "up")
                _sh("ip", "-n", ns, "link", "set", "lo", "up")
                self.shm_dir(k).mkdir(parents=True, exist_ok=True)
                self._made.append(("rmdir", str(self.shm_dir(k))))
                _sh("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", str(self.shm_dir(k)))
                self._made.append(("umount", "--lazy", str(self.shm_dir(k))))
                if self.rate:
                    shape = ["root", "tbf", "rate", self.rate, "burst", "256kb", "latency", "50ms"]
                    _sh("tc", "qdisc", "add", "dev", outer, *shape)  # towards the machine
                    _sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", INNER_IF, *shape)  # from it
        except BaseException:
            self.close()
            raise
        log.info("emulated network up", machines=self.machines, rate=self.rate or "unlimited",
                 addresses=[self.ip(k) for k in range(self.machines)])

    def close(self) -> None:
        """Delete namespaces (their veths go with them) and the bridge; safe to call twice."""
        for cmd in reversed(self._made):
            subprocess.run(cmd, capture_output=True)
        self._made.clear()
