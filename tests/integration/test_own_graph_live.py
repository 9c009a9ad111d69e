"""Training on your own graph through the real `rudder` CLI and real DistDGL: a dgl.save_graphs file (node data
under other names) and a GraphSAINT folder. A partition made beforehand by dgl.distributed.partition_graph is
trained in test_user_script.py, by the built-in trainer and by a DGL-style script.

Each run trains long enough (EPOCHS, one minibatch per trainer and epoch) to beat the majority class on
cora's test nodes: the node data reached training under the right names, labels and masks included."""

from __future__ import annotations

import json
import math
from pathlib import Path

import dgl
import numpy as np
import pytest
import scipy.sparse as sp

from rudder_agent.data import load_dataset
from tests.integration.helpers import rudder

pytestmark = pytest.mark.integration

BATCH = 100
EPOCHS = "8"


@pytest.fixture(scope="module")
def cora() -> dgl.DGLGraph:
    """cora's graph and node data, as a user would have it in memory."""
    return load_dataset("cora").graph


def summary_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if " x2 [" in line)


def expected_minibatches(g: dgl.DGLGraph, mask: str = "train_mask") -> int:
    """2 trainers, each with half the training nodes (force_even), in minibatches of BATCH, every epoch."""
    return int(EPOCHS) * 2 * math.ceil(int(g.ndata[mask].sum()) / 2 / BATCH)


def assert_trained(summary: dict) -> None:
    """Nodes were read from other partitions, and the model learnt: better than always naming the commonest class."""
    assert summary["remote_inputs"] > 0
    assert summary["test_acc"] > summary["majority_test_acc"] + 0.1, summary


def test_train_on_a_saved_graph_file(tmp_path: Path, cora: dgl.DGLGraph) -> None:
    g = dgl.graph(cora.edges(), num_nodes=cora.num_nodes())
    for theirs, ours in {"x": "feat", "y": "label", "tr": "train_mask", "va": "val_mask", "te": "test_mask"}.items():
        g.ndata[theirs] = cora.ndata[ours]
    path = tmp_path / "mycora.bin"
    dgl.save_graphs(str(path), [g])
    out = tmp_path / "run"
    proc = rudder("train", "--graph", str(path), "--feat-key", "x", "--label-key", "y", "--mask-keys", "tr,va,te",
                  "--parts", "2", "--epochs", EPOCHS, "--batch-size", str(BATCH), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    minibatches = expected_minibatches(cora)
    assert summary_line(proc.stdout) == f"graph:mycora x2 [none]: {EPOCHS} epochs, {minibatches} minibatches"
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["dataset"], summary["parts"], summary["epochs"], summary["minibatches"]) == (
        "graph:mycora", 2, int(EPOCHS), minibatches)
    assert_trained(summary)
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["own_graph"]["graph"] == str(path) and len(recorded["own_graph"]["digest"]) == 64
    assert recorded["own_graph"]["mask_keys"] == ["tr", "va", "te"]


def test_train_on_a_graphsaint_folder(tmp_path: Path, cora: dgl.DGLGraph) -> None:
    """adj_full.npz, class_map.json, role.json and feats.npy, as GraphSAINT (and ogbn-arxiv here) lay them out."""
    folder = tmp_path / "saintcora"
    folder.mkdir()
    src, dst = (t.numpy() for t in cora.edges())
    n = cora.num_nodes()
    sp.save_npz(folder / "adj_full.npz", sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)))
    (folder / "class_map.json").write_text(json.dumps({str(i): int(c) for i, c in enumerate(cora.ndata["label"])}))
    (folder / "role.json").write_text(json.dumps({role: np.flatnonzero(cora.ndata[mask].numpy()).tolist() for role, mask
                                                  in (("tr", "train_mask"), ("va", "val_mask"), ("te", "test_mask"))}))
    np.save(folder / "feats.npy", cora.ndata["feat"].numpy())
    out = tmp_path / "run"
    proc = rudder("train", "--graph", str(folder), "--parts", "2", "--epochs", EPOCHS, "--batch-size", str(BATCH),
                  "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    minibatches = expected_minibatches(cora)
    assert summary_line(proc.stdout) == f"graph:saintcora x2 [none]: {EPOCHS} epochs, {minibatches} minibatches"
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["dataset"], summary["minibatches"]) == ("graph:saintcora", minibatches)
    assert_trained(summary)
    assert json.loads((out / "config.json").read_text())["own_graph"]["graph"] == str(folder)
