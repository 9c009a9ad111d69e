"""Settings of one agent run: which model, which prompt, how to fail safely."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rudder_agent.paths import PROJECT_ROOT


class AgentConfig(BaseModel):
    """Everything the `llm` controller needs besides the run's static facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field("llamacpp:smollm2-135m",
                       description="ollama:<m> | llamacpp:<gguf> | openai:<m>@<url> | scripted:<file>")
    prompt_version: str = Field("v1", description="directory under prompts/decision/")
    prompts_dir: Path = Field(PROJECT_ROOT / "prompts", description="root holding decision/<version>/")
    cot: bool = Field(False, description="ask for bounded step-by-step reasoning before the decision")
    fallback: Literal["skip", "rule"] = Field("skip", description="decision when the model fails or answers invalidly")
    low_hit_pct: float = Field(50.0, ge=0, le=100, description="the rule fallback replaces below this window %-Hits")
    timeout_s: float = Field(30.0, gt=0, description="per model call; each retry gets its own")
    retries: int = Field(1, ge=0, description="extra attempts after a transport error (not after a bad answer)")
    max_tokens: int | None = Field(None, gt=0, description="answer token budget; default 160, or 512 with cot")
    history_len: int = Field(5, ge=0, description="past decisions (with their effect) kept and shown to the model")
    guard: bool = Field(True, description="skip without asking the model when a replacement cannot help")
    guard_end_fraction: float = Field(0.05, ge=0, lt=1, description="never replace in this last share of minibatches")
    guard_fill_fraction: float = Field(0.1, ge=0, le=1,
                                       description="replace without asking while more than this share of slots is empty")
    warm_up: bool = Field(True, description="one call at set-up so the runtime caches the static prompt prefix")
    seed: int = 0
    n_threads: int = Field(2, ge=1, description="llama.cpp threads for the embedded backend")
    ollama_host: str | None = Field(None, description="overrides $OLLAMA_HOST")

    @property
    def answer_tokens(self) -> int:
        """Token budget of one answer."""
        return self.max_tokens or (512 if self.cot else 160)
