"""The sampling thread makes results in order, at most ``depth`` ahead of the one the caller works on (``--prefetch
P`` for the built-in trainer; 0, the caller waiting, for BufferedFeatures.iterate)."""

from __future__ import annotations

import threading

import pytest

from rudder_agent.sampling_thread import SamplingThread


def counting(items, started: list):
    it = iter(items)

    def prepare():
        try:
            item = next(it)
        except StopIteration:
            return None
        started.append(item)
        return item

    return prepare


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_results_come_in_order_and_at_most_depth_are_made_ahead(depth):
    started: list[int] = []
    thread = SamplingThread(seed=None)
    for epoch in range(2):
        seen = []
        for item in thread.results(counting(range(8), started), depth):
            # the caller's work: the one thread ends all it was given before this no-op (first in, first out),
            # so it has run ahead as far as it may, with no clock involved
            thread._pool.submit(lambda: None).result()
            seen.append((item, max(started[8 * epoch:])))
        assert [item for item, _ in seen] == list(range(8))
        assert max(ahead - item for item, ahead in seen) == min(depth, 7)
    assert started == list(range(8)) * 2  # every result made once, epochs never overlap
    thread.close()


def test_results_are_made_on_one_thread_that_is_not_the_callers():
    names: list[str] = []

    def prepare():
        names.append(threading.current_thread().name)
        return None if len(names) > 3 else len(names)

    thread = SamplingThread(seed=7)
    assert list(thread.results(prepare, 0)) == [1, 2, 3]
    assert len(set(names)) == 1 and names[0].startswith("rudder-sample") and names[0] != threading.current_thread().name
    thread.close()
