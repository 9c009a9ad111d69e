"""What lets the embedded server reuse most of the last prompt: history first in v2, shifted chunks reused."""

from __future__ import annotations

import string
import subprocess

import pytest

from rudder_agent.llm import embedded
from rudder_agent.llm.embedded import CACHE_REUSE_TOKENS, EmbeddedServer
from rudder_agent.paths import PROMPTS_DIR


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_history_comes_before_this_windows_figures(version):
    """The history changes by a row per request; the window's figures change entirely: the history goes first."""
    text = (PROMPTS_DIR / "decision" / version / "user.md").read_text()
    names = [name for _, name, _, _ in string.Formatter().parse(text) if name]
    assert names[0] == "history"


class Launched(Exception):
    """Stops the launch once the command is seen."""


def test_the_embedded_server_reuses_shifted_chunks_of_the_last_prompt(tmp_path, monkeypatch):
    seen = []

    def popen(command, **_kw):
        seen.append(command)
        raise Launched

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(Launched):
        EmbeddedServer(tmp_path / "m.gguf", n_threads=1, seed=0).start()
    command = seen[0]
    assert CACHE_REUSE_TOKENS > 0
    assert command[command.index("--cache-reuse") + 1] == str(CACHE_REUSE_TOKENS)
    assert embedded._CHILD.read_text().count("params.n_cache_reuse = args.cache_reuse") == 1
