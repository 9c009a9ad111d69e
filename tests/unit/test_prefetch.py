"""``--prefetch P``: the worker prepares minibatches in order, at most P ahead of the one being trained."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from rudder_agent.cluster.fetch import FeatureSource


def source(prefetch: int, started: list) -> FeatureSource:
    src = FeatureSource.__new__(FeatureSource)  # no cluster: the queue logic only
    src.cfg, src.features = SimpleNamespace(prefetch=prefetch), SimpleNamespace(window=0)
    src.pool = ThreadPoolExecutor(max_workers=1)

    def prepare(it, epoch):
        try:
            (item, _), = [next(it)]
        except StopIteration:
            return None
        started.append(item)
        return item

    src._prepare = prepare
    return src


@pytest.mark.parametrize("prefetch", [1, 3])
def test_minibatches_come_in_order_and_at_most_p_are_prepared_ahead(prefetch):
    started: list[int] = []
    src = source(prefetch, started)
    for epoch in range(2):
        seen = []
        for item in src.minibatches(range(8), epoch):
            # training: the one worker ends all it was given before this no-op (first in, first out), so
            # it has run ahead as far as it may, with no clock involved
            src.pool.submit(lambda: None).result()
            seen.append((item, max(started[8 * epoch:])))
        assert [item for item, _ in seen] == list(range(8))
        assert max(ahead - item for item, ahead in seen) == min(prefetch, 7)
    assert started == list(range(8)) * 2  # every minibatch prepared once, epochs never overlap
