"""Lets several DistDGL "machines" share one host without root.

DGL 2.1 derives a client's machine id from the first ip_config line whose address is
local (so every trainer on one host thinks it is machine 0) and names shared-memory
segments only after the graph and tensor names (so a second server maps the first
one's segments). When ``RUDDER_MACHINE_ID`` is set, this module pins the machine id and
prefixes every shared-memory name with ``RUDDER_SHM_PREFIX`` + the machine id. Import it
before DGL starts any role; it is a no-op on a real cluster (variables unset).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MACHINE_ENV = "RUDDER_MACHINE_ID"
PREFIX_ENV = "RUDDER_SHM_PREFIX"

_applied = False
_RUN_PREFIX = re.compile(r"^(rudder_[0-9a-f]{8}_)m\d+_")


def machine_prefix(run_prefix: str, machine_id: int) -> str:
    """The shared-memory name prefix of one machine of one run."""
    return f"{run_prefix}m{machine_id}_"


def _prefixed(name: str, prefix: str) -> str:
    # POSIX shm names keep their leading slash.
    return "/" + prefix + name[1:] if name.startswith("/") else prefix + name


def apply() -> bool:
    """Install the machine-id pin and shared-memory renaming if this process runs on a shared host."""
    global _applied
    if _applied or MACHINE_ENV not in os.environ:
        return _applied
    machine_id = int(os.environ[MACHINE_ENV])
    prefix = machine_prefix(os.environ.get(PREFIX_ENV, "rudder_"), machine_id)

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
    rpc_client.get_local_machine_id = lambda server_namebook: machine_id
    _applied = True
    return True


def initialize(ip_config: str) -> None:
    """``dgl.distributed.initialize`` with the single-host isolation applied first (a no-op on a real cluster).

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
