"""Lets several DistDGL "machines" share one host without root.

DGL 2.1 derives a client's machine id from the first ip_config line whose address is
local (so every trainer on one host thinks it is machine 0) and names shared-memory
segments only after the graph and tensor names (so a second server maps the first
one's segments). When ``RUDDER_MACHINE_ID`` is set (loopback), this module pins the
machine id and prefixes every shared-memory name with ``RUDDER_SHM_PREFIX`` + the machine
id. Where each machine has its own address (the emulated network, hosts over ssh) only the
names carry the run's prefix, so that a run's segments can be found and removed on every
host; DGL finds the machine id itself. Import it before DGL starts any role.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rudder_agent.paths import SHM_PREFIX_ENV

MACHINE_ENV = "RUDDER_MACHINE_ID"
PREFIX_ENV = SHM_PREFIX_ENV

_applied = False
_pinned = False
_RUN_PREFIX = re.compile(r"^(rudder_[0-9a-f]{8}_)")


def machine_prefix(run_prefix: str, machine_id: int) -> str:
    """The shared-memory name prefix of one machine of one run."""
    return f"{run_prefix}m{machine_id}_"


def _prefixed(name: str, prefix: str) -> str:
    # POSIX shm names keep their leading slash.
    return "/" + prefix + name[1:] if name.startswith("/") else prefix + name


def apply() -> bool:
    """Install the shared-memory renaming (and, on a shared host, the machine-id pin) if the launcher asked."""
    global _applied, _pinned
    if _applied or PREFIX_ENV not in os.environ:
        return _applied
    run_prefix = os.environ[PREFIX_ENV]
    pin = MACHINE_ENV in os.environ
    machine_id = int(os.environ.get(MACHINE_ENV, 0))
    prefix = machine_prefix(run_prefix, machine_id) if pin else run_prefix

    import dgl.distributed.dist_graph as dist_graph
    import dgl.distributed.graph_partition_book as gpb
    import dgl.distributed.kvstore as kvstore
    import dgl.distributed.rpc_client as rpc_client
    import dgl.distributed.shared_mem_utils as shm_utils
    from dgl._ffi import ndarray as ffi_ndarray
    from dgl import ndarray as dgl_ndarray

    raw_empty = ffi_ndarray.empty_shared_mem
    raw_exist = dgl_ndarray.exist_shared_mem_array

    def empty_shared_mem(name, is_create, shape, dtype):
        return raw_empty(_prefixed(name, prefix), is_create, shape, dtype)

    def exist_shared_mem_array(name):
        return raw_exist(_prefixed(name, prefix))

    for module in (kvstore, dist_graph, gpb, shm_utils):
        if hasattr(module, "empty_shared_mem"):
            module.empty_shared_mem = empty_shared_mem
        if hasattr(module, "exist_shared_mem_array"):
            module.exist_shared_mem_array = exist_shared_mem_array

    raw_copy = dist_graph._copy_graph_to_shared_mem
    raw_get = dist_graph._get_graph_from_shared_mem
    dist_graph._copy_graph_to_shared_mem = lambda g, name, *a, **k: raw_copy(g, prefix + name, *a, **k)
    dist_graph._get_graph_from_shared_mem = lambda name, *a, **k: raw_get(prefix + name, *a, **k)
    if pin:
        rpc_client.get_local_machine_id = lambda server_namebook: machine_id
    _applied, _pinned = True, pin
    return True


def pinned() -> bool:
    """Whether this process's machine id is pinned by the shim (False: DGL found it from the host's address)."""
    return _pinned


def initialize(ip_config: str) -> None:
    """``dgl.distributed.initialize`` with the isolation applied first (a no-op without the launcher's variables).

    Applied before DGL starts any role, so the sampler processes it forks inherit it too.
    """
    apply()
    import dgl

    dgl.distributed.initialize(ip_config)


def live_prefixes() -> set[str]:
    """Run prefixes that a living process still uses (read from process environments)."""
    import psutil

    live = set()
    for proc in psutil.process_iter():
        try:
            prefix = proc.environ().get(PREFIX_ENV)
        except (psutil.Error, OSError):
            continue
        if prefix:
            live.add(prefix)
    return live


def remove_stale_segments(shm_dir: Path = Path("/dev/shm")) -> int:
    """Delete segments of runs whose every process is gone (e.g. a launcher killed with SIGKILL)."""
    if not shm_dir.exists():
        return 0
    runs = {m.group(1) for p in shm_dir.glob("rudder_*") if (m := _RUN_PREFIX.match(p.name))}
    live = live_prefixes()
    return sum(remove_segments(run, shm_dir) for run in runs - live)


def leftover_segments(run_prefix: str, shm_dir: Path = Path("/dev/shm")) -> list[Path]:
    """Shared-memory segments a run left behind (all carry the run's prefix)."""
    return sorted(shm_dir.glob(run_prefix + "*")) if shm_dir.exists() else []


def remove_segments(run_prefix: str, shm_dir: Path = Path("/dev/shm")) -> int:
    """Delete a run's shared-memory segments; returns how many were removed."""
    removed = 0
    for path in leftover_segments(run_prefix, shm_dir):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
