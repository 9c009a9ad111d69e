"""What to keep: lfu and lookahead against a plain-Python model, hand-made streams, the sampled window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudder_agent.attach import lookahead
from rudder_agent.buffer.engine import BufferEngine
from rudder_agent.buffer.keep import FrequencyKeep
from rudder_agent.settings.keep import keep_policy
from rudder_agent.buffer.persistent import PersistentBuffer

LOCAL_HI = 100  # ids < 100 are this trainer's own; every id >= 100 is remote


def engine(capacity: int, policy: str, window: int = 0) -> BufferEngine:
    return BufferEngine(PersistentBuffer(capacity, 0), np.array([LOCAL_HI, 10_000]), 0,
                        keep_policy(policy).build(window))


def play(e: BufferEngine, stream: list[list[int]], window: int = 0, replace: bool = True) -> list[tuple[int, int]]:
    """(hits, comm rows) per minibatch, the window taken from the stream as the live prefetcher would."""
    out = []
    for i, ids in enumerate(stream):
        upcoming = [np.array(u) for u in stream[i + 1: i + 1 + window]]
        plan = e.prepare(np.array(ids), replace=replace, upcoming=upcoming)
        e.complete(plan, None)
        out.append((plan.counts.hits, plan.counts.comm_rows))
    return out


def model(stream: list[list[int]], capacity: int, window: int, epoch_length: int = 0) -> list[tuple[int, int]]:
    """The policy in plain Python: after each minibatch keep the C best of buffer U misses by (next use, count).

    With ``epoch_length`` the window stops at the end of the minibatch's epoch, as live.
    """
    buffer: set[int] = set()
    counts: dict[int, int] = {}
    out = []
    for t, ids in enumerate(stream):
        remote = [i for i in ids if i >= LOCAL_HI]
        hits = [i for i in remote if i in buffer]
        misses = sorted(i for i in remote if i not in buffer)
        out.append((len(hits), len(misses)))
        for i in remote:
            counts[i] = counts.get(i, 0) + 1

        end = t + 1 + window if not epoch_length else min(t + 1 + window, (t // epoch_length + 1) * epoch_length)

        def rank(i: int) -> tuple[int, int]:
            soon = next((window - d for d, u in enumerate(stream[t + 1: end]) if i in u), 0)
            return soon, counts[i]

        # empty slots rank lowest; among equal ranks the larger id goes first
        entries = [None] * (capacity - len(buffer)) + sorted(buffer, key=lambda i: (*rank(i), -i))
        best = sorted(misses, key=lambda i: (-rank(i)[0], -rank(i)[1], i))
        for victim, new in zip(entries, best):
            if victim is not None and rank(new) <= rank(victim):
                break
            buffer.discard(victim)
            buffer.add(new)
    return out


streams = st.lists(st.lists(st.integers(0, 140), min_size=1, max_size=25, unique=True), min_size=1, max_size=25)


@settings(max_examples=120, deadline=None)
@given(stream=streams, capacity=st.integers(1, 12), window=st.integers(0, 5))
def test_hits_and_rows_match_the_python_model(stream, capacity, window):
    policy = "lookahead" if window else "lfu"
    assert play(engine(capacity, policy, window), stream, window) == model(stream, capacity, window)


def test_lookahead_keeps_what_is_used_next_and_fetches_no_extra_row():
    # 1 slot: after minibatch 0 both 200 and 201 were missed once; 201 is used next, so it is kept
    stream = [[200, 201], [201], [200]]
    assert play(engine(1, "lookahead", 2), stream, window=2) == [(0, 2), (1, 0), (0, 1)]
    # lfu keeps 200 (a tie: the smaller id), then admits 201 (2 accesses > 1) just before 200 returns
    assert play(engine(1, "lfu"), stream) == [(0, 2), (0, 1), (0, 1)]


def test_lfu_admits_a_miss_only_when_it_was_used_more_than_the_weakest_entry():
    e = engine(1, "lfu")
    play(e, [[300], [300], [301]])  # 300: 2 accesses, 301: 1
    assert e.buffer.slot_ids.tolist() == [300]
    play(e, [[301], [301]])  # 301 reaches 3 > 300's 2
    assert e.buffer.slot_ids.tolist() == [301]


def test_an_evicted_entry_keeps_the_counts_it_earned_while_buffered():
    """Hits are counted per slot; eviction must hand them back, or a returning id starts too low."""
    e = engine(1, "lfu")
    out = play(e, [[300]] * 4 + [[301]] * 5 + [[300]] * 3)  # 300: 4 accesses, then 301 reaches 5 > 4
    assert out[8] == (0, 1) and e.buffer.slot_ids.tolist() == [300]
    assert out[9:] == [(0, 1), (0, 1), (1, 0)]  # 300 back: 5 (ties 301), 6 > 5 admitted, then a hit


def test_a_window_entry_of_a_buffered_id_counts_for_its_rank():
    """A buffered id seen in the window outranks a miss used as soon but less often."""
    stream = [[300], [300], [301], [300, 301]]
    e = engine(1, "lookahead", 1)
    for i, ids in enumerate(stream[:3]):  # 301 is missed while [300, 301] is in the window
        e.complete(e.prepare(np.array(ids), replace=True, upcoming=[np.array(stream[i + 1])]), None)
    assert e.buffer.slot_ids.tolist() == [300]  # 300 (next use 1, count 2) beats 301 (next use 1, count 1)
    assert play(engine(1, "lookahead", 1), stream, window=1) == model(stream, 1, 1)


def test_skip_keeps_the_buffer_as_it_is():
    e = engine(2, "lookahead", 1)
    play(e, [[200, 201]], window=1)
    before = e.buffer.slot_ids.copy()
    play(e, [[202, 203], [202, 203]], window=1, replace=False)
    assert e.buffer.slot_ids.tolist() == before.tolist()


def test_stale_is_the_number_of_entries_a_replacement_would_swap():
    e = engine(3, "lookahead", 1)
    plan = e.prepare(np.array([200, 201]), replace=False, upcoming=[np.array([200])])
    assert plan.counts.stale == 2 and plan.replacement is None  # two free slots would be filled
    e.complete(plan, None)


def test_a_window_longer_than_the_bits_is_refused():
    with pytest.raises(ValueError, match="0..32"):
        FrequencyKeep(33)
    with pytest.raises(ValueError, match="at least 1"):
        keep_policy("lookahead").build(0)


def test_lookahead_reads_in_order_and_holds_at_most_w_plus_one():
    read: list[int] = []

    def source():
        for i in range(5):
            read.append(i)
            yield i

    seen = []
    for epoch, item, ahead in lookahead([(0, source())], 2):
        assert len(read) - item <= 3  # the item itself and at most 2 ahead were read
        seen.append((epoch, item, ahead))
    assert seen == [(0, 0, [1, 2]), (0, 1, [2, 3]), (0, 2, [3, 4]), (0, 3, [4]), (0, 4, [])]
    assert [a for _, a, _ in lookahead([(0, range(3))], 0)] == [0, 1, 2]


def test_lookahead_reads_the_next_epoch_early_but_its_windows_end_with_their_epoch():
    """The sampling thread samples an epoch's first minibatches while the last epoch's are planned; a keep
    policy's window must still see only its own epoch's (replays do)."""
    read: list[tuple[int, int]] = []

    def epoch(e, n):
        for i in range(n):
            read.append((e, i))
            yield i

    seen = []
    for e, item, ahead in lookahead(((e, epoch(e, 3)) for e in range(2)), 2):
        seen.append((e, item, ahead, read[-1]))
    assert [s[:3] for s in seen] == [(0, 0, [1, 2]), (0, 1, [2]), (0, 2, []), (1, 0, [1, 2]), (1, 1, [2]),
                                     (1, 2, [])]
    assert seen[1][3] == (1, 0) and seen[2][3] == (1, 1)  # epoch 1's first two read before epoch 0 ended


def test_lookahead_never_restarts_an_iterator():
    """DistDataLoader reshuffles on every iter(): each epoch's items are iterated once."""

    class Reshuffles:
        def __init__(self):
            self.iters, self.items = 0, [0, 1, 2]

        def __iter__(self):
            self.iters += 1
            self.pos = 0
            return self

        def __next__(self):
            if self.pos == len(self.items):
                raise StopIteration
            self.pos += 1
            return self.items[self.pos - 1]

    loader = Reshuffles()
    assert [item for _, item, _ in lookahead([(0, iter(loader))], 2)] == [0, 1, 2] and loader.iters == 1
    assert [item for _, item, _ in lookahead([(1, iter(loader))], 0)] == [0, 1, 2] and loader.iters == 2
    # epochs started lazily, each when the last is read out (the trainer's FeatureSource)
    assert [item for _, item, _ in lookahead(((e, iter(loader)) for e in (2, 3)), 1)] == [0, 1, 2] * 2
    assert loader.iters == 4


def test_a_copied_access_log_keeps_its_columns_views_of_one_table():
    """A what-if fork (deepcopy) and a machine buffer's snapshot (pickle) must go on growing the table they probe."""
    import copy
    import pickle

    from rudder_agent.buffer.keep import AccessLog

    log = AccessLog(initial=4)
    log.access(np.empty(0, dtype=np.int64), np.array([5, 6, 7]), 0)
    for twin in (copy.deepcopy(log), pickle.loads(pickle.dumps(log))):
        assert np.shares_memory(twin.keys, twin.table) and np.shares_memory(twin.masks, twin.table)
        twin.access(np.empty(0, dtype=np.int64), np.arange(100, 140), 1)  # grows: the table is re-read
        assert len(twin) == 43 and sorted(twin.keys[twin.keys >= 0].tolist()) == [5, 6, 7, *range(100, 140)]
        assert int(twin.counts[twin.keys == 5][0]) == 1
