"""The `llm` controller's settings: the agent's whole configuration, one variant of the settings tree.

Its command-line settings (model, prompt, fallback, what-if, swap test, threads, timeout) are
flagged by the rule of :mod:`rudder_agent.settings`; the others are the agent's own knobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from rudder_agent.paths import PROMPTS_DIR
from rudder_agent.settings.flags import INTERNAL, env_names, flag, flag_of

if TYPE_CHECKING:
    from rudder_agent.decision import WhatIf
    from rudder_agent.llm.backends import BackendOptions

SWAP_TEST_TOP_LOGPROBS = 10
"""Alternatives per answer token the swap test reads (replace and skip are among them at the decision)."""
ENV_PREFIX = "RUDDER_AGENT_"
"""Studio's environment names a setting ``RUDDER_AGENT_<NAME>`` (``RUDDER_AGENT_MODEL``)."""


class AgentConfig(BaseModel):
    """Everything the `llm` controller needs besides the run's static facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["llm"] = "llm"
    model: str = Field("llamacpp:smollm2-135m",
                       description="llm: model string, ollama:<m> | llamacpp:<gguf> | openai:<m>@<url> "
                                   "| scripted:<file>")
    prompt_version: str = Field("v2", description="llm: prompt template version (a directory under "
                                                  "rudder_agent/prompts/decision/; v1: the paper's)",
                                json_schema_extra=flag(env=("RUDDER_AGENT_PROMPT",)))
    prompts_dir: Path = Field(PROMPTS_DIR, exclude=True, json_schema_extra=INTERNAL,
                              description="root holding decision/<version>/ (the packaged templates)")
    cot: bool = Field(False, description="llm: bounded step-by-step reasoning before the decision")
    fallback: Literal["skip", "rule"] = Field("skip", description="llm: skip or rule, on invalid answers and timeouts")
    low_hit_pct: float = Field(50.0, ge=0, le=100, json_schema_extra=INTERNAL,
                               description="the rule fallback replaces below this window %-Hits")
    timeout_s: float = Field(30.0, gt=0, json_schema_extra=flag("--llm-timeout"),
                             description="llm: seconds per model call (each retry gets its own), then a counted "
                                         "fallback")
    retries: int = Field(1, ge=0, json_schema_extra=INTERNAL,
                         description="extra attempts after a transport error (not after a bad answer)")
    max_tokens: int | None = Field(None, gt=0, json_schema_extra=INTERNAL,
                                   description="answer token budget; default 160, or 512 with cot")
    history_len: int = Field(5, ge=0, json_schema_extra=INTERNAL,
                             description="past decisions (with their effect) kept and shown to the model")
    guard: bool = Field(True, json_schema_extra=INTERNAL,
                        description="skip without asking the model when a replacement cannot help")
    guard_end_fraction: float = Field(0.05, ge=0, lt=1, json_schema_extra=INTERNAL,
                                      description="never replace in this last share of minibatches")
    guard_fill_fraction: float = Field(0.1, ge=0, le=1, json_schema_extra=INTERNAL,
                                       description="replace without asking while more than this share of slots is "
                                                   "empty")
    whatif: bool = Field(True, json_schema_extra=flag("--llm-whatif/--no-llm-whatif"),
                         description="llm: play replace and skip forward on a fork of the buffer before deciding "
                                     "(off: the paper's agent, guided by rules of thumb only)")
    min_difference_pct: float = Field(
        0.5, ge=0.0, le=100.0, json_schema_extra=flag("--llm-min-difference"),
        description="llm: ask the model only when replace and skip differ by more than this % of skip's rows over "
                    "the what-if's minibatches; below, the guard takes the what-if's answer (no-difference); "
                    "0: always ask")
    duty_cycle: float = Field(
        0.03, gt=0.0, le=1.0, json_schema_extra=flag("--llm-duty-cycle"),
        description="llm, async: the largest share of one CPU the agent's thread may use deciding (what-if play, "
                    "prompts); after each answer it rests in proportion to the CPU time the answer took, and "
                    "minibatches meanwhile go on as without an answer; 1: never rest (sync mode and replay never do)")
    swap_test: Literal["auto", "on", "off"] = Field(
        "auto", json_schema_extra=flag("--llm-swap-test", metavar="auto|on|off"),
        description="llm: decide by a swap test where the what-if is contested: the same prompt once more with "
                    "replace's and skip's figures exchanged; the answer is replace when the model favours "
                    "replace more with the figures as measured (cancels a small model's bias for one word; 2 "
                    "calls per decision). on: always; auto: where replacing costs rows (decay), not where the "
                    "keep policy re-ranks for free (lfu, lookahead: there the what-if favoured replace in every "
                    "contested window measured); off: the model's word. Needs log-probabilities: llamacpp:, "
                    "openai: (auto is off on other backends)")
    warm_up: bool = Field(True, json_schema_extra=INTERNAL,
                          description="one call at set-up so the runtime caches the static prompt prefix")
    seed: int = Field(0, json_schema_extra=INTERNAL,
                      description="sampling seed of the model (answers are greedy: temperature 0)")
    n_threads: int = Field(1, ge=1, json_schema_extra=flag("--llm-threads"),
                           description="llm: llama.cpp threads of the embedded model (1 beside training)")
    ollama_host: str | None = Field(None, json_schema_extra=INTERNAL, description="overrides $OLLAMA_HOST")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AgentConfig:
        """The settings ``environ`` gives (``RUDDER_AGENT_<NAME>`` for each flagged one); defaults for the rest."""
        given = {}
        for name, info in cls.model_fields.items():
            if name != "name" and flag_of(info) is not None:
                value = next((environ[v] for v in env_names(ENV_PREFIX, name, info) if v in environ), None)
                if value is not None:
                    given[name] = value
        return cls.model_validate(given)

    @property
    def answer_tokens(self) -> int:
        """Token budget of one answer."""
        return self.max_tokens or (512 if self.cot else 160)

    @property
    def reads_logprobs(self) -> bool:
        """The swap test may run: asked for (on), or auto on a backend that returns log-probabilities."""
        from rudder_agent.llm.backends import returns_logprobs

        return self.swap_test == "on" or (self.swap_test == "auto" and returns_logprobs(self.model))

    def swaps(self, whatif: WhatIf | None) -> bool:
        """Whether this what-if's request is decided by the swap test (two calls) rather than the model's word."""
        if whatif is None or not self.reads_logprobs:
            return False
        return self.swap_test == "on" or not whatif.replace_is_free

    def backend_options(self) -> BackendOptions:
        """What the chat backend needs besides the model string, all taken from here."""
        from rudder_agent.llm.backends import BackendOptions, answer_model

        return BackendOptions(schema=answer_model(self.model, self.cot), timeout_s=self.timeout_s,
                              retries=self.retries, seed=self.seed, max_tokens=self.answer_tokens,
                              n_threads=self.n_threads, ollama_host=self.ollama_host,
                              top_logprobs=SWAP_TEST_TOP_LOGPROBS if self.reads_logprobs else 0)


CLOSED_LOOP_ONLY: tuple[str, ...] = ("whatif", "duty_cycle")
"""Agent settings that act only in a closed loop: an open-loop replay reads each decision's what-if from the
record and paces no live thread, so it cannot override them."""


def open_loop_settings() -> tuple[str, ...]:
    """The agent settings an open-loop replay may override: every flagged one but :data:`CLOSED_LOOP_ONLY`."""
    return tuple(name for name, info in AgentConfig.model_fields.items()
                 if name != "name" and flag_of(info) is not None and name not in CLOSED_LOOP_ONLY)
