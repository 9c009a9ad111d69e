"""The id -> slot hash table agrees with a dict under any mix of inserts and deletes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudder_agent.buffer.idtable import IdTable

ops = st.lists(
    st.tuples(st.sampled_from(["insert", "delete"]), st.lists(st.integers(0, 200), max_size=12)),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(bound=st.integers(1, 40), ops=ops)
def test_matches_a_dict(bound, ops):
    table, model = IdTable(bound), {}
    universe = np.arange(-1, 205)
    for op, ids in ops:
        if op == "insert":
            fresh = [i for i in dict.fromkeys(ids) if i not in model][: bound - len(model)]
            vals = [len(model) + 1000 + j for j in range(len(fresh))]
            table.insert(np.array(fresh, dtype=np.int64), np.array(vals, dtype=np.int64))
            model.update(zip(fresh, vals))
        else:
            table.delete(np.array(ids, dtype=np.int64))
            for i in ids:
                model.pop(i, None)
        assert table.size == len(model)
        expected = np.array([model.get(int(i), -1) for i in universe])
        np.testing.assert_array_equal(table.lookup(universe), expected)


def test_dense_collisions_and_wraparound():
    table = IdTable(64)
    ids = np.arange(0, 64 * 128, 128, dtype=np.int64)  # many share low bits
    table.insert(ids, ids * 2)
    table.delete(ids[::3])
    kept = np.setdiff1d(ids, ids[::3])
    np.testing.assert_array_equal(table.lookup(kept), kept * 2)
    assert (table.lookup(ids[::3]) == -1).all()


def test_delete_in_a_chain_that_wraps_around_the_table_end():
    table = IdTable(4)  # 8 cells
    homes = {k: int((k * 0x9E3779B97F4A7C15 % 2**64) >> int(table.shift)) for k in range(2000)}
    x, y, z = (next(k for k, h in homes.items() if h == cell) for cell in (6, 7, 0))
    table.insert(np.array([x, y, z]), np.array([1, 2, 3]))
    table.delete(np.array([x]))  # y and z stay at their homes, even z past the wrap
    np.testing.assert_array_equal(table.lookup(np.array([x, y, z])), [-1, 2, 3])


def test_repeated_ids_keep_first_value_and_bound_is_enforced():
    table = IdTable.of(np.array([5, 5, 6]), np.array([1, 2, 3]))
    np.testing.assert_array_equal(table.lookup(np.array([5, 6, 7])), [1, 3, -1])
    with pytest.raises(ValueError):
        IdTable(2).insert(np.array([1, 2, 3]), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        IdTable(2).insert(np.array([-3]), np.array([0]))
