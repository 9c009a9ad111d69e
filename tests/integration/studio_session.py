"""One `langgraph dev` session, driven through the LangGraph SDK; run by test_studio.py (maybe in a netns).

    python studio_session.py CONFIG WORKDIR REQUEST_JSON

Starts `langgraph dev --no-browser --no-reload` on a free 127.0.0.1 port from WORKDIR (where it keeps
its .langgraph_api/ state) with CONFIG (the checkout's langgraph.json), waits for /ok, lists the
assistants, runs the `rudder_decision` graph on REQUEST_JSON ({"facts": ..., "request": ...}) in a new
thread, then stops the server with SIGINT and waits for it. Prints one JSON object: the assistants'
graph ids, the run's output state, the server's exit code, seconds to start, and its log's tail.
The server inherits this environment (RUDDER_AGENT_MODEL and the no-network switches).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

START_LIMIT_S = 180.0
STOP_LIMIT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen) -> float:
    """Seconds until the server answers /ok; fails if it exits or takes longer than START_LIMIT_S."""
    tic = time.monotonic()
    while time.monotonic() - tic < START_LIMIT_S:
        if proc.poll() is not None:
            raise RuntimeError(f"langgraph dev exited with {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - tic
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"langgraph dev did not answer within {START_LIMIT_S:.0f} s")


def main(config: str, workdir: str, request_json: str) -> None:
    from langgraph_sdk import get_sync_client

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(workdir) / "langgraph-dev.log"
    langgraph = Path(sys.executable).with_name("langgraph")
    with log.open("w") as out:
        proc = subprocess.Popen([str(langgraph), "dev", "--config", config, "--host", "127.0.0.1", "--port", str(port),
                                 "--no-browser", "--no-reload"], cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    result: dict = {}
    try:
        result["startup_s"] = wait_ready(url, proc)
        client = get_sync_client(url=url)
        result["graphs"] = sorted(a["graph_id"] for a in client.assistants.search())
        thread = client.threads.create()
        result["state"] = client.runs.wait(thread["thread_id"], "rudder_decision",
                                           input=json.loads(Path(request_json).read_text()))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            result["exit_code"] = proc.wait(timeout=STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            result["exit_code"] = f"killed after {STOP_LIMIT_S:.0f} s"
            proc.wait()
        with socket.socket() as sock:  # the port is free again: nothing kept serving
            result["port_free"] = sock.connect_ex(("127.0.0.1", port)) != 0
        result["log_tail"] = log.read_text(errors="replace")[-6000:]
        print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
