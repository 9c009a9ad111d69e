"""What every trainer process needs before DGL starts its role: the built-in trainer and a user's script alike.

A user's script need not import anything of ours for it: the launcher starts it with :data:`STARTUP_DIR` first
on its ``PYTHONPATH``, whose ``sitecustomize`` calls :func:`prepare` as the interpreter starts, so a plain
``dgl.distributed.initialize(args.ip_config)`` finds the machine-id isolation (loopback) and the cluster's
interface for gloo (hosts over ssh) already in place.
"""

from __future__ import annotations

import os
from pathlib import Path

from rudder_agent.cluster import isolation
from rudder_agent.cluster.hosts import cluster_interface

STARTUP_DIR = Path(__file__).resolve().with_name("startup")
"""Holds the ``sitecustomize`` that prepares a user's trainer script at interpreter start."""


def prepare() -> None:
    """Apply the isolation the launcher asked for; bind gloo to the interface the cluster is reached at."""
    isolation.apply()
    ip_config = os.environ.get("DGL_IP_CONFIG")
    if "GLOO_SOCKET_IFNAME" not in os.environ and ip_config and (iface := cluster_interface(Path(ip_config))):
        os.environ["GLOO_SOCKET_IFNAME"] = iface


def with_startup(pythonpath: str | None) -> str:
    """``PYTHONPATH`` with :data:`STARTUP_DIR` first."""
    return os.pathsep.join([str(STARTUP_DIR), *([pythonpath] if pythonpath else [])])
