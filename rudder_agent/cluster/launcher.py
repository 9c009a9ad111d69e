"""Runs a whole DistDGL job: N servers + N x T trainers, one partition per machine.

Processes get the environment DGL's ``tools/launch.py`` would give them. Where the machines are:
- loopback: processes of this host; the single-host collisions (machine id, shared-memory names) are
  solved by :mod:`rudder_agent.cluster.isolation`, which needs no root;
- the emulated network: one namespace, address and ``/dev/shm`` per machine; DGL finds each machine's
  id from its address, as on a cluster;
- hosts over ssh (``--hosts``): each role is started on its host through ssh and
  :mod:`rudder_agent.cluster.remote`, which ends it when the launcher goes away.
Every process runs in its own session so that shutdown (success, Ctrl-C, or any process failing)
ends all of them, on every host, and the run's shared-memory segments are removed afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


from rudder_agent.cluster import isolation, script_args
from rudder_agent.cluster.hosts import Host, read_hosts, ssh_command
from rudder_agent.cluster.netns import INNER_IF, EmulatedNetwork
from rudder_agent.cluster.trainer_env import with_startup
from rudder_agent.config import TrainConfig
from rudder_agent.controllers.capabilities import Place, SharedRuntime
from rudder_agent.errors import RudderError
from rudder_agent.log import get_logger
from rudder_agent.paths import RUN_CONFIG_ENV
from rudder_agent.records.stream import read_jsonl
from rudder_agent.progress import progress
from rudder_agent.registry import shared_runtime

log = get_logger(__name__)

PR_SET_PDEATHSIG = 1


class ClusterFailure(RudderError):
    """A server or trainer failed; carries the failing role and the tail of its log."""

    def __init__(self, role: str, returncode: int | None, tail: str, host: str | None = None):
        self.role, self.returncode, self.tail, self.host = role, returncode, tail, host
        where = f"{role} on host {host}" if host else role
        super().__init__(f"{where} failed (exit code {returncode}). Last log lines:\n{tail}")


class ClusterTimeout(RudderError):
    """The run was still going when its time (``--timeout``) was up."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        super().__init__(f"the run did not finish within {timeout_s:g} s (--timeout); every process was stopped")


@dataclass
class Proc:
    """A started process and where its output goes."""

    role: str
    popen: subprocess.Popen
    log_path: Path
    is_trainer: bool
    host: str | None = None
    """The host it runs on, when started over ssh."""

    def failure(self) -> ClusterFailure:
        return ClusterFailure(self.role, self.popen.returncode, self.tail(), self.host)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def format_epoch(rec: dict) -> str:
    """One console line per finished epoch of trainer 0."""
    loss = "n/a" if rec["mean_loss"] is None else f"{rec['mean_loss']:.4f}"
    hit_pct = 100.0 * rec["hits"] / rec["remote_inputs"] if rec["remote_inputs"] else 0.0
    return (f"epoch {rec['epoch']} [trainer 0]: {rec['epoch_time_s']:.2f} s, loss {loss}, "
            f"{rec['minibatches']} minibatches, remote inputs {rec['remote_inputs']:,}, "
            f"comm rows {rec['comm_rows']:,}, %-Hits {hit_pct:.1f}")


def _die_with_launcher() -> None:
    """In the child before exec: get SIGTERM when the launcher dies, even by SIGKILL (Linux prctl)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


FORWARDED_PREFIXES = ("RUDDER_", "DGL_", "GLOO_", "TP_", "OMP_")
FORWARDED = {"PYTHONPATH", "VIRTUAL_ENV"}
"""The launcher's own variables a role started over ssh also gets."""

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS = (10000, 30000)
"""Where the cluster's listening ports are drawn when the kernel's ephemeral range does not say otherwise."""


def ephemeral_range() -> tuple[int, int] | None:
    """The ports the kernel hands out for bind(0) and outgoing connections (None: it does not say)."""
    try:
        lo, hi = (int(x) for x in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return None
    return lo, hi


def listen_port_range() -> tuple[int, int]:
    """Ports the kernel never hands out by itself: below (or above) its ephemeral range."""
    if (ephemeral := ephemeral_range()) is None:
        return LISTEN_PORTS
    lo, hi = ephemeral
    if lo - 1024 >= 2000:
        return max(1024, lo - 20000), lo
    if 65535 - hi >= 2000:
        return hi + 1, 65536
    return LISTEN_PORTS  # the kernel may hand out almost any port: a collision stays possible, as before


def free_port(rng: random.Random | None = None) -> int:
    """A TCP port free right now on loopback, outside the kernel's ephemeral range.

    Ports a server or the gloo rendezvous bind later must not be ephemeral: DGL's RPC clients bind
    their own listening port with bind(0), so an ephemeral port chosen here could be taken before
    its owner binds it (seen in CI: a trainer's DGL client took the gloo MASTER_PORT and the
    rendezvous failed). Outside that range only an explicit bind takes a port.
    """
    rng = rng or random.SystemRandom()
    lo, hi = listen_port_range()
    for _ in range(500):
        port = rng.randrange(lo, hi)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RudderError(f"no free TCP port in {lo}-{hi - 1} on 127.0.0.1 after 500 tries")


@dataclass
class LocalCluster:
    """Starts, supervises and tears down one local DistDGL job."""

    cfg: TrainConfig
    python: str = sys.executable
    startup_timeout_s: float = 300.0
    shutdown_grace_s: float = 20.0
    show_progress: bool = True
    run_prefix: str = field(default_factory=lambda: f"rudder_{uuid.uuid4().hex[:8]}_")
    llm_nice: int = 19
    """The shared model server runs at the lowest CPU priority: in async mode training must come first."""
    trainer: Path | None = None
    """A user's trainer script to run instead of the built-in one."""
    trainer_args: list[str] | None = None
    """The script's own command line, placeholders filled (:mod:`rudder_agent.cluster.script_args`); None: its
    default, ``--config <run>/config.json``."""
    network: EmulatedNetwork | None = None
    """One network namespace per machine with rate-limited links; None = everything on loopback."""
    hosts: list[Host] | None = None
    """The machines, reached over ssh (``cfg.hosts``); None = this host."""
    procs: list[Proc] = field(default_factory=list)
    shared_runtimes: list[SharedRuntime] = field(default_factory=list)
    _interrupted: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        if self.network is None and self.cfg.network == "netns":
            self.network = EmulatedNetwork(self.cfg.parts, self.cfg.link_rate)
        if self.hosts is None and self.cfg.hosts is not None:
            self.hosts = read_hosts(self.cfg.hosts)

    @property
    def run_dir(self) -> Path:
        return self.cfg.out_dir

    def _common_env(self, ip_config: Path) -> dict[str, str]:
        n = self.cfg.trainers
        env = dict(os.environ)
        env.update(
            DGL_NUM_SERVER="1",
            DGL_NUM_SAMPLER="0",
            DGL_NUM_CLIENT=str(n),  # trainers x (1 + samplers) x machines
            DGL_CONF_PATH=str(self.cfg.part_config),
            DGL_IP_CONFIG=str(ip_config),
            DGL_GRAPH_FORMAT="csc",
            OMP_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",
            RUDDER_SEED=str(self.cfg.seed),
            **{isolation.PREFIX_ENV: self.run_prefix},
        )
        return env

    def _start(self, role: str, machine: int, target: str | Path, env: dict[str, str], args: list[str],
               is_trainer: bool) -> None:
        """Start a module (``pkg.mod``) or a script path on a machine, output in ``logs/<role>.log``."""
        log_path = self.run_dir / "logs" / f"{role}.log"
        fh = log_path.open("w")
        entry = [str(Path(target).resolve())] if isinstance(target, Path) else ["-m", target]
        command = [self.python, *entry, *args]
        host = self.hosts[machine] if self.hosts else None
        if host is not None:
            # the remote wrapper ends the role when this ssh's stdin ends; a server's also cleans its host's shm
            clean = ["--clean-shm", self.run_prefix] if not is_trainer else []
            command = ssh_command(host, [self.python, "-m", "rudder_agent.cluster.remote", *clean, "--", *command],
                                  self._remote_env(env), Path.cwd(), self.cfg.ssh_config)
        elif self.network:
            command = [*self.network.exec_prefix(machine), *command]
        popen = subprocess.Popen(
            command,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if host else subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_launcher,
        )
        fh.close()
        self.procs.append(Proc(role, popen, log_path, is_trainer, host.address if host else None))

    @staticmethod
    def _remote_env(env: dict[str, str]) -> dict[str, str]:
        """What a role over ssh gets: what the launcher set, and the user's settings for Rudder, DGL, gloo and
        Python; the remote shell's own environment gives the rest, as with DGL's launch tool."""
        return {k: v for k, v in env.items()
                if os.environ.get(k) != v or k.startswith(FORWARDED_PREFIXES) or k in FORWARDED}

    def start(self) -> None:
        """Write the ip_config and run config, then start servers first and trainers after."""
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        if stale := isolation.remove_stale_segments():
            log.info("removed shared memory of dead runs", segments=stale)
        if self.network is not None:
            self.network.setup()
        ip_config = self.run_dir / "ip_config.txt"
        ip_config.write_text("".join(f"{self._address(k)} {self._port(k)}\n" for k in range(self.cfg.parts)))
        config_path = self.run_dir / "config.json"
        config_path.write_text(self.cfg.model_dump_json(indent=2))
        env = self._common_env(ip_config)
        runtime_env = self._start_shared_runtimes()
        master_port = str(free_port())
        for k in range(self.cfg.parts):
            self._start(
                f"server-{k}",
                k,
                "rudder_agent.cluster.server",
                {**env, "DGL_ROLE": "server", "DGL_SERVER_ID": str(k), **self._machine_pin(k)},
                [],
                is_trainer=False,
            )
        args = self._trainer_args(ip_config, config_path)
        for rank in range(self.cfg.trainers):
            k = self.cfg.machine_of(rank)
            trainer_env = {
                **env,
                **runtime_env[k],
                "DGL_ROLE": "client",
                "DGL_DIST_MODE": "distributed",
                "DGL_GROUP_ID": "0",
                "MASTER_ADDR": self._address(0),
                "MASTER_PORT": master_port,
                "RANK": str(rank),
                "WORLD_SIZE": str(self.cfg.trainers),
                "LOCAL_RANK": str(rank % self.cfg.trainers_per_machine),  # as torch.distributed.run sets them
                "LOCAL_WORLD_SIZE": str(self.cfg.trainers_per_machine),
                "GROUP_RANK": str(k),
                RUN_CONFIG_ENV: str(config_path),  # an attached script's BufferedFeatures reads the run's settings
                **self._machine_pin(k),
                **({"GLOO_SOCKET_IFNAME": INNER_IF} if self.network else {}),
                # a user's script: isolation and gloo's interface in place as its interpreter starts
                **({"PYTHONPATH": with_startup(env.get("PYTHONPATH"))} if self.trainer else {}),
            }
            self._start(f"trainer-{rank}", k, self.trainer or "rudder_agent.cluster.trainer", trainer_env, args, True)
        self._write_cluster_json()
        log.info("cluster started", machines=self.cfg.parts, trainers=self.cfg.trainers, run_dir=str(self.run_dir), shm_prefix=self.run_prefix)

    def _trainer_args(self, ip_config: Path, config_path: Path) -> list[str]:
        """The trainers' command line: the built-in trainer's, or the user script's with its placeholders filled."""
        if self.trainer is None:
            return ["--config", str(config_path)]
        cfg = self.cfg
        return script_args.fill(self.trainer_args if self.trainer_args is not None else script_args.DEFAULT_ARGS, {
            "ip_config": str(ip_config), "part_config": str(cfg.part_config), "graph_name": cfg.graph_name,
            "epochs": str(cfg.epochs), "batch_size": str(cfg.batch_size), "fanouts": ",".join(map(str, cfg.fanouts)),
            "out": str(cfg.out_dir), "config": str(config_path)})

    def _machine_pin(self, machine: int) -> dict[str, str]:
        """The isolation shim's machine id, on loopback only: on the emulated network each machine has its own
        address and ``/dev/shm``, and DGL finds its id from its address, as on a real cluster."""
        return {} if self.network or self.hosts else {isolation.MACHINE_ENV: str(machine)}

    def _address(self, machine: int) -> str:
        """The address machine ``machine`` is reached at."""
        if self.hosts:
            return self.hosts[machine].address
        return self.network.ip(machine) if self.network else "127.0.0.1"

    def _port(self, machine: int) -> int:
        """The port machine ``machine``'s server listens on: the hosts file's, or one free here."""
        return (self.hosts[machine].port if self.hosts else None) or free_port()

    def _start_shared_runtimes(self) -> list[dict[str, str]]:
        """The controller's machine-wide service (one embedded model server per machine, one slot per trainer), if
        it has one; the environment each machine's trainers need to reach theirs. On loopback every machine is
        this host, so one service serves all trainers."""
        if self.network is None and self.hosts is None:
            where: list[tuple[Place | None, str, int]] = [(None, "127.0.0.1", self.cfg.trainers)]
        else:
            where = [(self._place(k), self._address(k), self.cfg.trainers_per_machine) for k in range(self.cfg.parts)]
        envs = []
        for place, host, parallel in where:
            runtime = shared_runtime(self.cfg.buffer.controller, seed=self.cfg.seed, parallel=parallel, host=host,
                                     nice=self.llm_nice, place=place)
            if runtime is None:
                return [{}] * self.cfg.parts
            self.shared_runtimes.append(runtime)
            envs.append(runtime.start())
        return envs * self.cfg.parts if len(envs) == 1 else envs

    def _place(self, machine: int) -> Place:
        """Turns a command into one that runs on machine ``machine``: ssh to its host, or into its namespace."""
        if self.hosts:
            host = self.hosts[machine]
            return lambda command: ssh_command(host, command, self._remote_env(dict(os.environ)), Path.cwd(),
                                               self.cfg.ssh_config)
        return lambda command: [*self.network.exec_prefix(machine), *command]

    def _first_failure(self) -> Proc | None:
        for p in self.procs:
            rc = p.popen.poll()
            if rc not in (None, 0):
                return p
        return None

    def supervise(self, timeout_s: float | None = None) -> None:
        """Wait for the trainers; raise ClusterFailure as soon as any process fails, ClusterTimeout when time is up."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        trainers = [p for p in self.procs if p.is_trainer]
        metrics_path = self.run_dir / "metrics-rank0.jsonl"
        bar = progress(total=self.cfg.epochs, desc="epochs", unit="epoch", enabled=self.show_progress, leave=True)
        seen_epochs = 0
        try:
            while True:
                self._raise_if_interrupted()
                failed = self._first_failure()
                if failed is not None:
                    raise failed.failure()
                if metrics_path.exists():
                    epochs = read_jsonl(metrics_path, kind="epoch")
                    for rec in epochs[seen_epochs:]:
                        bar.update(1)
                        bar.write(format_epoch(rec))
                    seen_epochs = len(epochs)
                if all(p.popen.poll() == 0 for p in trainers):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise ClusterTimeout(timeout_s)
                time.sleep(0.2)
        finally:
            bar.close()
        self._wait_servers()

    def _wait_servers(self) -> None:
        """Servers exit by themselves once every trainer has disconnected."""
        end = time.monotonic() + self.shutdown_grace_s
        for p in self.procs:
            while p.popen.poll() is None and time.monotonic() < end:
                self._raise_if_interrupted()
                time.sleep(0.1)
            if p.popen.poll() not in (None, 0):
                raise p.failure()

    def stop(self) -> None:
        """End every process (SIGTERM, then SIGKILL) and remove the run's shared memory."""
        signalled: dict[str, str] = self._end_remote_roles()
        alive = [p for p in self.procs if p.popen.poll() is None]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in alive:
                try:
                    os.killpg(p.popen.pid, sig)
                    signalled[p.role] = sig.name
                except ProcessLookupError:
                    pass
            end = time.monotonic() + 5.0
            while time.monotonic() < end and any(p.popen.poll() is None for p in alive):
                time.sleep(0.05)
            alive = [p for p in alive if p.popen.poll() is None]
            if not alive:
                break
        for runtime in self.shared_runtimes:
            runtime.close()
        if self.network is not None:
            self.network.close()
        removed = isolation.remove_segments(self.run_prefix)
        if self.procs:
            self._write_cluster_json(stopped_by_launcher=signalled,
                                     exit_codes={p.role: p.popen.returncode for p in self.procs})
        log.debug("cluster stopped", shm_removed=removed, signalled=signalled)

    def _end_remote_roles(self) -> dict[str, str]:
        """Close every ssh's stdin, the remote wrapper's signal to stop its role and clean its host's shared
        memory, and give them the grace time to finish before the ssh processes themselves are signalled.
        Returns the roles that were still running, as ``{role: "input closed"}``."""
        remote = [p for p in self.procs if p.host is not None]
        running = {p.role: "input closed" for p in remote if p.popen.poll() is None}
        for p in remote:
            with contextlib.suppress(OSError):
                p.popen.stdin.close()
        end = time.monotonic() + self.shutdown_grace_s
        while time.monotonic() < end and any(p.popen.poll() is None for p in remote):
            time.sleep(0.1)
        return running

    def _write_cluster_json(self, **after_stop) -> None:
        """Pids and shared-memory prefix at start; which processes the launcher signalled and how each ended, at stop."""
        (self.run_dir / "cluster.json").write_text(json.dumps(
            {"shm_prefix": self.run_prefix, "pids": {p.role: p.popen.pid for p in self.procs}, **after_stop}, indent=2))

    def _raise_if_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise KeyboardInterrupt

    def run(self, timeout_s: float | None = None) -> None:
        """Start, supervise and always tear down; Ctrl-C and failures end every process."""
        with _ctrl_c_as_flag(self._interrupted):
            try:
                self.start()
                self.supervise(timeout_s)
                self._raise_if_interrupted()  # Ctrl-C after the last check is still an interruption
            finally:
                self.stop()


@contextlib.contextmanager
def _ctrl_c_as_flag(flag: threading.Event) -> Iterator[None]:
    """SIGINT sets ``flag``, which the supervisor polls (main thread only; elsewhere nothing changes).

    Python's default handler raises KeyboardInterrupt wherever the main thread is, and one raised
    inside a finalizer is printed and dropped: the run would then go on to the end and exit 0.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: flag.set()) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
