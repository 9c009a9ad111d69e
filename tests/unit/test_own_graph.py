"""Your own graph: a dgl.save_graphs file, a GraphSAINT folder (with and without feats.npy) or an existing
DistDGL partition; each bad input is one clear error before anything is partitioned or cached, and partitions
are cached by the graph's content."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import dgl
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from typer.testing import CliRunner

from rudder_agent.cluster.own_graph import partition_own_graph
from rudder_agent.cluster.partition import META_FILE, load_partition_info
from rudder_agent.config import GraphSource, TrainConfig
from rudder_agent.data.dataset import attach_features
from rudder_agent.data.edges import adjacency, undirected_edges
from rudder_agent.data.features import fastrp
from rudder_agent.data.own import graph_key, load_own_raw, resolve_source, run_name
from rudder_agent.errors import InputError

N, CLASSES, DIM = 60, 3, 8
MASKS = ("train_mask", "val_mask", "test_mask")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache per test."""
    monkeypatch.setenv("RUDDER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A small random graph: edges, features, labels and disjoint train/val/test masks."""
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(N, size=240), rng.integers(N, size=240)
    order = rng.permutation(N)
    masks = {m: np.isin(np.arange(N), order[a:b]) for m, (a, b) in zip(MASKS, ((0, 30), (30, 40), (40, 55)))}
    return {"src": src, "dst": dst, "feat": rng.standard_normal((N, DIM)).astype(np.float32),
            "label": rng.integers(CLASSES, size=N), **masks}


def save_dgl(path: Path, a: dict, names: dict[str, str] | None = None, **override) -> Path:
    """dgl.save_graphs of ``a``; ``names`` renames node data, ``override`` replaces (None drops) one."""
    g = dgl.graph((torch.from_numpy(a["src"]), torch.from_numpy(a["dst"])), num_nodes=N)
    data = {k: a[k] for k in ("feat", "label", *MASKS)} | override
    for key, value in data.items():
        if value is not None:
            g.ndata[(names or {}).get(key, key)] = torch.as_tensor(value)
    dgl.save_graphs(str(path), [g])
    return path


def save_graphsaint(folder: Path, a: dict, feats: bool = True, class_map=None, role=None) -> Path:
    """A GraphSAINT folder of ``a``: adj_full.npz, class_map.json, role.json and (if ``feats``) feats.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    sp.save_npz(folder / "adj_full.npz", sp.csr_matrix((np.ones(len(a["src"])), (a["src"], a["dst"])), shape=(N, N)))
    (folder / "class_map.json").write_text(json.dumps(
        class_map if class_map is not None else {str(i): int(c) for i, c in enumerate(a["label"])}))
    (folder / "role.json").write_text(json.dumps(role if role is not None else {
        r: np.flatnonzero(a[m]).tolist() for r, m in zip(("tr", "va", "te"), MASKS)}))
    if feats:
        np.save(folder / "feats.npy", a["feat"])
    return folder


def load(**source) -> object:
    return load_own_raw(resolve_source(GraphSource(**source)))


def test_a_dgl_file_is_read_under_its_node_data_names(tmp_path):
    a = arrays()
    path = save_dgl(tmp_path / "mine.bin", a, names={"feat": "x", "label": "y", "train_mask": "tr"})
    raw = load(graph=path, feat_key="x", label_key="y", mask_keys=["tr", "val_mask", "test_mask"])
    assert raw.name == "graph:mine" and raw.num_nodes == N and raw.num_classes == a["label"][
        a["train_mask"] | a["val_mask"] | a["test_mask"]].max() + 1
    assert np.array_equal(raw.feat, a["feat"]) and np.array_equal(raw.label, a["label"])
    assert all(np.array_equal(raw.masks[m], a[m]) for m in MASKS)
    src, dst = undirected_edges(a["src"], a["dst"], N)  # made undirected, as the built-in datasets are
    assert np.array_equal(raw.src, src) and np.array_equal(raw.dst, dst)
    assert "DGL graph file" in raw.source


def test_integer_0_1_masks_and_a_label_column_are_accepted(tmp_path):
    a = arrays()
    path = save_dgl(tmp_path / "g.bin", a, train_mask=a["train_mask"].astype(np.uint8), label=a["label"][:, None])
    raw = load(graph=path)
    assert raw.masks["train_mask"].dtype == bool and np.array_equal(raw.masks["train_mask"], a["train_mask"])
    assert np.array_equal(raw.label, a["label"])


def test_a_graphsaint_folder_with_feats_npy(tmp_path):
    a = arrays()
    raw = load(graph=save_graphsaint(tmp_path / "saint", a))
    assert raw.name == "graph:saint" and np.array_equal(raw.feat, a["feat"]) and np.array_equal(raw.label, a["label"])
    assert all(np.array_equal(raw.masks[m], a[m]) for m in MASKS)
    assert "feats.npy, 8 features" in raw.source


def test_a_graphsaint_folder_without_feats_gets_arxivs_structural_features(tmp_path, cache):
    a = arrays()
    raw = load(graph=save_graphsaint(tmp_path / "saint", a, feats=False), feat_dim=16)
    assert raw.feat is None and raw.feat_dim == 16 and "structural features" in raw.source
    feat = attach_features(raw).graph.ndata["feat"].numpy()
    assert np.array_equal(feat, fastrp(adjacency(raw.src, raw.dst, N), 16))  # the same code as ogbn-arxiv's
    assert [p.name for p in (cache / "features").iterdir()] == [f"{raw.feature_key}-16-fastrp.npy"]


def test_one_hot_class_lists_are_class_ids(tmp_path):
    a = arrays()
    one_hot = {str(i): np.eye(CLASSES, dtype=int)[c].tolist() for i, c in enumerate(a["label"])}
    raw = load(graph=save_graphsaint(tmp_path / "saint", a, class_map=one_hot))
    assert np.array_equal(raw.label, a["label"])


def _bad_dgl(tmp_path: Path, a: dict, case: str) -> tuple[Path, dict]:
    """A DGL file with one problem, and the options to read it with."""
    path = tmp_path / "bad.bin"
    if case == "missing key":
        return save_dgl(path, a, names={"label": "y"}), {}
    if case == "feat not a matrix":  # DGL itself refuses node data with another number of rows than nodes
        return save_dgl(path, a, feat=a["feat"][:, 0]), {}
    if case == "mask not a vector":
        return save_dgl(path, a, test_mask=np.stack([a["test_mask"], a["test_mask"]], axis=1)), {}
    if case == "negative label":
        label = a["label"].copy()
        label[np.flatnonzero(a["val_mask"])[0]] = -1
        return save_dgl(path, a, label=label), {}
    if case == "label out of range":
        label = a["label"].copy()
        label[np.flatnonzero(a["test_mask"])[0]] = 10**9
        return save_dgl(path, a, label=label), {}
    if case == "float labels":
        return save_dgl(path, a, label=a["label"].astype(np.float32)), {}
    if case == "empty train":
        return save_dgl(path, a, train_mask=np.zeros(N, dtype=bool)), {}
    if case == "float mask":
        return save_dgl(path, a, val_mask=a["val_mask"].astype(np.float32)), {}
    if case == "int mask not 0/1":
        return save_dgl(path, a, test_mask=a["test_mask"].astype(np.int64) * 2), {}
    if case == "multi-label":
        return save_dgl(path, a, label=np.eye(CLASSES, dtype=np.int64)[a["label"]] | 1), {}
    if case == "nan feature":
        feat = a["feat"].copy()
        feat[3, 1] = np.nan
        return save_dgl(path, a, feat=feat), {}
    if case == "not a dgl file":
        path.write_bytes(b"not a graph")
        return path, {}
    if case == "missing file":
        return tmp_path / "nowhere.bin", {}
    raise AssertionError(case)


BAD_DGL = {
    "missing key": r"node data 'label' not found; present: feat, test_mask, train_mask, val_mask, y \(name them with",
    "feat not a matrix": r"'feat' has shape \(60,\); expected \(60, d\): one feature row per node",
    "mask not a vector": r"mask 'test_mask' has shape \(60, 2\); expected \(60,\): one flag per node",
    "negative label": r"node \d+ is in a train/val/test split but its label is -1; labels of split nodes must be",
    "label out of range": r"has label 1000000000, out of range: class ids must be 0\.\.C-1 with C at most the number "
                          r"of nodes \(60\)",
    "float labels": r"'label': labels must be integer class ids, got dtype float32",
    "empty train": r"the training split is empty \(no node in the train mask\)",
    "float mask": r"mask 'val_mask' is not boolean \(dtype float32, values 0\.0, 1\.0\); masks must be True/False",
    "int mask not 0/1": r"mask 'test_mask' is not boolean \(dtype int64, values 0, 2\)",
    "multi-label": r"'label' has shape \(60, 3\); expected \(60,\): one class id per node \(several labels per node: "
                   r"multi-label is not supported",
    "nan feature": r"'feat' holds NaN or infinite values",
    "not a dgl file": r"bad\.bin is not a file written by dgl\.save_graphs \(",
    "missing file": r"^--graph .*nowhere\.bin: no such file or directory$",
}


@pytest.mark.parametrize("case", sorted(BAD_DGL))
def test_each_bad_dgl_file_gives_its_message(tmp_path, cache, case):
    path, opts = _bad_dgl(tmp_path, arrays(), case)
    with pytest.raises(InputError, match=BAD_DGL[case]) as err:
        partition_own_graph(GraphSource(graph=path, **opts), 2, progress=False)
    assert "\n" not in str(err.value)
    assert not (cache / "partitions").exists() and not (cache / "features").exists()  # nothing written


def _bad_saint(tmp_path: Path, a: dict, case: str) -> Path:
    folder = tmp_path / "saint"
    if case == "multi-label map":
        multi = {str(i): [1, 1, 0] for i in range(N)}
        return save_graphsaint(folder, a, class_map=multi)
    if case == "missing role.json":
        save_graphsaint(folder, a)
        (folder / "role.json").unlink()
        return folder
    if case == "role without te":
        return save_graphsaint(folder, a, role={"tr": [0, 1], "va": [2]})
    if case == "role id out of range":
        return save_graphsaint(folder, a, role={"tr": [0, N], "va": [2], "te": [3]})
    if case == "feats rows":
        save_graphsaint(folder, a)
        np.save(folder / "feats.npy", a["feat"][:-1])
        return folder
    if case == "unlabelled train node":
        class_map = {str(i): int(c) for i, c in enumerate(a["label"]) if i != np.flatnonzero(a["train_mask"])[0]}
        return save_graphsaint(folder, a, class_map=class_map)
    if case == "empty train":
        return save_graphsaint(folder, a, role={"tr": [], "va": [2], "te": [3]})
    if case == "negative class, no feats.npy":  # checked before structural features are built and cached
        class_map = {str(i): -2 if i == np.flatnonzero(a["test_mask"])[0] else int(c) for i, c in enumerate(a["label"])}
        return save_graphsaint(folder, a, feats=False, class_map=class_map)
    raise AssertionError(case)


BAD_SAINT = {
    "multi-label map": r"class_map\.json is a multi-label class map \(node 0 maps to \[1, 1, 0\]\); Rudder trains "
                       r"single-label node classification",
    "missing role.json": r"GraphSAINT folder lacks role\.json \(expects adj_full\.npz, class_map\.json, role\.json, "
                         r"optional feats\.npy\)",
    "role without te": r"role\.json: expected the keys tr, va, te \(train, val, test node ids\); found tr, va",
    "role id out of range": r"role\.json \[tr\]: node id 60 is out of range; the adjacency has 60 nodes",
    "feats rows": r"feats\.npy: features have shape \(59, 8\); expected \(60, d\)",
    "unlabelled train node": r"is in a train/val/test split but its label is -1",
    "empty train": r"the training split is empty",
    "negative class, no feats.npy": r"is in a train/val/test split but its label is -2",
}


@pytest.mark.parametrize("case", sorted(BAD_SAINT))
def test_each_bad_graphsaint_folder_gives_its_message(tmp_path, cache, case):
    folder = _bad_saint(tmp_path, arrays(), case)
    with pytest.raises(InputError, match=BAD_SAINT[case]) as err:
        partition_own_graph(GraphSource(graph=folder), 2, progress=False)
    assert "\n" not in str(err.value)
    assert not (cache / "partitions").exists() and not (cache / "features").exists()


def test_node_data_names_with_a_folder_and_feat_dim_with_a_file_are_refused(tmp_path):
    a = arrays()
    with pytest.raises(InputError, match=r"--feat-key only apply to a DGL graph file \(--graph FILE\) or a partition"):
        resolve_source(GraphSource(graph=save_graphsaint(tmp_path / "s", a), feat_key="x"))
    with pytest.raises(InputError, match="--feat-dim only applies to a GraphSAINT folder without feats.npy"):
        resolve_source(GraphSource(graph=save_dgl(tmp_path / "g.bin", a), feat_dim=32))
    with pytest.raises(InputError, match="is a JSON file; pass a DistDGL partition's JSON with --part-config"):
        (tmp_path / "p.json").write_text("{}")
        resolve_source(GraphSource(graph=tmp_path / "p.json"))


def key_of(**source) -> str:
    return graph_key(resolve_source(GraphSource(**source)))


def test_the_cache_key_follows_the_bytes_and_the_options_only(tmp_path):
    a = arrays()
    path = save_dgl(tmp_path / "g.bin", a)
    key = key_of(graph=path)
    assert key.startswith("graph-g-")
    os.utime(path, ns=(1, 1))  # another time, same bytes
    copy = tmp_path / "elsewhere" / "g.bin"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    assert key_of(graph=path) == key == key_of(graph=copy)
    save_dgl(path, a, feat=a["feat"] + 1)  # same name, other bytes
    assert key_of(graph=path) != key
    shutil.copy(copy, path)  # the first bytes again (dgl.save_graphs itself does not write the same bytes twice)
    assert key_of(graph=path) == key
    renamed = save_dgl(tmp_path / "h.bin", a, names={"feat": "x"})
    assert key_of(graph=renamed, feat_key="x") != key_of(graph=save_dgl(tmp_path / "h.bin", a))  # options count


def test_a_graphsaint_key_covers_every_file_and_feat_dim_only_without_feats(tmp_path):
    a = arrays()
    folder = save_graphsaint(tmp_path / "s", a, feats=False)
    key = key_of(graph=folder)
    assert key_of(graph=folder, feat_dim=32) != key
    role = json.loads((folder / "role.json").read_text())
    (folder / "role.json").write_text(json.dumps({**role, "te": role["te"][:-1]}))
    assert key_of(graph=folder) != key
    (folder / "role.json").write_text(json.dumps(role))
    assert key_of(graph=folder) == key
    np.save(folder / "feats.npy", a["feat"])
    assert key_of(graph=folder) != key


def test_an_own_graph_partition_is_cached_by_content(tmp_path, cache):
    a = arrays()
    path = save_dgl(tmp_path / "g.bin", a)
    first = partition_own_graph(GraphSource(graph=path), None, "random", progress=False)
    assert (first.dataset, first.parts, first.num_nodes, first.feat_dim) == ("graph:g", 2, N, DIM)
    assert first.root.parent == cache / "partitions" and first.root.name.startswith("graph-g-")
    assert partition_own_graph(GraphSource(graph=path), 2, "random", progress=False).created == first.created
    save_dgl(path, a, feat=a["feat"] * 2)
    second = partition_own_graph(GraphSource(graph=path), 2, "random", progress=False)
    assert second.root != first.root and len(list((cache / "partitions").iterdir())) == 2


def partition_with_dgl(tmp_path: Path, a: dict, parts: int = 2, names: dict[str, str] | None = None,
                       **override) -> Path:
    """dgl.distributed.partition_graph of ``a``, as a user would have made it; returns its JSON."""
    save_dgl(tmp_path / "in.bin", a, names=names, **override)
    g = dgl.load_graphs(str(tmp_path / "in.bin"))[0][0]
    with contextlib.redirect_stdout(io.StringIO()):
        dgl.distributed.partition_graph(g, "theirs", parts, str(tmp_path / "theirs"), part_method="random")
    return tmp_path / "theirs" / "theirs.json"


def test_an_existing_partition_is_adopted_as_is(tmp_path, cache):
    a = arrays()
    config = partition_with_dgl(tmp_path, a)
    before = {p: p.stat().st_mtime_ns for p in config.parent.rglob("*")}
    info = partition_own_graph(GraphSource(part_config=config), None)
    assert (info.dataset, info.graph_name, info.parts, info.num_nodes, info.feat_dim) == ("graph:theirs", "theirs", 2,
                                                                                          N, DIM)
    in_split = a["train_mask"] | a["val_mask"] | a["test_mask"]
    assert info.num_classes == a["label"][in_split].max() + 1
    assert sum(p.inner_nodes for p in info.partitions) == N and all(p.halo_nodes > 0 for p in info.partitions)
    wrapped = json.loads(info.config_path.read_text())
    assert wrapped["part-1"]["node_feats"] == str(config.parent / "part1" / "node_feat.dgl")  # the files where they lie
    assert info.root.parent == cache / "partitions" and (info.root / META_FILE).exists()
    assert load_partition_info(info.root) == info
    assert {p: p.stat().st_mtime_ns for p in config.parent.rglob("*")} == before  # nothing written beside them
    assert dgl.distributed.load_partition(str(info.config_path), 1)[0].num_nodes() > 0  # DGL reads the copy


def test_an_adopted_partition_is_cached_until_it_changes(tmp_path):
    config = partition_with_dgl(tmp_path, arrays())
    first = partition_own_graph(GraphSource(part_config=config), 2)
    assert partition_own_graph(GraphSource(part_config=config), None).created == first.created
    feats = config.parent / "part0" / "node_feat.dgl"
    os.utime(feats, ns=(feats.stat().st_atime_ns, feats.stat().st_mtime_ns + 10**9))
    assert partition_own_graph(GraphSource(part_config=config), None).root != first.root


BAD_PARTITION = {
    "parts": r"theirs\.json has 2 parts but --parts is 3; omit --parts or pass --parts 2",
    "names": r"part 0: node data 'feat' not found; present: label, test_mask, train_mask, val_mask, x\. Name the "
             r"features, labels and masks with --feat-key, --label-key and --mask-keys \(now feat, label, train_mask, "
             r"val_mask, test_mask\)",
    "float64": r"part 0: 'feat' is float64; the trainer needs float32 features",
    "empty train": r"the training split is empty",
    "negative label": r"node \d+ is in a train/val/test split but its label is -4",
    "missing part file": r"part-1 part_graph file .*part1/graph\.dgl does not exist",
    "not a partition": r"is not a DistDGL partition config \(no graph_name, num_parts, node_map\)",
    "key option": r"part 0: node data 'y' not found; present: feat, label, test_mask, train_mask, val_mask",
}


@pytest.mark.parametrize("case", sorted(BAD_PARTITION))
def test_each_bad_partition_gives_its_message(tmp_path, cache, case):
    a = arrays()
    opts, parts = {}, None
    if case == "names":
        config = partition_with_dgl(tmp_path, a, names={"feat": "x"})
    elif case == "float64":
        config = partition_with_dgl(tmp_path, a, feat=a["feat"].astype(np.float64))
    elif case == "empty train":
        config = partition_with_dgl(tmp_path, a, train_mask=np.zeros(N, dtype=bool))
    elif case == "negative label":
        config = partition_with_dgl(tmp_path, a, label=np.full(N, -4))
    else:
        config = partition_with_dgl(tmp_path, a)
    if case == "parts":
        parts = 3
    elif case == "missing part file":
        (config.parent / "part1" / "graph.dgl").unlink()
    elif case == "not a partition":
        config.write_text(json.dumps({"num_nodes": N}))
    elif case == "key option":
        opts = {"label_key": "y"}
    with pytest.raises(InputError, match=BAD_PARTITION[case]) as err:
        partition_own_graph(GraphSource(part_config=config, **opts), parts)
    assert "\n" not in str(err.value)
    assert not (cache / "partitions").exists() or not any((cache / "partitions").iterdir())


def test_a_partition_with_its_own_node_data_names_is_adopted_under_them(tmp_path, cache):
    """DGL's own example partitions name the data `features` and `labels`: --feat-key and --label-key (and
    --mask-keys) name them; the trainer reads those names (TrainSettings.node_data), and another set of names
    is checked again under a cache entry of its own."""
    a = arrays()
    config = partition_with_dgl(tmp_path, a, names={"feat": "features", "label": "labels"})
    with pytest.raises(InputError, match="node data 'feat', 'label' not found"):
        partition_own_graph(GraphSource(part_config=config), None)
    source = GraphSource(part_config=config, feat_key="features", label_key="labels")
    info = partition_own_graph(source, None)
    assert info.feat_dim == a["feat"].shape[1] and info.num_classes == int(a["label"].max()) + 1
    from rudder_agent.config import TrainSettings

    names = TrainSettings(out_dir="x", own_graph=source).node_data
    assert (names.feat, names.label, names.masks) == ("features", "labels", ("train_mask", "val_mask", "test_mask"))
    assert TrainSettings(out_dir="x").node_data.feat == "feat"
    standard = partition_with_dgl(tmp_path / "std", a)
    assert partition_own_graph(GraphSource(part_config=standard), None).root != info.root


def test_a_run_on_an_own_graph_records_its_source(tmp_path):
    source = resolve_source(GraphSource(graph=save_dgl(tmp_path / "g.bin", arrays())))
    cfg = TrainConfig(dataset=run_name(source), own_graph=source, part_config=tmp_path / "p.json", graph_name="g",
                      out_dir=tmp_path / "run")
    again = TrainConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg and again.dataset == "graph:g" and again.own_graph.digest == source.digest
    assert TrainConfig.model_validate({k: v for k, v in json.loads(cfg.model_dump_json()).items()
                                       if k != "own_graph"}).own_graph is None  # configs written before still load


def cli(*args: str):
    from rudder_agent.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cora", "--graph", "G"], "error: --dataset and --graph are mutually exclusive: give one"),
    (["--dataset", "cora", "--part-config", "G"], "error: --dataset and --part-config are mutually exclusive: give one"),
    (["--graph", "G", "--part-config", "G"], "error: --graph and --part-config are mutually exclusive: give one"),
    (["--dataset", "cora", "--feat-key", "x"], "error: --feat-key only apply with --graph or --part-config"),
    (["--graph", "MISSING"], "error: --graph MISSING: no such file or directory"),
])
@pytest.mark.parametrize("command", ["partition", "train", "compare"])
def test_cli_refuses_bad_graph_options_in_one_line_before_any_work(tmp_path, cache, command, args, message):
    graph = save_dgl(tmp_path / "g.bin", arrays())
    args = [str(graph) if a == "G" else str(tmp_path / "missing.bin") if a == "MISSING" else a for a in args]
    message = message.replace("MISSING", str(tmp_path / "missing.bin"))
    out = ["--out", str(tmp_path / "run")] if command != "partition" else []
    result = cli(command, *args, *out)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [message]
    assert not (tmp_path / "run").exists() and not (cache / "partitions").exists()


def test_cli_partition_of_a_bad_graph_exits_2_with_one_line(tmp_path, cache):
    path = save_dgl(tmp_path / "g.bin", arrays(), names={"label": "y"})
    result = cli("partition", "--graph", str(path))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: --graph {path}: node data 'label' not found; present: feat, test_mask, train_mask, val_mask, y "
        "(name them with --feat-key, --label-key, --mask-keys)"]
    assert not (cache / "partitions").exists()


def test_cli_partition_takes_parts_from_an_existing_partition(tmp_path):
    config = partition_with_dgl(tmp_path, arrays())
    result = cli("partition", "--part-config", str(config))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{"):])["parts"] == 2
    result = cli("partition", "--part-config", str(config), "--parts", "4")
    assert result.exit_code == 2 and "has 2 parts but --parts is 4" in result.output
