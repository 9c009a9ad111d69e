"""One DistDGL trainer: GraphSAGE over DistNodeDataLoader minibatches, DDP over gloo.

Started by the local launcher (``rudder train``) or by DGL's ``tools/launch.py`` on a real
cluster: ``python -m rudder_agent.cluster.trainer --config run/config.json``. The loop reads
like DGL's ``examples/distributed/graphsage``; the only change is where input features
come from (:class:`rudder_agent.cluster.fetch.FeatureSource`), and its stages are timed for
a timeline (:class:`rudder_agent.stages.TrainStages`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from pathlib import Path

import dgl
import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from rudder_agent.cluster import isolation
from rudder_agent.cluster.fetch import FeatureSource
from rudder_agent.cluster.partition import META_FILE
from rudder_agent.cluster.trainer_env import prepare
from rudder_agent.config import TrainConfig
from rudder_agent.link import link_bytes
from rudder_agent.log import configure_logging, get_logger
from rudder_agent.model import GraphSAGE
from rudder_agent.records.evaluation import EvalRecord
from rudder_agent.records.recorder import RunRecorder
from rudder_agent.stages import TrainStages

log = get_logger(__name__)


def evaluate(model, g, nids, cfg: TrainConfig, device) -> tuple[int, int]:
    """Correct and total predictions over this trainer's share of ``nids`` (sampled inference)."""
    sampler = dgl.dataloading.NeighborSampler(cfg.fanouts)
    loader = dgl.dataloading.DistNodeDataLoader(g, nids, sampler, batch_size=cfg.eval_batch_size, shuffle=False)
    correct = total = 0
    model.eval()
    with torch.no_grad():
        for input_nodes, seeds, blocks in loader:
            x = g.ndata[cfg.node_data.feat][input_nodes]
            y = g.ndata[cfg.node_data.label][seeds].long()
            pred = model(blocks, x).argmax(1)
            correct += int((pred == y).sum())
            total += len(y)
    model.train()
    return correct, total


def all_reduce_sum(*values: float) -> list[float]:
    """Sum scalars across trainers."""
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return t.tolist()


def majority_accuracy(g, nids, label: str) -> float:
    """Accuracy of always predicting the most frequent class among ``nids`` over all trainers."""
    counts = torch.bincount(g.ndata[label][nids].long(), minlength=1).double()
    size = torch.tensor([len(counts)], dtype=torch.int64)
    torch.distributed.all_reduce(size, op=torch.distributed.ReduceOp.MAX)
    counts = torch.nn.functional.pad(counts, (0, int(size) - len(counts)))
    torch.distributed.all_reduce(counts)
    return float(counts.max() / counts.sum()) if counts.sum() > 0 else 0.0


def run(cfg: TrainConfig) -> None:
    """Train, record per-minibatch and per-epoch metrics, evaluate."""
    rank = torch.distributed.get_rank()
    torch.manual_seed(cfg.seed)
    dgl.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)

    g = dgl.distributed.DistGraph(cfg.graph_name, part_config=str(cfg.part_config))
    pb = g.get_partition_book()
    my_part = pb.partid
    # split by this process's own rank: DGL's trainer rank follows the order trainers connect, so with several
    # trainers on a machine it would hand them each other's seeds from run to run
    names = cfg.node_data  # the partition's own names (--feat-key, --label-key, --mask-keys), or the standard ones
    train_nid, val_nid, test_nid = (dgl.distributed.node_split(g.ndata[mask], pb, rank=rank, force_even=True)
                                    for mask in names.masks)
    n_classes = int(json.loads((cfg.part_config.parent / META_FILE).read_text())["num_classes"])
    feat_dim = g.ndata[names.feat].shape[1]
    log.info("trainer ready", partition=my_part, train_nodes=len(train_nid), feat_dim=feat_dim,
             machine_id_from="shim" if isolation.pinned() else "address", shm_device=os.stat("/dev/shm").st_dev)

    sampler = dgl.dataloading.NeighborSampler(cfg.fanouts)
    # shuffled by the FeatureSource, each epoch from its own generator (fetch.epoch_order)
    loader = dgl.dataloading.DistNodeDataLoader(
        g, train_nid, sampler, batch_size=cfg.batch_size, shuffle=False, drop_last=False
    )
    model = DistributedDataParallel(
        GraphSAGE(feat_dim, cfg.gnn.hidden, n_classes, len(cfg.fanouts), cfg.gnn.dropout)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.gnn.lr)
    per_epoch = math.ceil(len(train_nid) / cfg.batch_size)
    recorder = RunRecorder(cfg.out_dir, rank, trace=cfg.trace, wire=link_bytes if cfg.network == "netns" else None)
    features = FeatureSource(g, cfg, rank, loader, per_epoch, recorder)
    stages = TrainStages()

    try:
        for epoch in range(cfg.epochs):
            torch.manual_seed(cfg.seed + epoch)  # dropout's draws; the epoch's order has a generator of its own
            recorder.start_epoch(epoch)
            for mb in stages.timed(features.minibatches(epoch)):  # times the wait for each minibatch
                if cfg.trace_only:
                    loss_value = None
                else:
                    with stages.forward():
                        logits = model(mb.blocks, mb.x)
                        loss = F.cross_entropy(logits, mb.y)
                        optimizer.zero_grad()
                    # the computation, then DDP's wait for the gradient all-reduce, which pulls let go first
                    with stages.backward(loss, gate=features.link_gate):
                        loss.backward()
                    with stages.optimizer():
                        optimizer.step()
                    loss_value = float(loss)
                mb.metrics.loss = loss_value
                stages.record(mb.metrics)  # t_train and its stages (rudder_agent/stages.py)
                recorder.minibatch(mb.metrics)
                recorder.decisions(features.decisions())
            recorder.end_epoch()

        dgl.seed(cfg.seed + rank)  # evaluation samples too: make it independent of what ran before
        val_c, val_t = evaluate(model.module, g, val_nid, cfg, "cpu")
        test_c, test_t = evaluate(model.module, g, test_nid, cfg, "cpu")
        val_c, val_t, test_c, test_t = all_reduce_sum(val_c, val_t, test_c, test_t)
        majority = majority_accuracy(g, test_nid, names.label)
        result = EvalRecord(rank=rank, val_acc=val_c / max(1.0, val_t), test_acc=test_c / max(1.0, test_t),
                            majority_test_acc=majority)
        recorder.write(result, "eval")
        log.info("evaluation", val_acc=round(result.val_acc, 4), test_acc=round(result.test_acc, 4),
                 majority_test_acc=round(majority, 4))
    finally:
        features.close()
        recorder.decisions(features.decisions())
        recorder.close(features.summary())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one Rudder/DistDGL trainer (normally started by `rudder train`).")
    parser.add_argument("--config", type=Path, required=True, help="TrainConfig JSON written by the launcher")
    args = parser.parse_args(argv)
    cfg = TrainConfig.model_validate_json(args.config.read_text())
    configure_logging(os.environ.get("RUDDER_LOG_LEVEL", "info"), role=f"trainer-{os.environ.get('RANK', '?')}")
    torch.set_num_threads(int(os.environ.get("RUDDER_TORCH_THREADS", "1")))
    prepare()  # what a user's script gets at interpreter start (cluster/trainer_env.py)
    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
    try:
        torch.distributed.init_process_group("gloo")  # inside: a failed rendezvous must end the process too
        run(cfg)
    except BaseException:
        # DGL's atexit hook waits for the other trainers, who wait for us: exit hard instead.
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    main()
