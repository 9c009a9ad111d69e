"""The trainer's prefetcher (cluster/fetch.py): each epoch's order, drawn beside the training."""

import dgl
import pytest
import torch

from rudder_agent.cluster.fetch import FeatureSource, epoch_order


def loader(shuffle: bool):
    return dgl.distributed.DistDataLoader(dataset=torch.arange(100), batch_size=30, shuffle=shuffle,
                                          collate_fn=lambda ids: torch.tensor(ids))


def test_an_epochs_order_is_the_one_a_seeded_shuffling_loader_gives():
    """A user's script (torch.manual_seed(seed + epoch), then a for loop over a shuffling loader) and the built-in
    trainer sample the same minibatches: the --verify comparisons of user scripts rest on it."""
    theirs, ours = loader(shuffle=True), loader(shuffle=False)
    for epoch in range(3):
        torch.manual_seed(7 + epoch)
        expected = [batch.tolist() for batch in theirs]
        assert [batch.tolist() for batch in epoch_order(ours, 7, epoch)] == expected
    assert expected != [list(range(i, min(i + 30, 100))) for i in range(0, 100, 30)]  # shuffled


def test_an_epochs_order_leaves_the_global_generator_to_the_training():
    """Dropout draws from torch's global generator on the trainer's thread while the next epoch is sampled."""
    torch.manual_seed(3)
    state = torch.get_rng_state()
    list(epoch_order(loader(shuffle=False), 7, 1))
    assert torch.equal(torch.get_rng_state(), state)


def test_a_shuffling_loader_is_refused():
    with pytest.raises(ValueError, match="shuffle=False"):
        FeatureSource(None, None, 0, loader(shuffle=True), 4, None)
