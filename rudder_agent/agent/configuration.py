"""Settings of one agent run: which model, which prompt, how to fail safely.

The settings a run chooses on the command line (model, prompt, cot, fallback, threads, timeout)
are declared once, on ``BufferConfig``; AgentConfig copies those fields and adds the agent's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from rudder_agent.config import BufferConfig
from rudder_agent.decision import WhatIf
from rudder_agent.llm.backends import BackendOptions, returns_logprobs
from rudder_agent.llm.output import answer_schema
from rudder_agent.paths import PROMPTS_DIR

FROM_BUFFER = {"model": "llm_model", "prompt_version": "prompt_version", "cot": "cot", "fallback": "fallback",
               "n_threads": "llm_threads", "timeout_s": "llm_timeout_s", "min_difference_pct": "llm_min_difference_pct",
               "whatif": "llm_whatif", "duty_cycle": "llm_duty_cycle",
               "swap_test": "llm_swap_test"}
"""AgentConfig field -> the BufferConfig field that declares it."""
SWAP_TEST_TOP_LOGPROBS = 10
"""Alternatives per answer token the swap test reads (replace and skip are among them at the decision)."""


def buffer_field(name: str) -> Any:
    """A BufferConfig field (default, description, bounds) for AgentConfig, without its rename alias."""
    info: FieldInfo = BufferConfig.model_fields[name]
    return FieldInfo.merge_field_infos(info, validation_alias=None)


class AgentConfig(BaseModel):
    """Everything the `llm` controller needs besides the run's static facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = buffer_field("llm_model")
    prompt_version: str = buffer_field("prompt_version")
    prompts_dir: Path = Field(PROMPTS_DIR, description="root holding decision/<version>/ (the packaged templates)")
    cot: bool = buffer_field("cot")
    fallback: Literal["skip", "rule"] = buffer_field("fallback")
    low_hit_pct: float = Field(50.0, ge=0, le=100, description="the rule fallback replaces below this window %-Hits")
    timeout_s: float = buffer_field("llm_timeout_s")
    retries: int = Field(1, ge=0, description="extra attempts after a transport error (not after a bad answer)")
    max_tokens: int | None = Field(None, gt=0, description="answer token budget; default 160, or 512 with cot")
    history_len: int = Field(5, ge=0, description="past decisions (with their effect) kept and shown to the model")
    guard: bool = Field(True, description="skip without asking the model when a replacement cannot help")
    guard_end_fraction: float = Field(0.05, ge=0, lt=1, description="never replace in this last share of minibatches")
    guard_fill_fraction: float = Field(0.1, ge=0, le=1,
                                       description="replace without asking while more than this share of slots is empty")
    whatif: bool = buffer_field("llm_whatif")
    min_difference_pct: float = buffer_field("llm_min_difference_pct")
    duty_cycle: float = buffer_field("llm_duty_cycle")
    swap_test: Literal["auto", "on", "off"] = buffer_field("llm_swap_test")  # the validator comes with the field
    warm_up: bool = Field(True, description="one call at set-up so the runtime caches the static prompt prefix")
    seed: int = Field(0, description="sampling seed of the model (answers are greedy: temperature 0)")
    n_threads: int = buffer_field("llm_threads")
    ollama_host: str | None = Field(None, description="overrides $OLLAMA_HOST")

    @classmethod
    def from_buffer(cls, cfg: BufferConfig, **more: Any) -> AgentConfig:
        """The agent a run's buffer settings name; ``more`` sets the agent's own fields (guard, retries, ...)."""
        return cls(**{mine: getattr(cfg, theirs) for mine, theirs in FROM_BUFFER.items()}, **more)

    @property
    def answer_tokens(self) -> int:
        """Token budget of one answer."""
        return self.max_tokens or (512 if self.cot else 160)

    @property
    def reads_logprobs(self) -> bool:
        """The swap test may run: asked for (on), or auto on a backend that returns log-probabilities."""
        return self.swap_test == "on" or (self.swap_test == "auto" and returns_logprobs(self.model))

    def swaps(self, whatif: WhatIf | None) -> bool:
        """Whether this what-if's request is decided by the swap test (two calls) rather than the model's word."""
        if whatif is None or not self.reads_logprobs:
            return False
        return self.swap_test == "on" or not whatif.replace_is_free

    def backend_options(self) -> BackendOptions:
        """What the chat backend needs besides the model string, all taken from here."""
        return BackendOptions(schema=answer_schema(self.cot), timeout_s=self.timeout_s, retries=self.retries,
                              seed=self.seed, max_tokens=self.answer_tokens, n_threads=self.n_threads,
                              ollama_host=self.ollama_host, top_logprobs=SWAP_TEST_TOP_LOGPROBS if self.reads_logprobs else 0)
