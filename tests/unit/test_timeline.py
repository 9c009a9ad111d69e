"""The stage table and timeline (rudder_agent/report/timeline.py, benchmarks/timeline.py) on hand-made records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.timeline import main as timeline_main
from rudder_agent.config import BufferConfig, TrainConfig
from rudder_agent.errors import RudderError
from rudder_agent.metrics import MinibatchMetrics
from rudder_agent.records.run import read_rank
from rudder_agent.records.stream import MetricsWriter
from rudder_agent.report.timeline import (draw_timeline, epoch_records, format_table, length, load_timeline_run,
                                          merged, overlap, stage_table, timed)

T0 = 1_700_000_000.0  # wall-clock seconds: a float64 holds them to 0.24 microseconds


def approx(seconds: float):
    return pytest.approx(seconds, abs=1e-5)

FORWARD, BACKWARD, ALLREDUCE, OPTIMIZER, TRAIN = 0.1, 0.1, 0.05, 0.03, 0.3


def record(step: int, sample: tuple[float, float], fetch: tuple[float, float], wait: float, train_start: float,
           epoch: int = 0, rank: int = 0, **fields) -> MinibatchMetrics:
    """One minibatch's record with its stage timers, times in seconds from T0."""
    return MinibatchMetrics(
        rank=rank, epoch=epoch, step=step, input_nodes=10, remote_inputs=4, comm_rows=4, comm_bytes=16,
        t_sample=sample[1] - sample[0], t_fetch=fetch[1] - fetch[0], t_pull=0.3, t_train=TRAIN, t_batch_wait=wait,
        t_forward=FORWARD, t_backward=BACKWARD, t_allreduce_wait=ALLREDUCE, t_optimizer=OPTIMIZER,
        ts_sample_start=T0 + sample[0], ts_sample_end=T0 + sample[1], ts_fetch_start=T0 + fetch[0],
        ts_fetch_end=T0 + fetch[1], ts_train_start=T0 + train_start, ts_train_end=T0 + train_start + TRAIN, **fields)


def fetch_bound(epoch: int = 0, offset: float = 0.0) -> list[MinibatchMetrics]:
    """Three minibatches of a link-bound trainer: each fetch (0.4 s) outlasts training (0.3 s), so the main thread
    waits 0.5 s for the first and 0.2 s for each later one.

    sampling: sample [0, .1] fetch [.1, .5] | sample [.5, .6] fetch [.6, 1.0] | sample [1.0, 1.1] fetch [1.1, 1.5]
    main:     wait [0, .5] train [.5, .8]   | wait [.8, 1.0] train [1.0, 1.3] | wait [1.3, 1.5] train [1.5, 1.8]
    """
    o = offset
    return [record(3 * epoch + 0, (o + 0.0, o + 0.1), (o + 0.1, o + 0.5), 0.5, o + 0.5, epoch),
            record(3 * epoch + 1, (o + 0.5, o + 0.6), (o + 0.6, o + 1.0), 0.2, o + 1.0, epoch),
            record(3 * epoch + 2, (o + 1.0, o + 1.1), (o + 1.1, o + 1.5), 0.2, o + 1.5, epoch)]


def test_spans_merge_and_overlap():
    assert merged([(3, 4), (0, 1), (0.5, 2), (5, 5)]) == [(0, 2), (3, 4)]
    assert length([(0, 1), (0.5, 2), (3, 4)]) == 3
    assert overlap([(0, 1), (2, 4)], [(0.5, 2.5), (3.5, 10)]) == approx(0.5 + 0.5 + 0.5)
    assert overlap([(0, 1)], [(1, 2)]) == 0.0
    assert overlap([], [(0, 1)]) == 0.0


def test_the_table_splits_the_epoch_by_stage_and_measures_the_overlap():
    table = stage_table(fetch_bound())
    rows = {(r.thread, r.stage.strip()): r for r in table.rows}
    assert table.minibatches == 3 and table.epoch_s == approx(1.8)

    wait = rows["main thread", "wait for batch"]
    assert wait.median_s == approx(0.2) and wait.total_s == approx(0.9)
    assert table.waited == approx(0.5) and wait.share == approx(0.5)
    for stage, seconds in (("forward", FORWARD), ("backward", BACKWARD), ("all-reduce wait", ALLREDUCE),
                           ("optimizer", OPTIMIZER)):
        assert rows["main thread", stage].median_s == approx(seconds)
        assert rows["main thread", stage].share == approx(3 * seconds / 1.8)
    # 0.02 s of each 0.3 s training step is in no stage (reading the loss, writing records)
    assert rows["main thread", "other (records, loop)"].total_s == approx(3 * 0.02)
    assert sum(r.share for r in table.rows if r.thread == "main thread") == approx(1.0)

    fetch, sample = rows["sampling thread", "fetch"], rows["sampling thread", "sample"]
    assert fetch.median_s == approx(0.4) and fetch.total_s == approx(1.2)
    # fetch ran while training in [.6, .8] and [1.1, 1.3]: 0.4 of its 1.2 s
    assert table.fetch_overlap == approx(1 / 3) and fetch.while_training == approx(1 / 3)
    assert sample.while_training == approx(2 / 3)  # [.5, .6] and [1.0, 1.1] of 0.3 s
    assert rows["sampling thread", "of which pull"].median_s == approx(0.3)
    assert rows["sampling thread", "of which pull"].while_training is None
    assert rows["sampling thread", "idle (queue full or done)"].total_s == approx(0.3)  # [1.5, 1.8]
    assert rows["main thread", "wait for batch"].while_training is None


def test_a_trainer_that_is_never_starved_overlaps_all_of_its_fetch():
    """Sampling one minibatch ahead and fetching it entirely while the previous one trains: no wait after the first."""
    records = [record(0, (0.0, 0.05), (0.05, 0.1), 0.1, 0.1),
               record(1, (0.1, 0.15), (0.15, 0.3), 0.0, 0.4),
               record(2, (0.4, 0.45), (0.45, 0.6), 0.0, 0.7)]
    table = stage_table(records)
    assert table.waited == approx(0.1 / 1.0)
    rows = {r.stage: r for r in table.rows}
    assert rows["fetch"].while_training == approx((0.15 + 0.15) / (0.05 + 0.15 + 0.15))


def test_format_table_names_every_stage():
    text = format_table(stage_table(fetch_bound()), "none")
    assert text.startswith("none: 3 minibatches, 1.800 s")
    assert "training waited 50.0% of it" in text and "33.3% of fetch time ran while training" in text
    for stage in ("sample", "fetch", "of which pull", "wait for batch", "forward", "backward", "all-reduce wait",
                  "optimizer"):
        assert stage in text


def test_old_records_load_without_the_timers_and_are_refused(tmp_path):
    old = {"kind": "minibatch", "rank": 0, "epoch": 0, "step": 0, "input_nodes": 10, "remote_inputs": 4,
           "comm_rows": 4, "comm_bytes": 16, "t_sample": 0.1, "t_fetch": 0.2, "t_train": 0.3}
    (tmp_path / "metrics-rank0.jsonl").write_text(json.dumps(old) + "\n")
    (m,) = read_rank(tmp_path, 0).minibatches
    assert m.t_fetch == 0.2 and m.t_batch_wait == m.t_allreduce_wait == m.ts_train_start == m.t_pull == 0.0
    assert not timed([m]) and not timed([])
    with pytest.raises(RudderError, match="stage timers"):
        stage_table([m])


def write_stream(run: Path, records: list[MinibatchMetrics], controller: str | None = None) -> Path:
    run.mkdir(parents=True)
    if controller is not None:
        cfg = TrainConfig(dataset="cora", parts=2, part_config=run / "p.json", graph_name="g", out_dir=run,
                          network="netns", link_rate="200mbit",
                          buffer=BufferConfig.from_values(dict(controller=controller, fraction=0.25)))
        (run / "config.json").write_text(cfg.model_dump_json())
    writer = MetricsWriter(run / "metrics-rank0.jsonl")
    for m in records:
        writer.write(m, "minibatch")
    writer.close()
    return run


def two_runs(tmp_path: Path) -> list[Path]:
    """`none`, link-bound, and a buffered run that never waits after its first minibatch; two epochs each."""
    quick = [record(0, (0.0, 0.05), (0.05, 0.1), 0.1, 0.1),
             record(1, (0.1, 0.15), (0.15, 0.3), 0.0, 0.4),
             record(2, (0.4, 0.45), (0.45, 0.6), 0.0, 0.7)]
    quick += [record(3 + m.step, (m.ts_sample_start - T0 + 5, m.ts_sample_end - T0 + 5),
                     (m.ts_fetch_start - T0 + 5, m.ts_fetch_end - T0 + 5), m.t_batch_wait,
                     m.ts_train_start - T0 + 5, epoch=1) for m in quick]
    return [write_stream(tmp_path / "none", fetch_bound(0) + fetch_bound(1, offset=5.0), controller="none"),
            write_stream(tmp_path / "fixed", quick)]


def test_the_timeline_of_two_runs_is_a_png(tmp_path):
    runs = [load_timeline_run(p, 0) for p in two_runs(tmp_path)]
    assert runs[0].title == "none (none, netns@200mbit, prefetch 1)" and runs[1].title == "fixed"
    assert [m.step for m in epoch_records(runs[0].records, 1)] == [3, 4, 5]
    out = draw_timeline(runs, epoch=1, first=1, count=2, out=tmp_path / "fig" / "timeline.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    with pytest.raises(RudderError, match="--first 3"):
        draw_timeline(runs, epoch=1, first=3, count=2, out=tmp_path / "x.png")
    with pytest.raises(RudderError, match="no minibatch records with stage timers"):
        draw_timeline(runs, epoch=7, first=0, count=2, out=tmp_path / "x.png")


def test_the_command_prints_the_tables_and_writes_figure_and_json(tmp_path, capsys):
    none, fixed = two_runs(tmp_path)
    out, js = tmp_path / "t.png", tmp_path / "t.json"
    assert timeline_main([str(none), str(fixed), "--epoch", "1", "--count", "3", "--out", str(out),
                          "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "none (none, netns@200mbit, prefetch 1), rank 0, epoch 1: 3 minibatches, 1.800 s" in text
    assert "fixed, rank 0, epoch 1: 3 minibatches" in text and f"wrote {out}" in text
    assert out.exists()
    tables = json.loads(js.read_text())
    assert tables["fixed"]["waited"] == approx(0.1) and tables["fixed"]["minibatches"] == 3
    assert timeline_main([str(tmp_path / "nowhere")]) == 2
    assert "holds no minibatch records of rank 0" in capsys.readouterr().err


def test_a_pipelined_fetch_shows_the_pull_thread_and_ends_the_sampling_threads_part_at_the_plan(tmp_path):
    """Pulling from peers: sampling thread [sample, plan], pull thread [pull start, ready], the next sample
    overlapping the last pull.

    sampling: sample [0, .1] plan [.1, .15] | sample [.15, .25] plan [.25, .3]
    pull:     pull [.15, .5]               | pull [.5, .8]
    main:     wait [0, .5] train [.5, .8]  | wait 0, train [.8, 1.1]
    """
    records = [record(0, (0.0, 0.1), (0.1, 0.5), 0.5, 0.5, ts_plan_end=T0 + 0.15, ts_pull_start=T0 + 0.15),
               record(1, (0.15, 0.25), (0.25, 0.8), 0.0, 0.8, ts_plan_end=T0 + 0.3, ts_pull_start=T0 + 0.5)]
    rows = {(r.thread, r.stage.strip()): r for r in stage_table(records).rows}
    assert rows[("sampling thread", "fetch")].total_s == approx(0.05 + 0.05)
    assert rows[("pull thread", "pull and assemble")].total_s == approx(0.35 + 0.3)
    assert rows[("pull thread", "idle (waiting for a plan)")].total_s == approx(1.1 - 0.65)
    assert rows[("sampling thread", "idle (queue full or done)")].total_s == approx(1.1 - 0.3)
    assert ("pull thread", "pull and assemble") not in {(r.thread, r.stage) for r in stage_table(fetch_bound()).rows}
