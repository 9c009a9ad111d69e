"""Every bad input is refused before anything starts: exit 2, one line naming the option, no traceback.

Each case runs the real `rudder` app (in this process, through typer's test runner; two cases also as a
child process, as a user starts it) with a private, empty RUDDER_CACHE and an --out that does not exist.
Afterwards the cache is still empty (nothing was partitioned), --out is still absent (no run directory:
the launcher writes its logs there before it starts anything) and this process has no new child process
(no server, trainer or model server was started).
"""

from __future__ import annotations

import json
import os
import socket
import zipfile
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from rudder_agent.classifiers.features import CURRENT_SCHEMA
from rudder_agent.cli import app
from rudder_agent.cluster import netns
from rudder_agent.config import TrainConfig
from rudder_agent.paths import PROJECT_ROOT
from tests.integration.helpers import rudder

BASE = ["--dataset", "cora", "--parts", "2", "--epochs", "1"]
EXAMPLE = PROJECT_ROOT / "examples" / "distdgl_graphsage.py"
SUBPROCESS = ("model-unknown-kind", "network-needs-root")
"""Cases also run as a child process through `python -m rudder_agent.cli`, exactly as a user starts it."""


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
    hosts = {"names": "# the machines\n10.0.0.1\nnode-b 30050\n", "one": "10.0.0.1\n", "two": "10.0.0.1\n10.0.0.2\n"}
    for name, content in hosts.items():
        (root / f"hosts-{name}").write_text(content)
    return {**{f"hosts_{name}": str(root / f"hosts-{name}") for name in hosts}, "gguf": str(text), "empty": str(root / "empty.jsonl"), "not_zip": str(not_zip),
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
    ("trainer-placeholder", ["train", *BASE, "--trainer", str(EXAMPLE), "--", "--ip_config", "{{ip_conifg}}"],
     "--trainer", "unknown placeholder {ip_conifg} in the script's arguments; known: {ip_config}"),
    ("trainer-args-alone", ["train", *BASE, "--", "--ip_config", "{{ip_config}}"], "--trainer",
     "need --trainer SCRIPT"),
    ("timeout", ["train", *BASE, "--timeout", "0"], "--timeout", "positive"),
    ("link-rate", ["train", *BASE, "--network", "netns", "--link-rate", "fast"], "--link-rate",
     "not a rate tc understands"),
    ("network-needs-root", ["train", *BASE, "--network", "netns"], "--network", "needs root"),
    ("compare-network-needs-root", ["compare", *BASE, "--controllers", "none", "--network", "netns"], "--network",
     "needs root"),
    ("compare-fractions", ["compare", *BASE, "--controllers", "none,fixed", "--fractions", "0.5,1.5"], "--fractions",
     "1.5"),
    ("compare-controllers", ["compare", *BASE, "--controllers", "none,bogus"], "--controllers", "unknown: bogus"),
    ("compare-prompt", ["compare", *BASE, "--controllers", "llm", "--prompt-version", "v9"], "--prompt-version",
     "not found"),
    ("hosts-missing", ["train", *BASE, "--hosts", "/nonexistent/hosts"], "--hosts", "cannot read"),
    ("hosts-not-an-address", ["train", *BASE, "--hosts", "{hosts_names}"], "--hosts", "line 3 ('node-b 30050'): 'node-b' is not an IP"),
    ("hosts-count", ["train", *BASE, "--hosts", "{hosts_one}"], "--hosts", "names 1 host(s) but the run has 2"),
    ("hosts-and-netns", ["train", *BASE, "--hosts", "{hosts_two}", "--network", "netns"], "--hosts",
     "mutually exclusive"),
    ("ssh-config-missing", ["train", *BASE, "--hosts", "{hosts_two}", "--ssh-config", "/nonexistent/cfg"],
     "--ssh-config", "not a file"),
    ("trainers-per-machine", ["train", *BASE, "--trainers-per-machine", "0"], "--trainers-per-machine",
     "greater than or equal to 1"),
    ("replay-not-a-run", ["replay", "{no_run}"], "TRACE", "not a recorded run"),
    ("replay-rank", ["replay", "{run}", "--rank", "5"], "--rank", "traced ranks: 0"),
    ("replay-model", ["replay", "{run}", "--controller", "llm", "--model", "ollama:"], "--model", "model string"),
    ("replay-llm-timeout", ["replay", "{run}", "--controller", "llm", "--llm-timeout", "0"], "--llm-timeout",
     "greater than 0"),
    ("replay-controller", ["replay", "{run}", "--controller", "bogus"], "--controller", "unknown controller"),
]


def without_root(monkeypatch) -> None:
    """This process as an unprivileged user, for netns's check (the child-process case runs as nobody for real)."""
    monkeypatch.setattr(netns.os, "geteuid", lambda: 65534)


NEEDS = {"network-needs-root": without_root, "compare-network-needs-root": without_root}
"""Cases that need this process to look other than it is; every other case runs as it is."""
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def started_nothing(out: Path, cache: Path, children_before: set[int]) -> None:
    assert not out.exists()
    assert not cache.exists() or not any(cache.iterdir())
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children_before


@pytest.mark.parametrize("case, args, option, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_anything_starts(tmp_path: Path, files, monkeypatch, case, args, option,
                                                      words) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    if case in NEEDS:
        NEEDS[case](monkeypatch)
    env = {"RUDDER_CACHE": str(cache), "OLLAMA_HOST": f"127.0.0.1:{PORT}", "COLUMNS": "80"}
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    result = CliRunner().invoke(app, [*[a.format(**files) for a in args], "--out", str(out)], env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not an exception escaping the command
    assert "Traceback" not in result.output and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()  # one line, however narrow the terminal
    assert line.startswith(f"error: {option}: ") or line.startswith(f"error: Invalid value for '{option}'"), line
    assert words in line, line
    started_nothing(out, cache, children)


@pytest.mark.integration
@pytest.mark.parametrize("case", SUBPROCESS)
def test_bad_input_is_refused_by_the_installed_command(tmp_path: Path, files, case) -> None:
    """The same, through the real `rudder` process: stderr's one line, exit 2, nothing written."""
    _, args, option, words = next(c for c in CASES if c[0] == case)
    tmp_path.chmod(0o777)  # an unprivileged run may write here (pytest's tmp_path is root-only)
    out, cache = tmp_path / "run", tmp_path / "cache"
    env = {**os.environ, "RUDDER_CACHE": str(cache), "COLUMNS": "80", "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "HOME": str(tmp_path)}
    prefix = NOBODY if case in NEEDS and os.geteuid() == 0 else []
    proc = rudder(*[a.format(**files) for a in args], "--out", str(out), env=env, prefix=prefix, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"error: {option}: ") and words in proc.stderr, proc.stderr
    assert not out.exists() and (not cache.exists() or not any(cache.iterdir()))


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="runs a child as nobody: needs root")
def test_runs_as_nobody_really_are_unprivileged() -> None:
    """The prefix above really drops root (else the needs-root case would test nothing)."""
    import subprocess
    import sys

    proc = subprocess.run([*NOBODY, sys.executable, "-c", "import os; print(os.geteuid(), os.getegid())"],
                          capture_output=True, text=True)
    assert proc.stdout.split() == ["65534", "65534"], proc.stderr


def test_a_bad_option_leaves_an_existing_run_untouched_even_with_overwrite(tmp_path: Path) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    (out / "logs").mkdir(parents=True)
    (out / "summary.json").write_text('{"epochs": 1}\n')
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = CliRunner().invoke(app, ["train", *BASE, "--controller", "llm", "--prompt-version", "v9", "--out",
                                      str(out), "--overwrite"], env={"RUDDER_CACHE": str(cache)})
    assert result.exit_code == 2 and result.stderr.startswith("error: --prompt-version: ")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / "summary.json").read_text() == '{"epochs": 1}\n'
