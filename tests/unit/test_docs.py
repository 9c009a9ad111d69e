"""The docs describe the product: every relative link resolves, the README stays short, no session history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", flags=re.S)
SESSION = re.compile(r"\bstops? \d+\b|\(stop\b|\bsession \d+\b", flags=re.I)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", FENCE.sub("", page.read_text()), flags=re.M)}


def broken_links(page: Path) -> list[str]:
    """The relative links and images of ``page`` whose file, or whose #heading, does not exist."""
    broken = []
    for match in LINK.finditer(FENCE.sub("", page.read_text())):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a-heading) [gone](missing.md) [bad](there.md#nope) [web](https://x.org/y)\n"
                    "```\n[in code](ignored.md)\n```\n")
    assert broken_links(page) == ["missing.md (no such file)", "there.md#nope (no such heading)"]


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def session_history(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if SESSION.search(line)]


def test_no_session_history_in_docs_or_code():
    """History belongs to CHANGELOG.md; the docs, docstrings and comments describe the product as it is."""
    places = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "rudder_agent").rglob("*.py"),
              *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "examples").glob("*.py")]
    found = {str(p.relative_to(ROOT)): session_history(p.read_text()) for p in places}
    assert {p: lines for p, lines in found.items() if lines} == {}


def test_session_history_is_recognised():
    assert session_history("Update (stop 22): faster\nmeasured in stop 7\nthe launcher's stopped_by_launcher") == [
        "Update (stop 22): faster", "measured in stop 7"]
