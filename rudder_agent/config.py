"""Typed run configuration shared by the CLI, the launcher and every trainer: each setting declared once here.

The command-line options of `train`, `compare` and `replay` take their defaults, help and bounds
from these fields (``rudder_agent.options``), and the agent's settings copy theirs
(``AgentConfig.from_buffer``), so no two places can disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

ControllerName = Literal["none", "fixed", "massivegnn", "llm", "classifier"]
Mode = Literal["async", "sync"]
Policy = Literal["decay", "lfu", "lookahead"]


def _switch_word(value: Any) -> Any:
    """Older runs recorded the swap test as a true/false flag: read those as on/off."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


SwapTest = Annotated[Literal["auto", "on", "off"], BeforeValidator(_switch_word)]


def renamed(name: str, old: str) -> AliasChoices:
    """Accept a field under its name from before a rename, so configs and traces written earlier still load."""
    return AliasChoices(name, old)


class GNNConfig(BaseModel):
    """GraphSAGE and optimiser hyper-parameters (DGL's distributed GraphSAGE defaults)."""

    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(256, ge=1, description="GraphSAGE hidden size")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="GraphSAGE dropout")
    lr: float = Field(0.003, gt=0.0, description="Adam learning rate")


class BufferConfig(BaseModel):
    """Persistent buffer, scoring policy and the controller that times replacements."""

    model_config = ConfigDict(extra="forbid")
    controller: ControllerName = Field("none", description="none, fixed, massivegnn, llm or classifier")
    fraction: float = Field(0.25, gt=0.0, le=1.0,
                            description="buffer capacity as a fraction of the partition's halo nodes (ceil)")
    policy: Policy = Field("lookahead", description="what to keep: lookahead (next use in the sampled window, then "
                                                    "access counts), lfu (access counts) or decay (the paper's scoring)")
    lookahead: int = Field(8, ge=1, description="lookahead: minibatches sampled ahead (the window W)")
    delta: float = Field(1.0, gt=0.0, description="scoring policy: score gained when a buffered node is sampled")
    gamma: float = Field(0.95, gt=0.0, lt=1.0,
                         description="scoring policy: score decay per minibatch a buffered node is not sampled")
    tau: float | None = Field(None, gt=0.0, description="scoring policy: staleness threshold; unset: gamma**25")
    period: int = Field(32, ge=1, description="massivegnn: replace every P minibatches")
    mode: Mode = Field("async",
                       description="sync: the prefetcher waits for a decision every minibatch; async: it does not")
    llm_model: str = Field("llamacpp:smollm2-135m", validation_alias=renamed("llm_model", "model"),
                           description="llm: model string, ollama:<m> | llamacpp:<gguf> | openai:<m>@<url> "
                                       "| scripted:<file>")
    prompt_version: str = Field("v2", description="llm: prompt template version (a directory under "
                                                  "rudder_agent/prompts/decision/; v1: the paper's)")
    cot: bool = Field(False, description="llm: bounded step-by-step reasoning before the decision")
    fallback: Literal["skip", "rule"] = Field("skip", description="llm: skip or rule, on invalid answers and timeouts")
    llm_whatif: bool = Field(True, description="llm: play replace and skip forward on a fork of the buffer before "
                                               "deciding (off: the paper's agent, guided by rules of thumb only)")
    llm_min_difference_pct: float = Field(
        0.5, ge=0.0, le=100.0,
        description="llm: ask the model only when replace and skip differ by more than this % of skip's rows over "
                    "the what-if's minibatches; below, the guard takes the what-if's answer (no-difference); 0: always ask")
    llm_swap_test: SwapTest = Field(
        "auto", description="llm: decide by a swap test where the what-if is contested: the same prompt once more with "
                            "replace's and skip's figures exchanged; the answer is replace when the model favours "
                            "replace more with the figures as measured (cancels a small model's bias for one word; 2 "
                            "calls per decision). on: always; auto: where replacing costs rows (decay), not where the "
                            "keep policy re-ranks for free (lfu, lookahead: there the what-if favoured replace in every "
                            "contested window measured); off: the model's word. Needs log-probabilities: llamacpp:, "
                            "openai: (auto is off on other backends)")
    llm_duty_cycle: float = Field(
        0.03, gt=0.0, le=1.0,
        description="llm, async: the largest share of one CPU the agent's thread may use deciding (what-if play, "
                    "prompts); after each answer it rests in proportion to the CPU time the answer took, and "
                    "minibatches meanwhile go on as without an answer; 1: never rest (sync mode and replay never do)")
    llm_threads: int = Field(1, ge=1, description="llm: llama.cpp threads of the embedded model (1 beside training)")
    llm_timeout_s: float = Field(30.0, gt=0, description="llm: seconds per model call (each retry gets its own), "
                                                         "then a counted fallback")
    classifier_path: Path | None = Field(None, description="classifier: trained artefact (.rcls)")
    finetune_every: int = Field(0, ge=0, description="classifier: refit the decision head every N decisions (0: never)")

    @property
    def window(self) -> int:
        """Minibatches the keep policy sees ahead: the look-ahead window under ``lookahead``, else none."""
        return self.lookahead if self.policy == "lookahead" else 0

    def window_for(self, sees_ahead: bool) -> int:
        """Minibatches sampled ahead: the policy's window, or W for a controller that plays answers forward."""
        return self.lookahead if sees_ahead else self.window


MASK_KEYS = ("train_mask", "val_mask", "test_mask")
"""The node-data names the trainer reads its train, val and test splits from."""


class GraphSource(BaseModel):
    """Your own graph instead of a named dataset: exactly one of ``graph`` and ``part_config``, and its node data."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    graph: Path | None = Field(
        None, description="your own graph instead of --dataset: a file written by dgl.save_graphs (its first graph), "
                          "or a GraphSAINT folder (adj_full.npz, class_map.json, role.json, optional feats.npy)")
    part_config: Path | None = Field(
        None, description="an existing DistDGL partition instead of --dataset: the JSON that "
                          "dgl.distributed.partition_graph wrote, used as is (node data feat, label, "
                          f"{', '.join(MASK_KEYS)}); --parts defaults to its num_parts")
    feat_key: str = Field("feat", description="--graph DGL file: node-data name of the features")
    label_key: str = Field("label", description="--graph DGL file: node-data name of the labels (integers)")
    mask_keys: list[str] = Field(default_factory=lambda: list(MASK_KEYS),
                                 description="--graph DGL file: node-data names of the train, val and test masks, "
                                             "comma-separated")
    feat_dim: int = Field(128, ge=4, description="--graph GraphSAINT folder without feats.npy: width of the "
                                                 "structural features built instead (as for ogbn-arxiv)")
    digest: str = Field("", description="sha256 of the graph's bytes (a partition: of its JSON and file sizes and "
                                        "times), recorded with the run; filled in when the graph is read")

    @field_validator("mask_keys")
    @classmethod
    def _three_masks(cls, v: list[str]) -> list[str]:
        if len(v) != 3 or not all(v):
            raise ValueError("mask_keys must name three masks (train, val, test), e.g. train_mask,val_mask,test_mask")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "GraphSource":
        if (self.graph is None) == (self.part_config is None):
            raise ValueError("give exactly one of graph and part_config")
        return self

    @property
    def format(self) -> Literal["dgl", "graphsaint", "partition"]:
        """How the graph is stored: a partition JSON, a GraphSAINT folder, or a dgl.save_graphs file."""
        if self.part_config is not None:
            return "partition"
        return "graphsaint" if self.graph.is_dir() else "dgl"

    @property
    def path(self) -> Path:
        """The file or folder given."""
        return self.part_config if self.part_config is not None else self.graph


class TrainSettings(BaseModel):
    """What a user chooses for a run; TrainConfig adds where the partition lies."""

    model_config = ConfigDict(extra="forbid")
    dataset: str = Field("ogbn-arxiv", description="dataset name (see `rudder datasets`); a run on your own "
                                                   "graph is named graph:<name>")
    own_graph: GraphSource | None = Field(None, description="your own graph (--graph or --part-config) instead of a "
                                                            "named dataset")
    parts: int = Field(2, ge=1, description="partitions = machines = trainers")
    part_method: Literal["metis", "random"] = Field("metis", description="partitioning: metis or random")
    epochs: int = Field(3, ge=1, description="training epochs")
    batch_size: int = Field(1000, ge=1, description="seed nodes per minibatch")
    fanouts: list[int] = Field(default_factory=lambda: [10, 25],
                               description="neighbours sampled per layer, comma-separated")
    eval_batch_size: int = Field(2000, ge=1, description="seed nodes per evaluation minibatch")
    seed: int = Field(0, description="random seed")
    gnn: GNNConfig = Field(default_factory=GNNConfig, validation_alias=renamed("gnn", "model"),
                           description="GraphSAGE and optimiser settings")
    buffer: BufferConfig = Field(default_factory=BufferConfig, description="buffer, scoring policy and controller")
    trace: bool = Field(False, description="record the per-minibatch access trace")
    trace_only: bool = Field(False, description="record traces without backward/optimizer steps")
    out_dir: Path = Field(description="run directory (metrics, logs, summary.json)")
    network: Literal["loopback", "netns"] = Field(
        "loopback", description="loopback, or netns: one network namespace per machine, links shaped to link_rate "
                                "(root only)")
    link_rate: str | None = Field("1gbit", description="netns: tc tbf rate of each machine's link, e.g. 1gbit, 200mbit")
    verify: bool = Field(False, description="compare every served feature row with a direct DistTensor read")
    prefetch: int = Field(1, ge=1, le=16, description="minibatches sampled and fetched ahead of training (each holds "
                                                     "its blocks and features until trained on)")
    fail_at_step: int | None = Field(None, description="testing aid: raise in trainer rank 0 at this step")

    @field_validator("fanouts")
    @classmethod
    def _fanouts_positive(cls, v: list[int]) -> list[int]:
        if not v or any(f < 1 for f in v):
            raise ValueError("fanouts must be a non-empty list of positive integers, e.g. 10,25")
        return v


class TrainConfig(TrainSettings):
    """Everything one trainer needs; serialised to JSON by the launcher."""

    part_config: Path
    graph_name: str


def current_names(model: type[BaseModel], settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with keys written before a rename (a field's older alias) under the field's name."""
    old = {choice: name for name, info in model.model_fields.items()
           if isinstance(info.validation_alias, AliasChoices)
           for choice in info.validation_alias.choices if choice != name}
    return {old.get(key, key): value for key, value in settings.items()}


RECORDED_BEFORE: dict[str, Any] = {"policy": "decay"}
"""Buffer settings added after runs were first recorded, with the value every earlier run used."""


def recorded_config(data: dict[str, Any]) -> dict[str, Any]:
    """A recorded run's config dict with the settings it predates filled in (so it replays as it ran)."""
    buffer = data.get("buffer")
    if isinstance(buffer, dict):
        data = {**data, "buffer": {**RECORDED_BEFORE, **buffer}}
    return data


def read_run_config(path: Path) -> TrainConfig:
    """The config.json of a recorded run."""
    return TrainConfig.model_validate(recorded_config(json.loads(path.read_text())))
