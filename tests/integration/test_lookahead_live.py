"""The look-ahead policy in real DistDGL training: exact rows, the replay's counts, the same training as `none`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rudder_agent.replay.simulator import replay_run
from tests.integration.helpers import minibatches, rudder, train

pytestmark = pytest.mark.integration

COMMON = ["--epochs", "2", "--trace", "--verify", "--buffer-fraction", "0.25"]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.fixture(scope="module")
def runs(reference) -> dict[str, Path]:
    return {"none": reference("none"), "lookahead": reference("fixed-lookahead")}


def test_every_served_row_is_exact_and_no_extra_row_is_fetched(runs) -> None:
    s = summary(runs["lookahead"])
    assert s["verified_rows"] == s["input_nodes"]
    assert s["replace_rows"] == 0  # only rows already in hand enter the buffer
    assert s["comm_rows"] == s["miss_rows"] == s["remote_inputs"] - s["hits"]


def test_the_replay_sees_the_same_window_and_counts_the_same_rows(runs, tmp_path) -> None:
    run = runs["lookahead"]
    for rank in (0, 1):
        replay_run(run, rank, "recorded", out_dir=tmp_path / "recorded", progress=False)
        replay_run(run, rank, "fixed", out_dir=tmp_path / "own", progress=False)
        live = [(m["step"], m["hits"], m["comm_rows"], m["stale"]) for m in minibatches(run, rank)]
        for out in ("recorded", "own"):
            again = [(m["step"], m["hits"], m["comm_rows"], m["stale"]) for m in minibatches(tmp_path / out, rank)]
            assert again == live


def test_sampling_ahead_changes_nothing_the_model_sees(runs) -> None:
    """Same minibatches (seeds and sampled neighbours) and the same loss at every step as `none`.

    DGL's thread-local random engine also picks the server of a remote pull: reads on the sampling
    thread would change the next samples. Every read goes through the reader thread instead.
    """
    for rank in (0, 1):
        a, b = minibatches(runs["none"], rank), minibatches(runs["lookahead"], rank)
        assert len(a) == len(b) > 3
        assert [(m["epoch"], m["input_nodes"], m["remote_inputs"]) for m in a] == \
            [(m["epoch"], m["input_nodes"], m["remote_inputs"]) for m in b]
        assert [m["loss"] for m in a] == [m["loss"] for m in b]


def test_four_partitions_verified_replayed_exactly_and_trained_as_none(tmp_path, isolated_cache) -> None:
    """Also with 3 minibatches prepared ahead of training (``--prefetch 3``): only when reads start changes."""
    run = train(tmp_path / "p4", "--parts", "4", *COMMON, "--controller", "fixed", "--policy", "lookahead",
                "--lookahead", "2", "--prefetch", "3")
    plain = train(tmp_path / "p4-none", "--parts", "4", *COMMON, "--controller", "none")
    s = summary(run)
    assert s["verified_rows"] == s["input_nodes"] and s["parts"] == 4
    for rank in range(4):
        replay_run(run, rank, "recorded", out_dir=tmp_path / "again", progress=False)
        assert [(m["hits"], m["comm_rows"]) for m in minibatches(tmp_path / "again", rank)] == \
            [(m["hits"], m["comm_rows"]) for m in minibatches(run, rank)]
        assert [(m["input_nodes"], m["loss"]) for m in minibatches(run, rank)] == \
            [(m["input_nodes"], m["loss"]) for m in minibatches(plain, rank)]


def test_a_window_without_the_lookahead_policy_is_refused_clearly(tmp_path, isolated_cache) -> None:
    proc = rudder("train", "--dataset", "synthetic:4000", "--parts", "2", "--policy", "lookahead", "--lookahead", "0",
                  "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "lookahead" in proc.stderr and "Traceback" not in proc.stderr
