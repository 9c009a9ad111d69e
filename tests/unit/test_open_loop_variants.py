"""Several prompt variants in one open-loop replay: parsed and checked before anything runs, shown side by side."""

from __future__ import annotations

import pytest

from rudder_agent.errors import SettingError
from rudder_agent.replay.open_loop.table import TABLE, format_side_by_side
from rudder_agent.replay.open_loop.variants import prompt_variants


def test_each_variant_names_its_version_and_chain_of_thought() -> None:
    assert prompt_variants("v1, v2,v2+cot", None) == [
        ("v1", {"prompt_version": "v1"}), ("v2", {"prompt_version": "v2"}),
        ("v2+cot", {"prompt_version": "v2", "cot": True})]
    assert prompt_variants("v1,v2+nocot", True) == [
        ("v1", {"prompt_version": "v1", "cot": True}), ("v2+nocot", {"prompt_version": "v2", "cot": False})]
    assert prompt_variants(None, True) == [("recorded", {})]


@pytest.mark.parametrize("versions, words", [("v1,v9", "prompt version 'v9' not found"),
                                             ("v1,,v2", "an empty variant"), ("v2,v2", "names a variant twice")])
def test_a_bad_variant_is_refused_before_any_replay(versions: str, words: str) -> None:
    with pytest.raises(SettingError) as err:
        prompt_variants(versions, None)
    assert err.value.field == "prompt_version" and words in err.value.message


def test_the_side_by_side_table_has_one_column_per_variant(monkeypatch) -> None:
    monkeypatch.setattr("rudder_agent.replay.open_loop.table.TABLE",
                        [("windows", lambda s: str(s["windows"])), ("model calls", lambda s: str(s["model_calls"]))])
    table = format_side_by_side([("v1", {"windows": 6, "model_calls": 4}), ("v2", {"windows": 6, "model_calls": 5})])
    assert table.splitlines() == ["| open loop | v1 | v2 |", "|---|---|---|", "| windows | 6 | 6 |",
                                  "| model calls | 4 | 5 |"]
    assert TABLE  # the real rows are the single-variant table's
