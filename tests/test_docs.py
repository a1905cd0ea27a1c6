"""The README and docs/ as a newcomer reads them: every relative link and image resolves (its
anchor too, where it names one), every page is one link away from the README, and the README
stays a short page."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


def _broken(page: Path) -> list[str]:
    broken = []
    for target in _links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto: — not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and where.suffix == ".md" and anchor not in _anchors(where):
            broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def test_every_relative_link_resolves() -> None:
    assert [b for page in _pages() for b in _broken(page)] == []


def test_the_check_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# The scene's light (`--shadow`)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#the-scenes-light---shadow) [gone](missing.md) [bad](other.md#nope)\n"
        "```\n[in code](not-a-link.md)\n```\n![figure](other.md) [web](https://example.org/x)\n"
    )
    assert _broken(page) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#nope (no such heading)",
    ]


def test_every_docs_page_is_one_link_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _links(ROOT / "README.md")}
    pages = {p.resolve() for p in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set()


def test_the_readme_is_a_short_page_that_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 350
    blocks = re.findall(r"^```bash\n(.*?)^```", readme, re.S | re.M)
    demo = (
        "pip install -r requirements.txt && python run.py --input input --output output "
        "--bg background/hubble_deep_field.jpg"
    )
    assert blocks[0].strip().endswith(demo)
    assert blocks[1].strip().endswith("pip install -r requirements-dev.txt && python -m pytest")
