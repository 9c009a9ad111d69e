"""A trainer script's own arguments: placeholders filled, a misspelt one refused."""

from __future__ import annotations

import pytest

from rudder_agent.cluster.script_args import DEFAULT_ARGS, PLACEHOLDERS, check, fill
from rudder_agent.errors import SettingError


def test_placeholders_are_filled_and_everything_else_passes_verbatim() -> None:
    args = ["--ip_config", "{ip_config}", "--x={epochs}/{batch_size}", '{"json": 1}', "{out}{out}", "plain"]
    assert fill(args, {"ip_config": "/r/ip.txt", "epochs": "3", "batch_size": "20", "out": "/r"}) == [
        "--ip_config", "/r/ip.txt", "--x=3/20", '{"json": 1}', "/r/r", "plain"]
    assert fill(DEFAULT_ARGS, {"config": "/r/config.json"}) == ["--config", "/r/config.json"]


def test_an_unknown_placeholder_is_refused_naming_the_known_ones() -> None:
    check(["--a", "{ip_config}", '{"json": 1}', "{}", "{X}"])  # braces that are not placeholders pass
    with pytest.raises(SettingError, match=r"unknown placeholder \{ip_conifg\}.*known: \{ip_config\}"):
        check(["--ip_config", "{ip_conifg}"])
    assert set(PLACEHOLDERS) >= {"ip_config", "part_config", "graph_name", "config"}
