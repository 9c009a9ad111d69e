"""Shared-memory naming per run and machine, and removal of a dead run's segments."""

from __future__ import annotations

from rudder_agent.cluster import isolation


def test_prefix_keeps_the_posix_slash() -> None:
    p = isolation.machine_prefix("rudder_0123abcd_", 1)
    assert isolation._prefixed("/arxiv_node_meta", p) == "/rudder_0123abcd_m1_arxiv_node_meta"
    assert isolation._prefixed("node~_N~feat", p) == "rudder_0123abcd_m1_node~_N~feat"


def test_only_dead_runs_segments_are_removed(tmp_path, monkeypatch) -> None:
    dead, live = "rudder_0000dead_", "rudder_1111a11e_"
    for run in (dead, live):
        for k in (0, 1):
            (tmp_path / f"{run}m{k}_graph").write_bytes(b"x")
    (tmp_path / "someone_elses_segment").write_bytes(b"x")
    monkeypatch.setattr(isolation, "live_prefixes", lambda: {live})
    assert isolation.remove_stale_segments(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "rudder_1111a11e_m0_graph", "rudder_1111a11e_m1_graph", "someone_elses_segment"]
