"""The session's shared live runs (see reference.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.integration.reference import ReferenceRuns


@pytest.fixture(scope="session")
def reference(tmp_path_factory, isolated_cache) -> Callable[[str], Path]:
    """``reference(name)``: the directory of reference run ``name`` (see REFERENCE), trained on first use."""
    return ReferenceRuns(tmp_path_factory.mktemp("reference"))
