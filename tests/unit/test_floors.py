"""The floors under an epoch on the emulated network, in `rudder compare`'s table: the link floor (the busiest
direction of the busiest link's bytes per epoch over the link rate), the compute floor (the same run on loopback)
and the epoch's ratio to the larger, on hand-made records and summaries."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from rudder_agent import compare
from rudder_agent.cli import app
from rudder_agent.compare import comparison_table, floors_note, loopback_twins, parse_variants, variants
from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.floors import floors, rate_bytes_per_s
from rudder_agent.records.run_summary import RunSummary, read_summary
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.records.summary import write_summary

WIRE = {  # rank (= machine) -> per epoch (rx, tx) bytes of its link
    0: [(900, 100), (300, 100), (200, 500), (250, 50)],
    1: [(100, 100), (400, 50), (100, 100), (700, 100)],
}
"""Busiest link direction per epoch: 900, 400 (machine 1 in), 500 (machine 0 out), 700; the median after the
first is 500. Each wrong rule gives another figure: inbound only 400, both machines' inbound summed 700, the
first epoch included 600, the mean 533.3, each link direction's median first and then the largest 400."""


def run_config(run: Path, **settings) -> TrainConfig:
    return TrainConfig(dataset="cora", parts=2, part_config=run / "p.json", graph_name="g", out_dir=run,
                       buffer=BufferConfig.from_values({"controller": "none"}), **settings)


def write_run(run: Path, wire: dict[int, list[tuple[int, int]]], **settings) -> RunSummary:
    run.mkdir()
    (run / "config.json").write_text(run_config(run, **settings).model_dump_json())
    for rank, epochs in wire.items():
        writer = MetricsWriter(run / f"metrics-rank{rank}.jsonl")
        for epoch, (rx, tx) in enumerate(epochs):
            writer.write(MinibatchMetrics(rank=rank, epoch=epoch, step=epoch, input_nodes=10, remote_inputs=4,
                                          misses=4, comm_rows=4, comm_bytes=32), "minibatch")
            writer.write({"rank": rank, "epoch": epoch, "epoch_time_s": 1.0, "wire_rx_bytes": rx,
                          "wire_tx_bytes": tx}, "epoch")
        writer.close()
    return write_summary(run)


def test_the_link_bytes_are_the_busiest_direction_of_the_busiest_link_not_the_sum(tmp_path: Path) -> None:
    s = write_run(tmp_path / "run", WIRE, network="netns", link_rate="200mbit")
    assert s.link_bytes_per_epoch == 500
    assert s.link_rate_bytes_s == 25e6
    assert floors(s).link_s == 500 / 25e6
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["link_bytes_per_epoch"] == 500
    assert s.wire_bytes_per_epoch == (1000 + 700 + 300 + 950) / 4  # the inbound sum stays what it was


def test_a_loopback_run_has_no_link_to_floor(tmp_path: Path) -> None:
    s = write_run(tmp_path / "run", {0: [(0, 0)]}, network="loopback")
    assert s.link_rate_bytes_s is None and floors(s).link_s is None


@pytest.mark.parametrize("rate, expected", [
    ("200mbit", 25e6), ("1gbit", 125e6), ("1GBit", 125e6), ("12.5mbps", 12.5e6), ("64kbit", 8e3), ("1kibit", 128.0),
    ("2mibps", 2 * 1024 ** 2), ("1tbit", 125e9), ("800bit", 100.0), ("3bps", 3.0),
])
def test_a_tc_rate_in_bytes_per_second(rate, expected):
    assert rate_bytes_per_s(rate) == expected


@pytest.mark.parametrize("rate", ["fast", "200", "200mb", "mbit", "0mbit", "1ibit", "", None, "1 gbit x"])
def test_a_rate_tc_would_not_read_is_refused_with_its_reason(rate):
    with pytest.raises(RudderError, match="is not a rate tc understands, e.g. 1gbit or 200mbit"):
        rate_bytes_per_s(rate)


def summary(controller: str, epoch_s: float, link_mb: float | None = None, network: str = "netns@200mbit",
            fraction: float = 0.0) -> RunSummary:
    """A hand-made summary: ``link_mb`` MB per epoch on the busiest link direction, a 200 Mbit/s link."""
    return RunSummary(controller=controller, network=network, buffer_fraction=fraction, epoch_time_s=epoch_s,
                      comm_rows_per_epoch=1000.0, hit_pct=0.0, agent_wait_s=0.0, test_acc=0.5,
                      wire_bytes_per_epoch=None if link_mb is None else 2 * link_mb * 1e6,
                      link_bytes_per_epoch=None if link_mb is None else link_mb * 1e6,
                      link_rate_bytes_s=None if network == "loopback" else 25e6,
                      policy=None if controller == "none" else "lookahead")


NONE, FIXED = summary("none", 17.41, 252.8), summary("fixed", 12.79, 132.6, fraction=0.25)
NONE_LOOPBACK, FIXED_LOOPBACK = (summary("none", 10.65, network="loopback"),
                                 summary("fixed", 10.43, network="loopback", fraction=0.25))


def test_the_ratio_is_to_the_larger_floor():
    none = floors(NONE, NONE_LOOPBACK)  # link 252.8 MB / 25 MB/s = 10.11 s, under the 10.65 s on loopback
    assert (none.link_s, none.compute_s, none.bound_s) == (pytest.approx(10.112), 10.65, 10.65)
    assert none.ratio == pytest.approx(17.41 / 10.65)
    slow_cpu = floors(NONE, summary("none", 4.0, network="loopback"))  # the link floor the larger
    assert (slow_cpu.bound_s, slow_cpu.ratio) == (pytest.approx(10.112), pytest.approx(17.41 / 10.112))
    assert floors(NONE).ratio == pytest.approx(17.41 / 10.112)  # no loopback run: the link floor alone
    assert floors(summary("none", 3.0)).ratio is None  # no floor at all


def test_a_compute_floor_must_be_a_loopback_run():
    with pytest.raises(RudderError, match="not on netns@200mbit"):
        floors(NONE, FIXED)


def cells(table: str) -> list[dict[str, str]]:
    """The Markdown table's rows as {column: cell} ('vs none' twice: the epoch's, the last, is kept)."""
    head, _, *rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()]
    return [dict(zip(head, row, strict=True)) for row in rows]


def test_the_table_gains_the_floors_on_the_emulated_network():
    table = comparison_table([("none", NONE), ("fixed", FIXED)], [NONE_LOOPBACK, FIXED_LOOPBACK])
    none, fixed = cells(table)
    assert [none[k] for k in ("epoch s", "link floor s", "compute floor s", "vs floor")] == [
        "17.41", "10.11", "10.65", "1.63"]
    assert [fixed[k] for k in ("epoch s", "link floor s", "compute floor s", "vs floor")] == [
        "12.79", "5.30", "10.43", "1.23"]
    assert table.splitlines()[0].count("|") == table.splitlines()[1].count("|") == table.splitlines()[2].count("|")
    note = floors_note([("none", NONE), ("fixed", FIXED)], [NONE_LOOPBACK, FIXED_LOOPBACK])
    assert note.startswith("Floors: link floor = the busiest direction") and "alone" not in note


def test_without_a_loopback_run_the_compute_floor_is_a_dash_and_the_ratio_to_the_link_floor(tmp_path):
    none, fixed = cells(comparison_table([("none", NONE), ("fixed", FIXED)], [NONE_LOOPBACK, None]))
    assert (none["compute floor s"], fixed["compute floor s"]) == ("10.65", "-")
    assert fixed["vs floor"] == f"{12.79 / 5.304:.2f}" == "2.41"
    assert cells(comparison_table([("none", NONE)]))[0]["compute floor s"] == "-"
    text = compare.write_comparison(tmp_path, [("none", NONE), ("fixed", FIXED)])
    assert "Compute floor -: no loopback run of that variant, so its vs floor is to the link floor alone." in text
    assert (tmp_path / "comparison.md").read_text() == text + "\n"


def test_a_loopback_compare_has_no_floor_columns():
    table = comparison_table([("none", NONE_LOOPBACK), ("fixed", FIXED_LOOPBACK)])
    assert "floor" not in table and floors_note([("none", NONE_LOOPBACK)]) == ""


def test_an_older_summary_without_the_link_fields_still_loads_and_shows_dashes(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({
        "controller": "none", "network": "netns@200mbit", "buffer_fraction": 0.0, "epoch_time_s": 17.0,
        "comm_rows_per_epoch": 10.0, "hit_pct": 0.0, "agent_wait_s": 0.0, "test_acc": 0.5,
        "wire_bytes_per_epoch": 4.7e8}))
    old = read_summary(tmp_path)
    assert (old.link_bytes_per_epoch, old.link_rate_bytes_s) == (None, None)
    (row,) = cells(comparison_table([("none", old)]))
    assert (row["link floor s"], row["compute floor s"], row["vs floor"]) == ("-", "-", "-")
    assert "Link floor -: no link bytes recorded" in floors_note([("none", old)])


def finished(cfg: TrainConfig, epoch_s: float) -> None:
    """A finished run of ``cfg`` taking ``epoch_s`` per epoch."""
    cfg.out_dir.mkdir(parents=True)
    (cfg.out_dir / "config.json").write_text(cfg.model_dump_json())
    RunSummary(controller=cfg.buffer.controller.name, network=cfg.network, epoch_time_s=epoch_s).write(cfg.out_dir)


def netns_runs(tmp_path: Path) -> list:
    base = TrainConfig(dataset="cora", parts=2, part_config=tmp_path / "p.json", graph_name="g",
                       out_dir=tmp_path / "cmp-200mbit", network="netns", link_rate="200mbit")
    return variants(base, {}, parse_variants("fixed"), [0.05, 0.25])  # none, fixed-0.05, fixed-0.25


def test_each_run_takes_its_compute_floor_from_the_loopback_run_of_its_name(tmp_path):
    runs = netns_runs(tmp_path)
    loopback = tmp_path / "cmp-loopback"
    for (_, cfg), epoch_s in zip(runs[:2], [10.65, 10.43]):  # fixed-0.25 was not run on loopback
        finished(cfg.model_copy(update={"network": "loopback", "link_rate": "1gbit",
                                        "out_dir": loopback / cfg.out_dir.name}), epoch_s)
    twins = loopback_twins(runs, loopback)
    assert [t and t.epoch_time_s for t in twins] == [10.65, 10.43, None]


def test_a_loopback_run_with_other_settings_or_not_on_loopback_is_refused(tmp_path):
    runs = netns_runs(tmp_path)
    _, cfg = runs[0]
    finished(cfg.model_copy(update={"network": "loopback", "epochs": 5, "out_dir": tmp_path / "a" / "none"}), 9.0)
    with pytest.raises(RudderError, match=r"ran with other settings \(epochs\) than none here"):
        loopback_twins(runs, tmp_path / "a")
    finished(cfg.model_copy(update={"out_dir": tmp_path / "b" / "none"}), 9.0)  # the netns run itself
    with pytest.raises(RudderError, match="did not run on loopback"):
        loopback_twins(runs, tmp_path / "b")


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """`rudder compare` with nothing run: a partition that needs no work, an emulated network this host 'can
    make', and `compare` answering with a none run taking 17.41 s per epoch; ``seen`` holds each base config."""
    import rudder_agent.cluster.netns as netns
    import rudder_agent.cluster.partition as partition

    seen: list[TrainConfig] = []
    (tmp_path / "cmp").mkdir()
    monkeypatch.setattr(netns, "availability", lambda: None)
    monkeypatch.setattr(partition, "partition_dataset", lambda dataset, parts, method: SimpleNamespace(
        config_path=tmp_path / f"{dataset}-{parts}-{method}.json", graph_name=dataset))
    monkeypatch.setattr(compare, "compare", lambda base, *args: seen.append(base) or [("none", NONE)])
    args = ["compare", "--dataset", "cora", "--controllers", "none", "--network", "netns", "--link-rate", "200mbit",
            "--out", str(tmp_path / "cmp")]
    return lambda *more: CliRunner().invoke(app, [*args, *more]), seen


def test_compare_reads_the_compute_floors_of_a_loopback_compare(cli, tmp_path):
    invoke, seen = cli
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "Compute floor -" in result.output
    (_, cfg), = variants(seen[0], {}, parse_variants("none"), [0.25])
    finished(cfg.model_copy(update={"network": "loopback", "out_dir": tmp_path / "loop" / "none"}), 10.65)
    result = invoke("--compute-floor-from", str(tmp_path / "loop"))
    assert result.exit_code == 0, result.output
    (row,) = cells(result.output.split("\n\n")[0])
    assert (row["link floor s"], row["compute floor s"], row["vs floor"]) == ("10.11", "10.65", "1.63")


def test_compare_refuses_compute_floors_off_the_emulated_network_or_from_a_mismatched_run(cli, tmp_path):
    invoke, seen = cli
    (tmp_path / "loop").mkdir()
    result = CliRunner().invoke(app, [
        "compare", "--dataset", "cora", "--out", str(tmp_path / "cmp"), "--compute-floor-from", str(tmp_path / "loop")])
    assert result.exit_code == 2 and "--compute-floor-from: only with --network netns" in result.output
    result = invoke("--compute-floor-from", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "is not a directory" in result.output
    base = TrainConfig(dataset="cora", parts=2, part_config=tmp_path / "p.json", graph_name="g", epochs=1,
                       out_dir=tmp_path / "loop" / "none")
    finished(base, 9.0)
    result = invoke("--compute-floor-from", str(tmp_path / "loop"))
    assert result.exit_code == 1 and "ran with other settings" in result.output, result.output
    assert seen == []  # refused before anything ran
