"""Partitioning: metadata, id ranges and mappings, cache reuse, and all-or-nothing writes.

METIS and random partitions of cora are built once for the module (``built``); tests that only read
them use that build, tests that reuse, rebuild or break a cache get a private copy (``prebuilt``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dgl
import numpy as np
import pytest

from rudder_agent.data import load_dataset
from rudder_agent.cluster import partition as partition_mod
from rudder_agent.cluster.partition import halo_counts, load_partition_info, partition_dataset
from rudder_agent.errors import RudderError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private cache; yields its partitions folder."""
    monkeypatch.setenv("RUDDER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "partitions"


def _entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """cora in 2 parts by metis and by random, each built once in a module cache; read only."""
    root = tmp_path_factory.mktemp("shared-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUDDER_CACHE", str(root))
        return {method: partition_dataset("cora", 2, method, progress=False) for method in ("metis", "random")}


@pytest.fixture
def prebuilt(built, cache):
    """Copies the module's cora-2p-metis into this test's private cache and returns it as partition_dataset does."""
    shutil.copytree(built["metis"].root, cache / built["metis"].root.name)
    info = partition_dataset("cora", 2, progress=False)
    assert info == built["metis"].model_copy(update={"root": cache / "cora-2p-metis"})
    return info


@pytest.mark.parametrize("method", ["metis", "random"])
def test_partition_cora_meta(method, built):
    info = built[method]
    assert info.root.name == f"cora-2p-{method}" and info.config_path.exists()
    assert (info.dataset, info.parts, info.method, info.num_nodes) == ("cora", 2, method, 2708)
    assert info.num_edges == 10556 and info.feat_dim == 1433 and info.num_classes == 7
    assert sum(p.inner_nodes for p in info.partitions) == info.num_nodes
    assert sum(p.inner_edges for p in info.partitions) == info.num_edges
    assert all(h > 0 for h in halo_counts(info))
    assert 0 < info.edge_cut < info.num_edges
    bounds = [(p.node_start, p.node_end) for p in info.partitions]
    assert bounds[0][0] == 0 and bounds[-1][1] == info.num_nodes and bounds[0][1] == bounds[1][0]
    assert all(p.node_end - p.node_start == p.inner_nodes for p in info.partitions)
    # each build left exactly its own folder (no staging leftovers) in the module's cache
    assert _entries(info.root.parent) == ["cora-2p-metis", "cora-2p-random"]


def test_metis_cuts_fewer_edges_than_random(built):
    metis, rand = built["metis"], built["random"]
    assert metis.edge_cut < rand.edge_cut / 2
    assert sum(halo_counts(metis)) < sum(halo_counts(rand))


def test_mapping_traces_labels_and_features(built):
    info = built["metis"]
    new_to_orig, orig_to_new = np.load(info.new_to_orig_path), np.load(info.orig_to_new_path)
    assert np.array_equal(orig_to_new[new_to_orig], np.arange(info.num_nodes))
    graph = load_dataset("cora").graph
    part = info.partitions[1]
    feats = dgl.distributed.load_partition(str(info.config_path), 1)[1]
    owned = new_to_orig[part.node_start : part.node_end]
    assert np.array_equal(feats["_N/label"].numpy(), graph.ndata["label"].numpy()[owned])
    assert np.array_equal(feats["_N/feat"].numpy(), graph.ndata["feat"].numpy()[owned])


def test_load_partition_info_round_trip(built):
    info = built["metis"]
    again = load_partition_info(info.root)
    assert again == info
    assert set(info.seconds) == {"load", "features", "partition"}


def test_cached_partition_is_reused(monkeypatch, prebuilt):
    monkeypatch.setattr(dgl.distributed, "partition_graph", _explode)
    assert partition_dataset("cora", 2, progress=False).created == prebuilt.created


def test_force_rebuilds_in_place(cache, prebuilt):
    second = partition_dataset("cora", 2, progress=False, force=True)
    assert second.created > prebuilt.created
    assert _entries(cache) == ["cora-2p-metis"]


def test_dataset_options_get_their_own_partition(cache):
    info = partition_dataset("synthetic", 2, progress=False, dataset_opts={"num_nodes": 500, "feat_dim": 8})
    assert info.dataset == "synthetic-feat_dim8-num_nodes500" and info.num_nodes == 500
    assert info.root.name == "synthetic-feat_dim8-num_nodes500-2p-metis"
    assert info.graph_name.isidentifier()


def test_single_partition_has_no_halo():
    info = partition_dataset("cora", 1, progress=False)
    assert halo_counts(info) == [0] and info.edge_cut == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("cora", 0), {}, "parts must be >= 1"),
        (("nosuch", 2), {}, "unknown dataset"),
        (("cora", 2, "spectral"), {}, "unknown partition method"),
        (("cora", 2), {"dataset_opts": {"colour": "red"}}, "no option"),
    ],
)
def test_bad_requests_leave_nothing_behind(args, kwargs, message, cache):
    with pytest.raises(RudderError, match=message):
        partition_dataset(*args, progress=False, **kwargs)
    assert _entries(cache) == []


def test_missing_files_leave_nothing_behind(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("RUDDER_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(RudderError, match="cora.npz"):
        partition_dataset("cora", 2, progress=False)
    assert _entries(cache) == []


def test_failure_mid_partition_leaves_nothing_behind(monkeypatch, cache):
    monkeypatch.setattr(dgl.distributed, "partition_graph", _explode)
    with pytest.raises(RuntimeError, match="disk full"):
        partition_dataset("cora", 2, progress=False)
    assert _entries(cache) == []


def test_interrupt_keeps_the_previous_partition(monkeypatch, cache, prebuilt):
    first = prebuilt
    monkeypatch.setattr(partition_mod, "_describe", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        partition_dataset("cora", 2, progress=False, force=True)
    assert _entries(cache) == ["cora-2p-metis"]
    assert load_partition_info(first.root) == first


def test_load_partition_info_rejects_foreign_folder(tmp_path):
    with pytest.raises(RudderError, match="rudder_meta.json"):
        load_partition_info(tmp_path)


def _explode(g, graph_name, num_parts, out_path, **kwargs):
    """Write something, as a real partitioner would, then fail."""
    Path(out_path, "part0").mkdir(parents=True)
    raise RuntimeError("disk full")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_unreadable_cached_meta_is_rebuilt(prebuilt):
    info = prebuilt
    (info.root / "rudder_meta.json").write_text('{"dataset": "cora"}')
    with pytest.raises(RudderError, match="rebuild it"):
        load_partition_info(info.root)
    rebuilt = partition_dataset("cora", 2, progress=False)
    assert rebuilt.created > info.created
