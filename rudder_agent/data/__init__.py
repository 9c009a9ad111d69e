"""Named graph datasets as DGLGraphs with features, labels and splits."""

from rudder_agent.data.dataset import GraphDataset
from rudder_agent.data.registry import dataset_key, known_datasets, load_dataset

__all__ = ["GraphDataset", "dataset_key", "known_datasets", "load_dataset"]
