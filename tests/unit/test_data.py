"""Dataset loaders: shapes, splits, determinism, structural-feature caching and error messages."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from rudder_agent.data import dataset_key, known_datasets, load_dataset, snap
from rudder_agent.data import features as features_mod
from rudder_agent.data.edges import adjacency, undirected_edges
from rudder_agent.errors import RudderError

TINY = {"num_nodes": 2000, "avg_degree": 8, "num_classes": 5, "feat_dim": 16}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Keep every test away from the real cache."""
    monkeypatch.setenv("RUDDER_CACHE", str(tmp_path / "cache"))


def _arrays(ds) -> dict[str, np.ndarray]:
    g = ds.graph
    src, dst = g.edges()
    return {"src": src.numpy(), "dst": dst.numpy(), **{k: v.numpy() for k, v in g.ndata.items()}}


@pytest.mark.parametrize("name", ["cora", "citeseer", "amazon-photo"])
def test_npz_dataset_shapes_dtypes_and_split(name):
    ds = load_dataset(name)
    g = ds.graph
    n = g.num_nodes()
    assert g.ndata["feat"].dtype.is_floating_point and g.ndata["feat"].ndim == 2 and g.ndata["feat"].shape[0] == n
    assert str(g.ndata["label"].dtype) == "torch.int64"
    assert int(g.ndata["label"].max()) + 1 == ds.num_classes
    masks = np.stack([g.ndata[k].numpy() for k in ("train_mask", "val_mask", "test_mask")])
    assert masks.dtype == bool
    assert masks.sum(axis=0).max() == 1, "splits overlap"
    assert masks.sum(axis=1).tolist() == [20 * ds.num_classes, 500, 1000]
    train_labels = g.ndata["label"].numpy()[masks[0]]
    assert np.bincount(train_labels).tolist() == [20] * ds.num_classes


def test_graph_is_bidirected_without_duplicates_or_self_loops():
    arrays = _arrays(load_dataset("cora"))
    n = len(arrays["label"])
    key = arrays["src"] * n + arrays["dst"]
    assert len(np.unique(key)) == len(key)
    assert np.isin(arrays["dst"] * n + arrays["src"], key).all()
    assert (arrays["src"] != arrays["dst"]).all()


def test_undirected_edges_dedupes_and_symmetrises():
    src, dst = undirected_edges(np.array([0, 1, 1, 2, 3]), np.array([1, 0, 2, 2, 0]), 4)
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 1), (0, 3), (1, 0), (1, 2), (2, 1), (3, 0)]


def test_split_seed_changes_split_not_graph():
    a, b = _arrays(load_dataset("cora")), _arrays(load_dataset("cora", seed=1))
    assert np.array_equal(a["src"], b["src"]) and np.array_equal(a["feat"], b["feat"])
    assert not np.array_equal(a["train_mask"], b["train_mask"])
    assert dataset_key("cora", seed=1) == "cora-seed1" and dataset_key("cora") == "cora"


def test_synthetic_is_deterministic_per_seed():
    a, b = _arrays(load_dataset("synthetic", **TINY)), _arrays(load_dataset("synthetic", **TINY))
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = _arrays(load_dataset("synthetic", **TINY, seed=1))
    assert not np.array_equal(a["label"], c["label"])
    assert not np.array_equal(a["feat"], c["feat"])


def test_synthetic_shapes_structure_and_masks():
    ds = load_dataset("synthetic", **TINY)
    arrays = _arrays(ds)
    assert ds.num_nodes == 2000 and ds.feat_dim == 16 and ds.num_classes == 5
    assert arrays["feat"].dtype == np.float32 and arrays["label"].dtype == np.int64
    degree = np.bincount(arrays["src"], minlength=ds.num_nodes)
    assert 6 < degree.mean() <= 8 and degree.max() > 5 * degree.mean(), "degrees should be heavy-tailed"
    same = arrays["label"][arrays["src"]] == arrays["label"][arrays["dst"]]
    assert same.mean() > 0.7, "edges should mostly stay inside a community"
    masks = np.stack([arrays[k] for k in ("train_mask", "val_mask", "test_mask")])
    assert masks.sum(axis=0).max() == 1 and masks.sum(axis=1).tolist() == [400, 200, 200]


def test_synthetic_labels_are_predictable_from_features():
    arrays = _arrays(load_dataset("synthetic", **TINY))
    feat, label, train, test = arrays["feat"], arrays["label"], arrays["train_mask"], arrays["test_mask"]
    centroids = np.stack([feat[train & (label == c)].mean(axis=0) for c in range(TINY["num_classes"])])
    predicted = np.argmin(((feat[test, None, :] - centroids[None]) ** 2).sum(axis=-1), axis=1)
    assert (predicted == label[test]).mean() > 3 / TINY["num_classes"]


def test_synthetic_size_suffix():
    assert load_dataset("synthetic:3k", feat_dim=8).num_nodes == 3000
    assert dataset_key("synthetic:1M") == "synthetic-num_nodes1000000"
    with pytest.raises(RudderError, match="bad size"):
        load_dataset("synthetic:lots")
    with pytest.raises(RudderError, match="no size suffix"):
        load_dataset("cora:10")


def test_synthetic_rejects_bad_options():
    with pytest.raises(RudderError, match="homophily"):
        load_dataset("synthetic", homophily=1.5)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(RudderError) as err:
        load_dataset("pubmed")
    assert all(name in str(err.value) for name in known_datasets())


def test_unknown_option_is_rejected():
    with pytest.raises(RudderError, match="no option"):
        load_dataset("cora", feat_dim=3)


def test_structural_features_are_cached(monkeypatch):
    ds = load_dataset("synthetic", **TINY)
    src, dst = (t.numpy() for t in ds.graph.edges())
    adj = adjacency(src, dst, ds.num_nodes)
    calls = []
    real = features_mod.fastrp
    monkeypatch.setattr(features_mod, "fastrp", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = features_mod.structural_features("tiny", adj, 32)
    second = features_mod.structural_features("tiny", adj, 32)
    assert len(calls) == 1, "the second call must read the cache"
    assert np.array_equal(first, second)
    assert first.shape == (ds.num_nodes, 32) and first.dtype == np.float32
    assert np.allclose(first.mean(axis=0), 0, atol=1e-4)
    assert features_mod.feature_cache_path("tiny", 32).exists()
    assert not list(features_mod.feature_cache_path("tiny", 32).parent.glob(".*tmp"))
    features_mod.structural_features("tiny", adj, 16)
    assert len(calls) == 2, "another width is another cache entry"


def test_structural_features_are_deterministic():
    src, dst = undirected_edges(np.arange(99), np.arange(1, 100), 100)
    adj = adjacency(src, dst, 100)
    assert np.array_equal(features_mod.fastrp(adj, 8), features_mod.fastrp(adj, 8))


def test_missing_arxiv_names_expected_path(tmp_path, monkeypatch):
    monkeypatch.setenv("RUDDER_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(RudderError, match=r"nowhere/ogbn-arxiv/adj_full\.npz"):
        load_dataset("ogbn-arxiv")


def test_missing_npz_names_expected_path(tmp_path, monkeypatch):
    monkeypatch.setenv("RUDDER_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(RudderError, match=r"nowhere/cora/cora\.npz"):
        load_dataset("cora")


def test_com_dblp_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RUDDER_DATA", str(tmp_path / "nowhere"))

    def offline(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RudderError, match="SNAP download failed") as err:
        load_dataset("com-dblp")
    assert "nowhere/com-dblp/com-dblp.ungraph.txt.gz" in str(err.value)
    assert not (tmp_path / "cache" / "downloads" / "com-dblp" / snap.EDGES).exists()


def test_com_dblp_community_labels(tmp_path):
    path = tmp_path / "cmty.txt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("10\t30\n20\t30\t40\n50\n")
    label, num_classes = snap._community_labels(path, np.array([10, 20, 30, 40, 60]))
    assert label.tolist() == [0, 1, 0, 1, -1] and num_classes == 2
