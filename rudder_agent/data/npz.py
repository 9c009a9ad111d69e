"""Small citation and co-purchase graphs with real features, in the gnn-meta-attack / Shchur npz format."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rudder_agent.data.dataset import RawGraph
from rudder_agent.data.edges import undirected_edges
from rudder_agent.data.splits import per_class_split
from rudder_agent.errors import RudderError
from rudder_agent.paths import shared_data_dir

FILES = {
    "cora": "cora/cora.npz",
    "citeseer": "citeseer/citeseer.npz",
    "amazon-photo": "amazon-photo/amazon_co_buy_photo.zip",
}
KEYS = [f"{m}_{f}" for m in ("adj", "attr") for f in ("data", "indices", "indptr", "shape")] + ["labels"]
TRAIN_PER_CLASS, NUM_VAL, NUM_TEST = 20, 500, 1000


def load_npz_dataset(name: str, base: str, seed: int) -> RawGraph:
    """Real bag-of-words features and labels; Planetoid-style seeded split (20 per class / 500 / 1000)."""
    path = shared_data_dir() / FILES[base]
    if not path.exists():
        raise RudderError(
            f"{base}: expected {path}; set RUDDER_DATA to the folder holding {FILES[base].split('/')[0]}/"
        )
    arrays = _read_npz(path)
    adj = sp.csr_matrix((arrays["adj_data"], arrays["adj_indices"], arrays["adj_indptr"]), shape=arrays["adj_shape"])
    attr = sp.csr_matrix(
        (arrays["attr_data"], arrays["attr_indices"], arrays["attr_indptr"]), shape=arrays["attr_shape"]
    )
    n = adj.shape[0]
    src, dst = undirected_edges(np.repeat(np.arange(n), np.diff(adj.indptr)), adj.indices, n)
    label = arrays["labels"].astype(np.int64)
    return RawGraph(
        name=name,
        feature_key=base,
        src=src,
        dst=dst,
        num_nodes=n,
        label=label,
        masks=per_class_split(label, TRAIN_PER_CLASS, NUM_VAL, NUM_TEST, seed),
        num_classes=int(label.max()) + 1,
        source=str(path),
        feat=attr.toarray().astype(np.float32),
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays we use, reading through a zip archive when the file is one."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            inner = next(n for n in archive.namelist() if n.endswith(".npz"))
            data = io.BytesIO(archive.read(inner))
    else:
        data = path
    with np.load(data, allow_pickle=False) as npz:
        return {key: npz[key] for key in KEYS}
