"""A machine's one link, as seen from inside its network namespace: its name and its byte counters.

Below everything that records a run, so that a trainer (ours or a user's script) can count the bytes its
machine's link carried per epoch without importing the emulated network itself.
"""

from __future__ import annotations

from pathlib import Path

INNER_IF = "eth0"
"""The link's name inside every emulated machine."""


def link_bytes(iface: str = INNER_IF) -> tuple[int, int] | None:
    """Bytes this machine's link has received and sent so far (sampling, features, gradients: all of it).

    Read inside a machine's namespace, where ``iface`` is its only link; None where there is no such link.
    """
    try:
        return tuple(int((Path("/sys/class/net") / iface / "statistics" / f"{d}_bytes").read_text())
                     for d in ("rx", "tx"))
    except (OSError, ValueError):
        return None
