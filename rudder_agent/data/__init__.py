"""Named graph datasets as DGLGraphs with features, labels and splits."""

from rudder_agent.data.dataset import GraphDataset
from rudder_agent.data.registry import DATASETS, dataset_key, known_datasets, load_dataset

__all__ = ["DATASETS", "GraphDataset", "dataset_key", "known_datasets", "load_dataset"]
