"""Every bad input is refused before anything starts: exit 2, one line naming the option, no traceback.

Each case runs the real `rudder` command with a private, empty RUDDER_CACHE and an --out that does not
exist: if the cache stays empty nothing was partitioned, and if --out is still absent no run directory,
server, trainer or model process was started (the launcher writes its logs there before it starts
anything). The time to fail is bounded too: these checks come before DistDGL, not after it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile
from pathlib import Path

import pytest

from rudder_agent.classifiers.features import CURRENT_SCHEMA
from rudder_agent.config import TrainConfig
from tests.integration.helpers import rudder

pytestmark = pytest.mark.integration

BASE = ["--dataset", "cora", "--parts", "2", "--epochs", "1"]
FAIL_WITHIN_S = 30.0
"""Generous for a loaded 2-core machine: the slowest case imports LangChain (or DGL, for the dataset name)."""


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Bad files of every kind a run reads, and a recorded-run directory to replay."""
    root = tmp_path_factory.mktemp("bad-inputs")
    text = root / "notes.gguf"
    text.write_text("not a model\n")
    (root / "empty.jsonl").write_text("")
    not_zip = root / "model.rcls"
    not_zip.write_text("not a zip\n")
    old_schema = root / "old-schema.rcls"
    features = {"version": CURRENT_SCHEMA.version + 1, "names": list(CURRENT_SCHEMA.names)[:-1]}
    with zipfile.ZipFile(old_schema, "w") as zf:
        zf.writestr("meta.json", json.dumps({"kind": "lr", "labels": "rule", "features": features, "window": 4}))
    run = root / "recorded"
    run.mkdir()
    cfg = TrainConfig(dataset="cora", parts=2, out_dir=run, part_config=root / "cora.json", graph_name="cora",
                      trace=True)
    (run / "config.json").write_text(cfg.model_dump_json())
    (run / "trace-rank0.json").write_text("{}")  # ranks are found by name; preflight reads no trace
    return {"gguf": str(text), "empty": str(root / "empty.jsonl"), "not_zip": str(not_zip),
            "old_schema": str(old_schema), "run": str(run), "no_run": str(root)}


PORT = closed_port()
CASES = [  # (id, command line, option the message must name, words it must contain)
    ("model-malformed", ["train", *BASE, "--controller", "llm", "--model", "ollama:"], "--model", "model string"),
    ("model-unknown-kind", ["train", *BASE, "--controller", "llm", "--model", "gpt4"], "--model", "must be one of"),
    ("openai-unreachable", ["train", *BASE, "--controller", "llm", "--model", f"openai:m@http://127.0.0.1:{PORT}/v1"],
     "--model", "not answering"),
    ("ollama-unreachable", ["train", *BASE, "--controller", "llm", "--model", "ollama:gemma3:4b"], "--model",
     "unreachable"),
    ("scripted-missing", ["train", *BASE, "--controller", "llm", "--model", "scripted:/nonexistent/answers.jsonl"],
     "--model", "not found"),
    ("scripted-empty", ["train", *BASE, "--controller", "llm", "--model", "scripted:{empty}"], "--model", "empty"),
    ("gguf-not-a-model", ["train", *BASE, "--controller", "llm", "--model", "llamacpp:{gguf}"], "--model",
     "not a GGUF"),
    ("prompt-version", ["train", *BASE, "--controller", "llm", "--prompt-version", "v9"], "--prompt-version",
     "'v9' not found"),
    ("classifier-missing", ["train", *BASE, "--controller", "classifier"], "--classifier-path", "trained model"),
    ("classifier-not-artefact", ["train", *BASE, "--controller", "classifier", "--classifier-path", "{not_zip}"],
     "--classifier-path", "not a rudder classifier"),
    ("classifier-schema", ["train", *BASE, "--controller", "classifier", "--classifier-path", "{old_schema}"],
     "--classifier-path", "feature schema"),
    ("buffer-fraction", ["train", *BASE, "--buffer-fraction", "0"], "--buffer-fraction", "greater than 0"),
    ("gamma", ["train", *BASE, "--gamma", "1"], "--gamma", "less than 1"),
    ("parts", ["train", *BASE, "--parts", "0"], "--parts", "greater than or equal to 1"),
    ("fanouts", ["train", *BASE, "--fanouts", "10,0"], "--fanouts", "positive integers"),
    ("llm-timeout", ["train", *BASE, "--controller", "llm", "--llm-timeout", "0"], "--llm-timeout", "greater than 0"),
    ("dataset", ["train", "--dataset", "nope", "--parts", "2"], "--dataset", "unknown dataset"),
    ("trainer", ["train", *BASE, "--trainer", "/nonexistent/loop.py"], "--trainer", "not a file"),
    ("timeout", ["train", *BASE, "--timeout", "0"], "--timeout", "positive"),
    ("compare-fractions", ["compare", *BASE, "--controllers", "none,fixed", "--fractions", "0.5,1.5"], "--fractions",
     "1.5"),
    ("compare-controllers", ["compare", *BASE, "--controllers", "none,bogus"], "--controllers", "unknown: bogus"),
    ("compare-prompt", ["compare", *BASE, "--controllers", "llm", "--prompt-version", "v9"], "--prompt-version",
     "not found"),
    ("replay-not-a-run", ["replay", "{no_run}"], "TRACE", "not a recorded run"),
    ("replay-rank", ["replay", "{run}", "--rank", "5"], "--rank", "traced ranks: 0"),
    ("replay-model", ["replay", "{run}", "--controller", "llm", "--model", "ollama:"], "--model", "model string"),
    ("replay-llm-timeout", ["replay", "{run}", "--controller", "llm", "--llm-timeout", "0"], "--llm-timeout",
     "greater than 0"),
    ("replay-controller", ["replay", "{run}", "--controller", "bogus"], "--controller", "unknown controller"),
]


@pytest.mark.parametrize("case, args, option, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_anything_starts(tmp_path: Path, files, case, args, option, words) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    env = {**os.environ, "RUDDER_CACHE": str(cache), "OLLAMA_HOST": f"127.0.0.1:{PORT}", "COLUMNS": "80"}
    tic = time.monotonic()
    proc = rudder(*[a.format(**files) for a in args], "--out", str(out), env=env, timeout=120)
    elapsed = time.monotonic() - tic
    print(f"\n[{case}] {elapsed:.2f} s, exit {proc.returncode}: {proc.stderr.strip()}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()  # one line, however narrow the terminal
    assert line.startswith(f"error: {option}: ") or line.startswith(f"error: Invalid value for '{option}'"), line
    assert words in line, line
    assert not out.exists()
    assert not cache.exists() or not any(cache.iterdir())
    assert elapsed < FAIL_WITHIN_S


def test_a_bad_option_leaves_an_existing_run_untouched_even_with_overwrite(tmp_path: Path) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    (out / "logs").mkdir(parents=True)
    (out / "summary.json").write_text('{"epochs": 1}\n')
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    proc = rudder("train", *BASE, "--controller", "llm", "--prompt-version", "v9", "--out", str(out), "--overwrite",
                  env={**os.environ, "RUDDER_CACHE": str(cache)})
    assert proc.returncode == 2 and "--prompt-version" in proc.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / "summary.json").read_text() == '{"epochs": 1}\n'
