"""Dataset names, their options and defaults, and the canonical key that names caches and partitions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rudder_agent.data.arxiv import load_arxiv
from rudder_agent.data.dataset import GraphDataset, RawGraph, attach_features
from rudder_agent.data.npz import load_npz_dataset
from rudder_agent.data.snap import load_com_dblp
from rudder_agent.data.synthetic import generate_synthetic
from rudder_agent.errors import RudderError


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one named dataset and which options it accepts."""

    loader: Callable[..., RawGraph]
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


REGISTRY: dict[str, DatasetSpec] = {
    "ogbn-arxiv": DatasetSpec(
        load_arxiv,
        {"feat_dim": 128},
        "169k papers, 40 classes; shared ogbn-arxiv/ (structural features) or OGB download",
    ),
    "com-dblp": DatasetSpec(
        load_com_dblp,
        {"feat_dim": 128, "seed": 0},
        "317k authors, top-5000 community labels; shared com-dblp/ or SNAP download",
    ),
    "cora": DatasetSpec(
        lambda name, seed: load_npz_dataset(name, "cora", seed),
        {"seed": 0},
        "2.7k papers, 7 classes; shared cora/cora.npz",
    ),
    "citeseer": DatasetSpec(
        lambda name, seed: load_npz_dataset(name, "citeseer", seed),
        {"seed": 0},
        "3.3k papers, 6 classes; shared citeseer/citeseer.npz",
    ),
    "amazon-photo": DatasetSpec(
        lambda name, seed: load_npz_dataset(name, "amazon-photo", seed),
        {"seed": 0},
        "7.6k products, 8 classes; shared amazon-photo/*.zip",
    ),
    "synthetic": DatasetSpec(
        generate_synthetic,
        {
            "num_nodes": 20_000,
            "avg_degree": 10.0,
            "num_classes": 10,
            "feat_dim": 128,
            "homophily": 0.8,
            "exponent": 2.5,
            "feat_noise": 0.7,
            "seed": 0,
        },
        "generated degree-corrected SBM, 20k nodes; 'synthetic:N' sets the size (200k, 1M)",
    ),
}

DATASETS: dict[str, str] = {name: spec.summary for name, spec in REGISTRY.items()}
"""One line per dataset: what it is and where it is read from."""

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


def known_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(REGISTRY)


def resolve(name: str, **opts: Any) -> tuple[str, dict[str, Any]]:
    """The registry entry and its complete options for ``name`` (``synthetic:N`` included)."""
    base, _, size = name.partition(":")
    if base not in REGISTRY:
        raise RudderError(f"unknown dataset {name!r}; known datasets: {', '.join(known_datasets())}")
    spec = REGISTRY[base]
    if size:
        if "num_nodes" not in spec.defaults:
            raise RudderError(f"dataset {base!r} takes no size suffix (got {name!r})")
        opts = {**opts, "num_nodes": _parse_size(size)}
    unknown = sorted(set(opts) - set(spec.defaults))
    if unknown:
        raise RudderError(f"dataset {base!r} has no option(s) {', '.join(unknown)}; options: {_describe(spec)}")
    try:
        return base, {key: type(default)(opts.get(key, default)) for key, default in spec.defaults.items()}
    except (TypeError, ValueError) as exc:
        raise RudderError(f"dataset {base!r}: bad option value ({exc}); options: {_describe(spec)}") from exc


def dataset_key(name: str, **opts: Any) -> str:
    """Canonical, filesystem-safe name: the base name plus every option that differs from its default."""
    base, full = resolve(name, **opts)
    defaults = REGISTRY[base].defaults
    return base + "".join(f"-{key}{full[key]}" for key in sorted(full) if full[key] != defaults[key])


def load_raw(name: str, **opts: Any) -> RawGraph:
    """Edges, labels and splits of a named dataset, without the (possibly slow) structural features."""
    base, full = resolve(name, **opts)
    return REGISTRY[base].loader(dataset_key(name, **opts), **full)


def load_dataset(name: str, **opts: Any) -> GraphDataset:
    """Load a named dataset as a DGLGraph with features, labels and train/val/test masks."""
    return attach_features(load_raw(name, **opts))


def _parse_size(text: str) -> int:
    """'20000', '200k', '1.5M' -> a node count."""
    match = _SIZE.match(text)
    if not match:
        raise RudderError(f"bad size {text!r}: use a count such as 20000, 200k or 1M")
    return int(float(match.group(1)) * {"": 1, "k": 10**3, "m": 10**6}[match.group(2).lower()])


def _describe(spec: DatasetSpec) -> str:
    """``key=default`` list for error messages."""
    return ", ".join(f"{key}={value}" for key, value in spec.defaults.items()) or "none"
