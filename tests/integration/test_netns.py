"""The emulated cluster network: namespaces per machine, shaped links, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rudder_agent.cluster.netns import EmulatedNetwork, availability
from rudder_agent.records.stream import read_jsonl
from tests.integration.helpers import links, namespaces

pytestmark = [pytest.mark.integration, pytest.mark.host_wide,
              pytest.mark.skipif(availability() is not None, reason=str(availability()))]

RATE_MBIT = 40
PAYLOAD = 6 * 2**20  # 1.3 s at 40 Mbit/s; tbf's 256 KB burst is 4 % of it

RECEIVER = r"""
import socket, sys, time
srv = socket.socket()
srv.bind((sys.argv[1], 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
total, first = 0, None
while chunk := conn.recv(1 << 16):
    if first is None:
        first, head = time.perf_counter(), len(chunk)
    total += len(chunk)
print(total, total - head, time.perf_counter() - first, flush=True)
"""

SENDER = r"""
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as s:
    s.sendall(b"\x00" * int(sys.argv[3]))
"""


def transfer(receiver_prefix: list[str], receiver_ip: str, sender_prefix: list[str]) -> float:
    """Bytes per second of one bulk TCP transfer, measured by the receiver from its first byte on."""
    rx = subprocess.Popen([*receiver_prefix, sys.executable, "-c", RECEIVER, receiver_ip],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = rx.stdout.readline().strip()
        assert port.isdigit(), rx.stderr.read()
        subprocess.run([*sender_prefix, sys.executable, "-c", SENDER, receiver_ip, port, str(PAYLOAD)],
                       check=True, timeout=120)
        out, err = rx.communicate(timeout=120)
    finally:
        rx.kill()
        rx.wait()
    total, after_first, seconds = out.split()
    assert int(total) == PAYLOAD, err
    return int(after_first) / float(seconds)


def test_tbf_caps_each_direction_of_a_machine_link_and_unshaped_is_far_faster() -> None:
    ns_before, links_before = namespaces(), links()
    cap = RATE_MBIT * 1e6 / 8
    rates = {}
    for rate in (f"{RATE_MBIT}mbit", None):
        net = EmulatedNetwork(machines=2, rate=rate)
        try:
            net.setup()
            host, machine = [], net.exec_prefix(0)
            rates[rate, "to machine"] = transfer(machine, net.ip(0), host)  # the bridge-side qdisc
            if rate:
                rates[rate, "from machine"] = transfer(host, net.host_ip, machine)  # the qdisc inside the namespace
        finally:
            net.close()
        assert namespaces() == ns_before and links() == links_before  # torn down completely
    shaped = [rates[f"{RATE_MBIT}mbit", d] for d in ("to machine", "from machine")]
    assert max(shaped) < 1.2 * cap, {k: f"{v * 8 / 1e6:.1f} Mbit/s" for k, v in rates.items()}
    assert rates[None, "to machine"] > 5 * max(shaped), {k: f"{v * 8 / 1e6:.1f} Mbit/s" for k, v in rates.items()}


def test_training_over_shaped_links_counts_the_wire_and_leaves_nothing(reference) -> None:
    """The session's fixed-decay run trained over 200 Mbit/s links (see reference.py)."""
    before, links_before = namespaces(), links()
    run = reference("fixed-decay")
    s = json.loads((run / "summary.json").read_text())
    assert s["network"] == "netns@200mbit"
    assert s["verified_rows"] == s["input_nodes"] > 0
    # the links' own counters: every fetched feature row crossed a link, and sampling and gradients came on top
    epochs = [e for rank in (0, 1) for e in read_jsonl(run / f"metrics-rank{rank}.jsonl", kind="epoch")]
    assert len(epochs) == 6 and all(e["wire_rx_bytes"] > 0 and e["wire_tx_bytes"] > 0 for e in epochs)
    assert s["wire_bytes_per_epoch"] == sum(e["wire_rx_bytes"] for e in epochs) / 3
    assert s["comm_bytes"] / 3 < s["wire_bytes_per_epoch"] < 100 * s["comm_bytes"]
    subnet = {line.rsplit(".", 1)[0] for line in (run / "ip_config.txt").read_text().split()[::2]}
    assert len(subnet) == 1 and next(iter(subnet)).startswith("10.77.")
    assert namespaces() == before and links() == links_before
