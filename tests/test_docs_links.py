"""The project's docs stand on their own: every link stays inside the repository and resolves.

A clone carries only the repository, so a doc that points at a file beside it (a design brief in a
sibling folder) or at a file that was renamed leaves the reader with nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".venv", "data", ".git", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
#: A path in backticks that climbs out of its folder (`../x/y.md`) is a link in all but syntax.
CODE_PATH = re.compile(r"`(\.\./[^`\s]+)`")


def _documents() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.md")
                  if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts))


def broken_links(document: Path) -> list[str]:
    """The links of ``document`` that leave the repository or name a missing file."""
    text = document.read_text()
    targets = MARKDOWN_LINK.findall(text) + CODE_PATH.findall(text)
    problems = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        path = target.split("#", 1)[0]
        resolved = (document.parent / path).resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target} does not exist")
    return problems


def test_the_docs_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _documents()}
    assert {"README.md", "docs/architecture.md", "docs/developing.md", "docs/reliability.md",
            "deploy/README.md"} <= names


@pytest.mark.parametrize("document", _documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_in_the_docs_stays_in_the_repository_and_resolves(document: Path) -> None:
    assert broken_links(document) == []


def test_a_link_outside_the_repository_is_caught(tmp_path: Path) -> None:
    page = ROOT / "docs" / "architecture.md"
    assert broken_links(page) == []
    stray = tmp_path / "stray.md"
    stray.write_text("See `../shared/design/STYLE.md` and [gone](missing.md) and [ok](https://x.dk).")
    assert len(broken_links(stray)) == 2
