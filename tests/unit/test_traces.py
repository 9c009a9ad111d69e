"""Traces and metric streams survive a run killed mid-write."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.stream import MetricsWriter, read_jsonl
from rudder_agent.records.trace import TraceWriter, decode_ids, encode_ids, read_trace


@given(st.lists(st.integers(0, 2**40), max_size=200))
@settings(max_examples=50, deadline=None)
def test_ids_round_trip_sorted(ids) -> None:
    assert np.array_equal(decode_ids(encode_ids(np.asarray(ids, dtype=np.int64))), np.sort(np.asarray(ids, np.int64)))


def test_truncated_trace_keeps_every_complete_frame(tmp_path) -> None:
    path = tmp_path / "trace.rtf"
    rng = np.random.default_rng(0)
    frames = [rng.choice(10_000, size=rng.integers(1, 500), replace=False) for _ in range(20)]
    writer = TraceWriter(path)
    sizes = []
    for step, ids in enumerate(frames):
        writer.write(step, ids)
        sizes.append(path.stat().st_size)
    writer.close()
    data = path.read_bytes()
    for cut in (sizes[9] + 3, sizes[9] + 11, sizes[10] - 1):  # inside the header, inside the blob, last byte
        path.write_bytes(data[:cut])
        got = list(read_trace(path))
        assert [s for s, _ in got] == list(range(10))
        assert all(np.array_equal(ids, np.sort(frames[s])) for s, ids in got)


def test_torn_metrics_line_is_ignored(tmp_path) -> None:
    path = tmp_path / "m.jsonl"
    w = MetricsWriter(path)
    for step in range(3):
        w.write(MinibatchMetrics(rank=0, epoch=0, step=step, input_nodes=5, remote_inputs=2, comm_rows=2,
                                 comm_bytes=8), "minibatch")
    w.close()
    with path.open("a") as fh:
        fh.write('{"kind": "minibatch", "rank": 0, "ste')
    assert [r["step"] for r in read_jsonl(path, kind="minibatch")] == [0, 1, 2]
