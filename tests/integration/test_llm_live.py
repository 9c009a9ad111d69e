"""The `llm` controller steering real DistDGL training: scripted (plumbing) and embedded SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import minibatches, train

pytestmark = pytest.mark.integration

# Small batches give enough minibatches; a small buffer fills at once (the guard fills empty slots without the model) and a high
# tau makes entries stale after 3 idle rounds, so the model is asked on most minibatches.
ASKS_THE_MODEL = ["--batch-size", "60", "--buffer-fraction", "0.05", "--tau", "0.9"]


def check_steered_run(run: Path) -> dict:
    """The run completed, decisions were applied, and every served row was exact."""
    s = json.loads((run / "summary.json").read_text())
    assert s["verified_rows"] == s["input_nodes"] > 0
    assert s["agent"]["prompt_version"] == "v1" and len(s["agent"]["prompt_sha256"]) == 64
    applied = [m for r in (0, 1) for m in minibatches(run, r) if m["decision_applied"]]
    assert applied, "no decision was applied"
    assert sum(s["decisions"].values()) >= len(applied)
    return s


def test_scripted_agent_sync_applies_every_answer(tmp_path: Path, isolated_cache) -> None:
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        '{"decision": "replace", "hits": "increase", "comm": "decrease", "reason": "stale entries"}\n'
        '"not json at all"\n'
        '{"decision": "skip", "hits": "unchanged", "comm": "unchanged", "reason": "stable"}\n'
    )
    run = train(tmp_path / "scripted", "--epochs", "2", "--controller", "llm", "--model", f"scripted:{answers}",
                "--sync", "--verify", *ASKS_THE_MODEL)
    s = check_steered_run(run)
    assert s["decisions"]["invalid"] > 0 and s["decisions"]["replace"] > 0
    for rank in (0, 1):
        mbs = minibatches(run, rank)
        # sync: from the second minibatch on, every minibatch applies the answer to the previous one
        assert all(m["decision_applied"] for m in mbs[1:])
    assert s["hits"] > 0


@pytest.mark.llm
def test_embedded_smollm2_steers_training(tmp_path: Path, isolated_cache) -> None:
    run = train(tmp_path / "embedded", "--epochs", "2", "--controller", "llm", "--model", "llamacpp:smollm2-135m",
                "--sync", "--verify", *ASKS_THE_MODEL)
    s = check_steered_run(run)
    assert s["latency_p50_s"] is not None and s["latency_p50_s"] > 0
