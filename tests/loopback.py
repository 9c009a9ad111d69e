"""Stand-in HTTP servers on 127.0.0.1 (ephemeral ports) for backend contract and failure tests.

Everything here is a real socket: the backends' own HTTP clients connect to it. What is
stood in for is only the far side (Ollama, an OpenAI-compatible server), never the client.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@contextlib.contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on loopback for the block; yields ``http://127.0.0.1:<port>``.

    A handler with a ``release`` event (see :func:`misbehaving`) has it set before the server
    stops, so requests it holds open end with the block.
    """
    handler.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release = getattr(handler, "release", None)
        if release is not None:
            release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def refused_port() -> int:
    """A loopback port that refuses connections: bound by us (so the kernel picked a free one), then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def misbehaving(get: dict[str, object], on_post: str) -> type[BaseHTTPRequestHandler]:
    """A handler class that answers the GET paths in ``get`` with JSON and misbehaves on every POST.

    on_post="hang": read the request, then never answer until ``release`` is set (the server
    stops), then drop the connection. on_post="close": read the request and close the
    connection without a response (what a crashing server does). Either way the POST bodies
    are kept in ``bodies`` and ``arrived`` is released once per POST, so a test can wait for
    an attempt instead of sleeping.
    """
    if on_post not in ("hang", "close"):
        raise ValueError(on_post)

    class Misbehaving(BaseHTTPRequestHandler):
        bodies: list[dict] = []
        release = threading.Event()
        arrived = threading.Semaphore(0)

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            if self.path not in get:
                self.send_error(404)
                return
            data = json.dumps(get[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.bodies.append(body)
            self.arrived.release()
            if on_post == "hang":
                self.release.wait()
            self.close_connection = True  # no status line, no headers: the client sees the peer hang up

    return Misbehaving


OPENAI_MODELS = {"/v1/models": {"object": "list", "data": [{"id": "m", "object": "model", "created": 0,
                                                             "owned_by": "me"}]}}
"""GET routes of an OpenAI-compatible server that lists model ``m`` (its ``check()`` passes)."""

OLLAMA_TAGS = {"/api/tags": {"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest",
                                         "modified_at": "2025-01-01T00:00:00Z", "size": 1, "digest": "0",
                                         "details": {}}]}}
"""GET routes of an Ollama server that has ``llama3.2`` pulled (its ``check()`` passes)."""


def bounded(fn, bound_s: float = 60.0):
    """``fn()`` in a daemon thread, joined with a generous bound: a hang fails the test instead of stalling it.

    The bound is a liveness check, not a timing claim: callers expect ``fn`` to end in a
    small fraction of it (e.g. 1 s against 60 s), and a client without the configured
    timeout would wait minutes (openai's default is 600 s, httpx under Ollama has none).
    """
    result: dict = {}

    def work() -> None:
        try:
            result["value"] = fn()
        except BaseException as err:  # re-raised on the test's thread
            result["error"] = err

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(bound_s)
    assert not worker.is_alive(), f"still running after {bound_s:.0f} s: the call hangs"
    if "error" in result:
        raise result["error"]
    return result["value"]


def counted_decision(controller, request):
    """One decision through a synchronous ControllerRunner (the live hand-off), then close.

    Returns the outcome and the runner's stats, where a fallback is *counted* (as `invalid`).
    """
    from rudder_agent.controllers.runner import ControllerRunner

    runner = ControllerRunner(controller, mode="sync")
    try:
        runner.submit(request)
        outcome = runner.take()
    finally:
        runner.close()
    return outcome, runner.stats
