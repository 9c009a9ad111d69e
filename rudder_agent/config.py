"""Typed run configuration shared by the CLI, the launcher and every trainer: each setting declared once here.

The buffer's settings are a tree of their own (:mod:`rudder_agent.settings`); the command-line
options take their defaults, help and bounds from these fields (``rudder_agent.options``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rudder_agent.paths import RUN_CONFIG_ENV
from rudder_agent.settings.buffer import BufferConfig
from rudder_agent.settings.upgrade import CONFIG_VERSION, upgrade


class GNNConfig(BaseModel):
    """GraphSAGE and optimiser hyper-parameters (DGL's distributed GraphSAGE defaults)."""

    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(256, ge=1, description="GraphSAGE hidden size")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="GraphSAGE dropout")
    lr: float = Field(0.003, gt=0.0, description="Adam learning rate")


MASK_KEYS = ("train_mask", "val_mask", "test_mask")
"""The node-data names the trainer reads its train, val and test splits from."""


class NodeDataNames(NamedTuple):
    """The node-data names the trainer reads from its DistGraph."""

    feat: str
    label: str
    masks: tuple[str, ...]  # train, val, test


STANDARD_NODE_DATA = NodeDataNames("feat", "label", tuple(MASK_KEYS))
"""The names of a named dataset's node data, and of a --graph file's once partitioned."""


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
    feat_key: str = Field("feat", description="--graph DGL file or --part-config: node-data name of the features")
    label_key: str = Field("label", description="--graph DGL file or --part-config: node-data name of the labels "
                                                "(integers)")
    mask_keys: list[str] = Field(default_factory=lambda: list(MASK_KEYS),
                                 description="--graph DGL file or --part-config: node-data names of the train, val "
                                             "and test masks, comma-separated")
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
    def node_data(self) -> NodeDataNames:
        """The node-data names given (--feat-key, --label-key, --mask-keys)."""
        return NodeDataNames(self.feat_key, self.label_key, tuple(self.mask_keys))

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
    parts: int = Field(2, ge=1, description="partitions = machines")
    trainers_per_machine: int = Field(1, ge=1, description="trainer processes per machine (DistDGL's num_trainers), "
                                                           "sharing its server; each has its own buffer, controller, "
                                                           "metrics and trace, and the seeds are split across all")
    part_method: Literal["metis", "random"] = Field("metis", description="partitioning: metis or random")
    epochs: int = Field(3, ge=1, description="training epochs")
    batch_size: int = Field(1000, ge=1, description="seed nodes per minibatch")
    fanouts: list[int] = Field(default_factory=lambda: [10, 25],
                               description="neighbours sampled per layer, comma-separated")
    eval_batch_size: int = Field(2000, ge=1, description="seed nodes per evaluation minibatch")
    seed: int = Field(0, description="random seed")
    gnn: GNNConfig = Field(default_factory=GNNConfig, description="GraphSAGE and optimiser settings")
    buffer: BufferConfig = Field(default_factory=BufferConfig, description="buffer, scoring policy and controller")
    trace: bool = Field(False, description="record the per-minibatch access trace")
    trace_only: bool = Field(False, description="record traces without backward/optimizer steps")
    out_dir: Path = Field(description="run directory (metrics, logs, summary.json)")
    network: Literal["loopback", "netns"] = Field(
        "loopback", description="loopback, or netns: one network namespace per machine, links shaped to link_rate "
                                "(root only)")
    link_rate: str | None = Field("1gbit", description="netns: tc tbf rate of each machine's link, e.g. 1gbit, 200mbit")
    hosts: Path | None = Field(None, description="start each machine on its own host over ssh: a file in DGL's "
                                                 "ip_config format, one ADDRESS [PORT] per line, line k = machine k; "
                                                 "every host sees this directory, the run and the partition at the "
                                                 "same paths")
    ssh_config: Path | None = Field(None, description="--hosts: an ssh_config file for reaching the hosts (ssh -F): "
                                                      "user, port, key; default: your own ~/.ssh/config")
    verify: bool = Field(False, description="compare every served feature row with a direct DistTensor read")
    prefetch: int = Field(1, ge=1, le=16, description="minibatches sampled and fetched ahead of training (each holds "
                                                     "its blocks and features until trained on)")
    pull_from: Literal["peers", "servers"] = Field(
        "peers", description="where a trainer reads remote feature rows: peers, the owning machine's trainers over "
                             "a socket of their own, so a pull is in flight while the next minibatch samples; "
                             "servers, DistDGL's RPC, one request at a time with the sampling")
    pull_chunk_ms: float = Field(0.0, ge=0.0, description="--network netns: each pull in chunks of this many "
                                                         "milliseconds of the link, the gradient all-reduce let "
                                                         "through between them (0, the default: one pull; "
                                                         "measured slower, docs/benchmarks.md)")
    version: Literal[2] = Field(CONFIG_VERSION, description="shape of the recorded config.json "
                                                           "(older ones load through settings.upgrade)")

    @field_validator("fanouts")
    @classmethod
    def _fanouts_positive(cls, v: list[int]) -> list[int]:
        if not v or any(f < 1 for f in v):
            raise ValueError("fanouts must be a non-empty list of positive integers, e.g. 10,25")
        return v


    @model_validator(mode="after")
    def _shared_window_fits(self) -> "TrainSettings":
        from rudder_agent.buffer.policy import MAX_WINDOW

        b = self.buffer
        if self.shares_buffer and b.window * self.trainers_per_machine > MAX_WINDOW:
            raise ValueError(f"with --buffer-scope machine the trainers' windows are one: --lookahead "
                             f"({b.lookahead}) x --trainers-per-machine ({self.trainers_per_machine}) must be at most "
                             f"{MAX_WINDOW} (or use --buffer-scope trainer)")
        return self

    @property
    def shares_buffer(self) -> bool:
        """Whether a machine's trainers share one buffer (a buffer, machine scope, several trainers per machine)."""
        return (self.buffer.scope == "machine" and self.trainers_per_machine > 1
                and self.buffer.controller.name != "none")

    @property
    def node_data(self) -> NodeDataNames:
        """An adopted partition's own names (--part-config with --feat-key, --label-key, --mask-keys); otherwise
        the standard ones (a named dataset, or --graph, which is partitioned under them)."""
        s = self.own_graph
        return s.node_data if s is not None and s.part_config is not None else STANDARD_NODE_DATA

    @property
    def trainers(self) -> int:
        """Trainer processes in all: ``trainers_per_machine`` on each of the ``parts`` machines."""
        return self.parts * self.trainers_per_machine

    def machine_of(self, rank: int) -> int:
        """The machine trainer ``rank`` runs on: a machine's trainers are consecutive ranks."""
        return rank // self.trainers_per_machine


class TrainConfig(TrainSettings):
    """Everything one trainer needs; serialised to JSON by the launcher."""

    part_config: Path
    graph_name: str


def read_run_config(path: Path) -> TrainConfig:
    """The config.json of a recorded run, of any version."""
    return TrainConfig.model_validate(upgrade(json.loads(path.read_text())))


def launched_run() -> TrainConfig | None:
    """The settings of the run ``rudder train`` started this process in (None outside such a run)."""
    path = os.environ.get(RUN_CONFIG_ENV)
    return read_run_config(Path(path)) if path else None
