"""Distributed GraphSAGE node classification, written the way DGL's examples/distributed/graphsage is, with
Rudder attached: the lines marked RUDDER are all that changed (README: "Attach Rudder to your own DistDGL loop").

On a local cluster (Rudder starts the servers and trainers and fills the placeholders):

    rudder train --part-config data/mygraph.json --feat-key features --label-key labels --controller llm \
        --trainer examples/distdgl_graphsage.py -- --graph_name {graph_name} --ip_config {ip_config} \
        --part_config {part_config} --num_epochs {epochs} --batch_size {batch_size} --fan_out {fanouts}

On a real cluster, with DGL's tools/launch.py, as you start the script without Rudder.
"""

import argparse
import socket
import time

import dgl
import dgl.nn.pytorch as dglnn
import numpy as np
import torch as th
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from rudder_agent.attach import BufferedFeatures  # RUDDER


class DistSAGE(nn.Module):
    """GraphSAGE over sampled blocks for training, layer by layer over all nodes for inference."""

    def __init__(self, in_feats, n_hidden, n_classes, n_layers, activation, dropout):
        super().__init__()
        self.n_hidden, self.n_classes = n_hidden, n_classes
        sizes = [in_feats] + [n_hidden] * (n_layers - 1) + [n_classes]
        self.layers = nn.ModuleList(dglnn.SAGEConv(a, b, "mean") for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(dropout)
        self.activation = activation

    def forward(self, blocks, x):
        h = x
        for i, (layer, block) in enumerate(zip(self.layers, blocks)):
            h = layer(block, h)
            if i != len(self.layers) - 1:
                h = self.dropout(self.activation(h))
        return h

    def inference(self, g, x, batch_size):
        """Every node's output, one layer at a time over full neighbourhoods, kept in DistTensors."""
        nodes = dgl.distributed.node_split(np.arange(g.num_nodes()), g.get_partition_book(), force_even=True)
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            y = dgl.distributed.DistTensor((g.num_nodes(), self.n_classes if last else self.n_hidden), th.float32,
                                           "h_last" if last else "h", persistent=True)
            sampler = dgl.dataloading.NeighborSampler([-1])
            loader = dgl.dataloading.DistNodeDataLoader(g, nodes, sampler, batch_size=batch_size, shuffle=False,
                                                        drop_last=False)
            for input_nodes, output_nodes, blocks in loader:
                block = blocks[0]
                h = x[input_nodes]
                h = layer(block, (h, h[: block.number_of_dst_nodes()]))
                if not last:
                    h = self.dropout(self.activation(h))
                y[output_nodes] = h
            x = y
            g.barrier()
        return x


def compute_acc(pred, labels):
    return (th.argmax(pred, dim=1) == labels.long()).float().sum() / len(pred)


def evaluate(model, g, inputs, labels, val_nid, test_nid, batch_size):
    model.eval()
    with th.no_grad():
        pred = model.inference(g, inputs, batch_size)
    model.train()
    return compute_acc(pred[val_nid], labels[val_nid]), compute_acc(pred[test_nid], labels[test_nid])


def run(args, data):
    train_nid, val_nid, test_nid, in_feats, n_classes, g = data
    sampler = dgl.dataloading.NeighborSampler([int(fanout) for fanout in args.fan_out.split(",")])
    dataloader = dgl.dataloading.DistNodeDataLoader(g, train_nid, sampler, batch_size=args.batch_size,
                                                    shuffle=True, drop_last=False)
    model = th.nn.parallel.DistributedDataParallel(
        DistSAGE(in_feats, args.num_hidden, n_classes, args.num_layers, F.relu, args.dropout))
    loss_fcn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    features = BufferedFeatures(g, feat="features", total_minibatches=args.num_epochs * -(-len(train_nid) // args.batch_size))  # RUDDER

    epoch_time, test_acc = [], 0.0
    for epoch in range(1, args.num_epochs + 1):
        tic = start = time.time()
        sample_time = compute_time = 0.0
        num_seeds = num_inputs = 0
        with model.join():
            for step, (input_nodes, seeds, blocks, batch_inputs, _) in enumerate(features.iterate(dataloader, epoch - 1)):  # RUDDER
                tic_step = time.time()
                sample_time += tic_step - start
                batch_labels = features.read(g.ndata["labels"], seeds).long()  # RUDDER
                num_seeds += len(blocks[-1].dstdata[dgl.NID])
                num_inputs += len(blocks[0].srcdata[dgl.NID])
                batch_pred = model(blocks, batch_inputs)
                loss = loss_fcn(batch_pred, batch_labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                compute_time += time.time() - tic_step
                if (step + 1) % args.log_every == 0:
                    acc = compute_acc(batch_pred, batch_labels)
                    print(f"Part {g.rank()} | Epoch {epoch:05d} | Step {step:05d} | Loss {loss.item():.4f} | "
                          f"Train Acc {acc.item():.4f}")
                start = time.time()
        toc = time.time()
        print(f"Part {g.rank()}, Epoch Time(s): {toc - tic:.4f}, sample+data_copy: {sample_time:.4f}, "
              f"compute: {compute_time:.4f}, #seeds: {num_seeds}, #inputs: {num_inputs}")
        epoch_time.append(toc - tic)
        if epoch % args.eval_every == 0 or epoch == args.num_epochs:
            val_acc, test_acc = evaluate(model.module, g, g.ndata["features"], g.ndata["labels"], val_nid, test_nid,
                                         args.batch_size_eval)
            print(f"Part {g.rank()}, Val Acc {val_acc:.4f}, Test Acc {test_acc:.4f}")
    features.close()  # RUDDER
    return np.mean(epoch_time[-int(args.num_epochs * 0.8):]), test_acc


def main(args):
    host_name = socket.gethostname()
    print(f"{host_name}: Initializing DistDGL.")
    dgl.distributed.initialize(args.ip_config)
    print(f"{host_name}: Initializing PyTorch process group.")
    th.distributed.init_process_group(backend=args.backend)
    g = dgl.distributed.DistGraph(args.graph_name, part_config=args.part_config)
    print(f"Rank of {host_name}: {g.rank()}")
    pb = g.get_partition_book()
    train_nid = dgl.distributed.node_split(g.ndata["train_mask"], pb, force_even=True)
    val_nid = dgl.distributed.node_split(g.ndata["val_mask"], pb, force_even=True)
    test_nid = dgl.distributed.node_split(g.ndata["test_mask"], pb, force_even=True)
    print(f"part {g.rank()}, train: {len(train_nid)}, val: {len(val_nid)}, test: {len(test_nid)}")
    n_classes = args.n_classes
    if n_classes == 0:
        labels = g.ndata["labels"][np.arange(g.num_nodes())]
        n_classes = len(th.unique(labels[th.logical_not(th.isnan(labels))]))
    in_feats = g.ndata["features"].shape[1]
    epoch_time, test_acc = run(args, (train_nid, val_nid, test_nid, in_feats, n_classes, g))
    print(f"Summary of node classification(GraphSAGE): GraphName {args.graph_name} | TrainEpochTime(mean) "
          f"{epoch_time:.4f} | TestAccuracy {test_acc:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Distributed GraphSAGE.")
    parser.add_argument("--graph_name", type=str, help="graph name")
    parser.add_argument("--ip_config", type=str, help="the file for IP configuration")
    parser.add_argument("--part_config", type=str, help="the path to the partition config file")
    parser.add_argument("--n_classes", type=int, default=0, help="the number of classes")
    parser.add_argument("--backend", type=str, default="gloo", help="pytorch distributed backend")
    parser.add_argument("--num_epochs", type=int, default=20)
    parser.add_argument("--num_hidden", type=int, default=16)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--fan_out", type=str, default="10,25")
    parser.add_argument("--batch_size", type=int, default=1000)
    parser.add_argument("--batch_size_eval", type=int, default=100000)
    parser.add_argument("--log_every", type=int, default=20)
    parser.add_argument("--eval_every", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--local_rank", type=int, help="get rank of the process")
    main(parser.parse_args())
