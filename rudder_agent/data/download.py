"""Fetch a public data file for users who are online; offline machines never get here."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from rudder_agent.data.atomic import atomic_path
from rudder_agent.errors import RudderError
from rudder_agent.log import get_logger

log = get_logger(__name__)


def download(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically; any network failure becomes a RudderError."""
    log.info("download.start", url=url, dest=str(dest))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(response, fh)
    except OSError as exc:
        raise RudderError(f"could not download {url}: {exc}") from exc
    return dest
