"""Typed run configuration shared by the CLI, the launcher and every trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ControllerName = Literal["none", "fixed", "massivegnn", "llm", "classifier"]
Mode = Literal["async", "sync"]


class ModelConfig(BaseModel):
    """GraphSAGE and optimiser hyper-parameters (DGL's distributed GraphSAGE defaults)."""

    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    lr: float = Field(0.003, gt=0.0)


class BufferConfig(BaseModel):
    """Persistent buffer, scoring policy and the controller that times replacements."""

    model_config = ConfigDict(extra="forbid")
    controller: ControllerName = "none"
    fraction: float = Field(0.25, gt=0.0, le=1.0, description="capacity = ceil(fraction x halo nodes)")
    delta: float = Field(1.0, gt=0.0)
    gamma: float = Field(0.95, gt=0.0, lt=1.0)
    tau: float | None = Field(None, gt=0.0, description="staleness threshold; default gamma**25")
    period: int = Field(32, ge=1, description="massivegnn: replace every P minibatches")
    mode: Mode = "async"
    model: str = "llamacpp:smollm2-135m"
    prompt_version: str = "v1"
    cot: bool = False
    fallback: Literal["skip", "rule"] = Field("skip", description="llm: decision on invalid answers or timeouts")
    llm_threads: int = Field(1, ge=1, description="llm: llama.cpp threads of the embedded model (1 beside training)")
    llm_timeout_s: float = Field(30.0, gt=0, description="llm: per model call; then a counted fallback")
    classifier_path: Path | None = Field(None, description="classifier: trained artefact (.rcls)")
    finetune_every: int = Field(0, ge=0, description="classifier: refit the decision head every N decisions (0: never)")


class TrainConfig(BaseModel):
    """Everything one trainer needs; serialised to JSON by the launcher."""

    model_config = ConfigDict(extra="forbid")
    dataset: str
    parts: int = Field(ge=1)
    part_method: Literal["metis", "random"] = "metis"
    part_config: Path
    graph_name: str
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(1000, ge=1)
    fanouts: list[int] = Field(default_factory=lambda: [10, 25])
    eval_batch_size: int = Field(2000, ge=1)
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    trace: bool = False
    trace_only: bool = Field(False, description="record traces without backward/optimizer steps")
    out_dir: Path
    network: Literal["loopback", "netns"] = Field(
        "loopback", description="netns: one network namespace per machine, links shaped to link_rate (root only)")
    link_rate: str | None = Field("1gbit", description="tc tbf rate of every machine's link with network=netns")
    verify: bool = Field(False, description="compare every served feature row with a direct DistTensor read")
    fail_at_step: int | None = Field(None, description="testing aid: raise in trainer rank 0 at this step")

    @field_validator("fanouts")
    @classmethod
    def _fanouts_positive(cls, v: list[int]) -> list[int]:
        if not v or any(f < 1 for f in v):
            raise ValueError("fanouts must be a non-empty list of positive integers, e.g. 10,25")
        return v
