"""Attach Rudder to your own DistDGL training loop (the lines marked RUDDER are all it takes).

Run it on a local cluster:   rudder train --dataset cora --parts 2 --controller llm \
                                 --trainer examples/attach_to_distdgl_loop.py --out runs/attach
or on a real cluster with DGL's tools/launch.py, passing `--config <run>/config.json`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import dgl
import torch
import torch.nn.functional as F

from rudder_agent.attach import BufferedFeatures  # RUDDER
from rudder_agent.cluster import isolation
from rudder_agent.config import TrainConfig
from rudder_agent.model import GraphSAGE


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--config", type=Path, required=True)
    cfg = TrainConfig.model_validate_json(args.parse_args().config.read_text())
    isolation.initialize(os.environ["DGL_IP_CONFIG"])  # dgl.distributed.initialize; isolates "machines" sharing a host
    torch.distributed.init_process_group("gloo")
    g = dgl.distributed.DistGraph(cfg.graph_name, part_config=str(cfg.part_config))
    train_nid = dgl.distributed.node_split(g.ndata["train_mask"], g.get_partition_book(), force_even=True)
    loader = dgl.dataloading.DistNodeDataLoader(g, train_nid, dgl.dataloading.NeighborSampler(cfg.fanouts),
                                                batch_size=cfg.batch_size, shuffle=True)
    n_classes = int(g.ndata["label"][torch.arange(g.num_nodes())].max()) + 1
    model = torch.nn.parallel.DistributedDataParallel(GraphSAGE(g.ndata["feat"].shape[1], 64, n_classes, 2, 0.5))
    opt = torch.optim.Adam(model.parameters(), lr=0.003)

    per_epoch = -(-len(train_nid) // cfg.batch_size)
    features = BufferedFeatures(g, cfg.buffer, total_minibatches=cfg.epochs * per_epoch,  # RUDDER
                                rank=torch.distributed.get_rank(), verify=cfg.verify,
                                trainers_per_machine=cfg.trainers_per_machine)  # a machine's trainers share one
    for epoch in range(cfg.epochs):
        comm = remote = hits = inputs = 0
        # RUDDER: features.iterate samples the window the keep policy looks ahead at (cfg.buffer.lookahead),
        # in the loader's own order; x replaces g.ndata["feat"][input_nodes]. Without a window,
        # `for input_nodes, seeds, blocks in loader: x, m = features.fetch(input_nodes, epoch)` does the same.
        # Read other DistTensors through features.read: DGL's thread-local RNG also picks remote pulls'
        # servers, so a pull on the sampling thread would change the next minibatch's neighbours.
        for input_nodes, seeds, blocks, x, m in features.iterate(loader, epoch):
            y = features.read(g.ndata["label"], seeds).long()  # RUDDER: reads off the sampling thread
            loss = F.cross_entropy(model(blocks, x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            comm, remote, hits = comm + m.comm_rows, remote + m.remote_inputs, hits + m.hits
            inputs += m.input_nodes
        print(f"rank {torch.distributed.get_rank()} epoch {epoch}: loss {float(loss):.4f}, remote rows fetched "
              f"{comm} of {remote} remote inputs ({inputs} input nodes), %-Hits {100 * hits / max(remote, 1):.1f}",
              flush=True)
    print(f"summary: {features.summary()}", flush=True)
    features.close()  # RUDDER


if __name__ == "__main__":
    main()
